#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define EVENT_LINE_MAX 4000

static void append_line(int64_t ms, struct jgen *g)
{
	struct buf line = BUF_INIT;
	char hour[16], path[PATH_MAX];
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	if (jg_finish(g, &line) < 0 || line.len >= EVENT_LINE_MAX)
		goto out;
	buf_addch(&line, '\n');
	gmtime_r(&s, &tm);
	strftime(hour, sizeof hour, "%Y%m%d%H", &tm);
	snprintf(path, sizeof path, "%s/stats/events/%s.jsonl", store_root(), hour);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_warn("events: cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	ssize_t n = write(fd, line.data, line.len);
	if (n != (ssize_t)line.len)
		log_warn("events: short write to %s", path);
	close(fd);
out:
	buf_free(&line);
}

void events_task(const char *type, const struct task *t, const char *server_id,
		 int64_t duration_ms)
{
	struct jgen g;
	int64_t now = now_ms();
	jg_init(&g);
	jg_obj(&g);
	jg_kint(&g, "t", now);
	jg_kstr(&g, "type", type);
	jg_kstr(&g, "task", t->id);
	jg_kstr(&g, "model", t->model);
	if (server_id && *server_id)
		jg_kstr(&g, "server", server_id);
	if (duration_ms > 0)
		jg_kint(&g, "ms", duration_ms);
	if (t->created_at)
		jg_kint(&g, "createdAt", t->created_at);
	jg_obj_end(&g);
	append_line(now, &g);
	jg_free(&g);
}

void events_server(const char *server_id, const char *from, const char *to)
{
	struct jgen g;
	int64_t now = now_ms();
	jg_init(&g);
	jg_obj(&g);
	jg_kint(&g, "t", now);
	jg_kstr(&g, "type", "server_status");
	jg_kstr(&g, "server", server_id);
	jg_kstr(&g, "from", from);
	jg_kstr(&g, "to", to);
	jg_obj_end(&g);
	append_line(now, &g);
	jg_free(&g);
}
