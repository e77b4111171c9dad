#include "stats/events.h"
#include "base/hour.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "stats/stats.h"
#include "fs/store.h"
#include "base/util.h"

#define EVENT_LINE_MAX 4000

/* The current hour's file stays open between events (one open per hour and
 * process instead of one per event); a file removed meanwhile (nlink 0) is
 * opened again by name. */
static struct {
	int fd;
	char path[PATH_MAX];
} open_hour = {-1, ""};

static int hour_fd(const char *path)
{
	struct stat st;
	if (open_hour.fd >= 0 && strcmp(open_hour.path, path) == 0 &&
	    fstat(open_hour.fd, &st) == 0 && st.st_nlink > 0)
		return open_hour.fd;
	if (open_hour.fd >= 0)
		close(open_hour.fd);
	open_hour.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	snprintf(open_hour.path, sizeof open_hour.path, "%s", open_hour.fd >= 0 ? path : "");
	return open_hour.fd;
}

static void append_line(int64_t ms, struct jgen *g)
{
	struct buf line = BUF_INIT;
	char hour[16], path[PATH_MAX];
	if (jg_finish(g, &line) < 0 || line.len >= EVENT_LINE_MAX)
		goto out;
	buf_addch(&line, '\n');
	hour_name(ms, hour);
	snprintf(path, sizeof path, "%s/stats/events/%s.jsonl", store_root(), hour);
	int fd = hour_fd(path);
	if (fd < 0) {
		log_warn("events: cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	/* One write with O_APPEND: lines of concurrent processes never interleave. */
	ssize_t n = write(fd, line.data, line.len);
	if (n != (ssize_t)line.len)
		log_warn("events: short write to %s", path);
out:
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

/* ---- the stats/ folder ---- */

static bool rel_ok(const char *rel)
{
	/* Callers build rel from constants and hour names; refuse anything else loudly. */
	if (!rel || !*rel || rel[0] == '/' || strstr(rel, "..")) {
		log_error("events: refusing path '%s'", rel ? rel : "(null)");
		return false;
	}
	return true;
}

static void fill_info(const struct stat *st, struct events_fileinfo *fi)
{
	if (!fi)
		return;
	fi->ino = (uint64_t)st->st_ino;
	fi->size = (uint64_t)st->st_size;
	fi->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

int events_file_info(const char *rel, struct events_fileinfo *fi)
{
	char path[PATH_MAX];
	struct stat st;
	if (!rel_ok(rel))
		return STORE_INVALID;
	snprintf(path, sizeof path, "%s/stats/%s", store_root(), rel);
	if (stat(path, &st) < 0)
		return errno == ENOENT ? STORE_NOENT : STORE_IO;
	fill_info(&st, fi);
	return STORE_OK;
}

int events_file_read(const char *rel, uint64_t offset, uint64_t max, struct buf *out,
		     struct events_fileinfo *fi)
{
	char path[PATH_MAX];
	if (!rel_ok(rel))
		return STORE_INVALID;
	snprintf(path, sizeof path, "%s/stats/%s", store_root(), rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_NOENT : STORE_IO;
	struct stat st;
	int rc = STORE_OK;
	if (fstat(fd, &st) < 0) {
		rc = STORE_IO;
		goto out;
	}
	fill_info(&st, fi);
	if ((uint64_t)st.st_size <= offset)
		goto out;
	uint64_t want = (uint64_t)st.st_size - offset;
	if (want > max)
		want = max;
	buf_grow(out, (size_t)want + 1);
	uint64_t got = 0;
	while (got < want) {
		ssize_t n =
		    pread(fd, out->data + out->len, (size_t)(want - got), (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = STORE_IO;
			break;
		}
		if (n == 0)
			break;
		got += (uint64_t)n;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
out:
	close(fd);
	return rc;
}

int events_file_write(const char *dir, const char *name, const char *data, size_t len)
{
	char path[PATH_MAX];
	if ((dir && strstr(dir, "..")) || !name || strchr(name, '/') || name[0] == '.')
		return STORE_INVALID;
	snprintf(path, sizeof path, "%s/stats%s%s", store_root(), dir && *dir ? "/" : "",
		 dir ? dir : "");
	return store_write_file(path, name, data, len, false);
}

int events_file_write_json(const char *dir, const char *name, struct jgen *g)
{
	struct buf out = BUF_INIT;
	int rc = STORE_IO;
	if (jg_finish(g, &out) == 0) {
		buf_addch(&out, '\n');
		rc = events_file_write(dir, name, out.data, out.len);
	}
	buf_free(&out);
	return rc;
}

int events_file_remove(const char *rel)
{
	char path[PATH_MAX];
	if (!rel_ok(rel))
		return STORE_INVALID;
	snprintf(path, sizeof path, "%s/stats/%s", store_root(), rel);
	if (unlink(path) < 0)
		return errno == ENOENT ? STORE_NOENT : STORE_IO;
	return STORE_OK;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* "<YYYYMMDDHH><suffix>" -> the hour's start. */
static bool parse_hour_file(const char *name, void *start, const void *suffix)
{
	char hour[11];
	if (strlen(name) != 10 + strlen(suffix) || strcmp(name + 10, suffix) != 0)
		return false;
	memcpy(hour, name, 10);
	hour[10] = '\0';
	return hour_parse(hour, start);
}

size_t events_list_hours(const char *dir, const char *suffix, int64_t **out)
{
	char path[PATH_MAX];
	size_t n;
	snprintf(path, sizeof path, "%s/stats/%s", store_root(), dir);
	*out = store_dir_sorted(path, sizeof **out, SIZE_MAX, parse_hour_file, suffix, cmp_i64, &n);
	return n;
}

bool events_hours_has(const int64_t *v, size_t n, int64_t hour)
{
	bool found;
	array_search(&hour, v, n, sizeof *v, cmp_i64, &found);
	return found;
}

int events_clean_temp(const char *dir)
{
	char path[PATH_MAX], file[PATH_MAX];
	snprintf(path, sizeof path, "%s/stats%s%s", store_root(), dir && *dir ? "/" : "",
		 dir ? dir : "");
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] != '.' || n < 6 || strcmp(e->d_name + n - 4, ".tmp") != 0)
			continue;
		snprintf(file, sizeof file, "%s/%s", path, e->d_name);
		if (unlink(file) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
