#include "stats/events.h"

#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "fs/statsfile.h"

/* Under the 4 KiB that O_APPEND writes keep whole (see fs/statsfile.h). */
#define EVENT_LINE_MAX 4000

/* Formats the event g holds as one line and hands it to the hour's file. */
static void append_line(int64_t ms, struct jgen *g)
{
	struct buf line = BUF_INIT;
	if (jg_finish(g, &line) == 0 && line.len < EVENT_LINE_MAX) {
		buf_addch(&line, '\n');
		statsfile_append_event(ms, line.data, line.len);
	}
	buf_free(&line);
}

static void task_line(const char *type, const struct task *t, const char *server_id,
		      int64_t duration_ms, const char *outcome)
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
	if (strcmp(type, "dispatched") == 0 && t->queued_at > 0) {
		int64_t since =
		    t->next_attempt_at > t->queued_at ? t->next_attempt_at : t->queued_at;
		jg_kint(&g, "waitMs", now > since ? now - since : 0);
	}
	if (outcome && *outcome)
		jg_kstr(&g, "outcome", outcome);
	if (t->created_at)
		jg_kint(&g, "createdAt", t->created_at);
	jg_obj_end(&g);
	append_line(now, &g);
	jg_free(&g);
}

void events_task(const char *type, const struct task *t, const char *server_id, int64_t duration_ms)
{
	task_line(type, t, server_id, duration_ms, NULL);
}

void events_task_end(const char *type, const struct task *t, const char *server_id,
		     int64_t duration_ms, const char *outcome)
{
	task_line(type, t, server_id, duration_ms, outcome);
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

void events_server_maintenance(const char *server_id, bool on)
{
	struct jgen g;
	int64_t now = now_ms();
	jg_init(&g);
	jg_obj(&g);
	jg_kint(&g, "t", now);
	jg_kstr(&g, "type", "server_maintenance");
	jg_kstr(&g, "server", server_id);
	jg_kbool(&g, "on", on);
	jg_obj_end(&g);
	append_line(now, &g);
	jg_free(&g);
}
