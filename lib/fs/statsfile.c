#include "fs/statsfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hour.h"
#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"

void statsfile_hour_rel(char *out, size_t n, const char *dir, int64_t hour, const char *suffix)
{
	char name[HOUR_NAME_LEN + 1];
	hour_name(hour, name);
	snprintf(out, n, "%s/%s%s", dir, name, suffix);
}

/* ---- appending events ---- */

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

void statsfile_append_event(int64_t ms, const char *line, size_t len)
{
	char hour[HOUR_NAME_LEN + 1], path[PATH_MAX];
	hour_name(ms, hour);
	snprintf(path, sizeof path, "%s/stats/" STATSFILE_EVENTS "/%s.jsonl", store_root(), hour);
	int fd = hour_fd(path);
	if (fd < 0) {
		log_warn("events: cannot open %s: %s", path, strerror(errno));
		return;
	}
	/* One write with O_APPEND: lines of concurrent processes never interleave. */
	ssize_t n = write(fd, line, len);
	if (n != (ssize_t)len)
		log_warn("events: short write to %s", path);
}

/* ---- whole files ---- */

static bool rel_ok(const char *rel)
{
	/* Callers build rel from constants and hour names; refuse anything else loudly. */
	if (!rel || !*rel || rel[0] == '/' || strstr(rel, "..")) {
		log_error("events: refusing path '%s'", rel ? rel : "(null)");
		return false;
	}
	return true;
}

/* <root>/stats/<rel>, or <root>/stats for "" (the dir form, rel unchecked). */
static void path_of(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/stats%s%s", store_root(), rel && *rel ? "/" : "", rel ? rel : "");
}

int statsfile_info(const char *rel, struct file_stamp *st)
{
	char path[PATH_MAX];
	struct stat sb;
	if (!rel_ok(rel))
		return STORE_INVALID;
	path_of(path, sizeof path, rel);
	if (stat(path, &sb) < 0)
		return errno == ENOENT ? STORE_NOENT : STORE_IO;
	file_stamp_of(&sb, st);
	return STORE_OK;
}

/* Appends up to want bytes of fd from offset to out. */
static int read_range(int fd, uint64_t offset, uint64_t want, struct buf *out)
{
	buf_grow(out, (size_t)want + 1);
	uint64_t got = 0;
	while (got < want) {
		ssize_t n =
		    pread(fd, out->data + out->len, (size_t)(want - got), (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return STORE_IO;
		if (n == 0)
			break;
		got += (uint64_t)n;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	return STORE_OK;
}

int statsfile_read(const char *rel, uint64_t offset, uint64_t max, struct buf *out,
		   struct file_stamp *st)
{
	char path[PATH_MAX];
	if (!rel_ok(rel))
		return STORE_INVALID;
	path_of(path, sizeof path, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_NOENT : STORE_IO;
	struct stat sb;
	int rc = STORE_OK;
	if (fstat(fd, &sb) < 0) {
		rc = STORE_IO;
		goto out;
	}
	if (st)
		file_stamp_of(&sb, st);
	if ((uint64_t)sb.st_size > offset) {
		uint64_t want = (uint64_t)sb.st_size - offset;
		rc = read_range(fd, offset, want > max ? max : want, out);
	}
out:
	close(fd);
	return rc;
}

int statsfile_write(const char *dir, const char *name, const char *data, size_t len)
{
	char path[PATH_MAX];
	if ((dir && strstr(dir, "..")) || !name || strchr(name, '/') || name[0] == '.')
		return STORE_INVALID;
	path_of(path, sizeof path, dir);
	return store_write_file(path, name, data, len, false);
}

int statsfile_write_json(const char *dir, const char *name, struct jgen *g)
{
	struct buf out = BUF_INIT;
	int rc = STORE_IO;
	if (jg_finish(g, &out) == 0) {
		buf_addch(&out, '\n');
		rc = statsfile_write(dir, name, out.data, out.len);
	}
	buf_free(&out);
	return rc;
}

int statsfile_remove(const char *rel)
{
	char path[PATH_MAX];
	if (!rel_ok(rel))
		return STORE_INVALID;
	path_of(path, sizeof path, rel);
	if (unlink(path) < 0)
		return errno == ENOENT ? STORE_NOENT : STORE_IO;
	return STORE_OK;
}

/* ---- folders ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* "<YYYYMMDDHH><suffix>" -> the hour's start. */
static bool parse_hour_file(const char *name, void *start, const void *suffix)
{
	char hour[HOUR_NAME_LEN + 1];
	if (strlen(name) != HOUR_NAME_LEN + strlen(suffix) ||
	    strcmp(name + HOUR_NAME_LEN, suffix) != 0)
		return false;
	memcpy(hour, name, HOUR_NAME_LEN);
	hour[HOUR_NAME_LEN] = '\0';
	return hour_parse(hour, start);
}

size_t statsfile_list_hours(const char *dir, const char *suffix, int64_t **out)
{
	char path[PATH_MAX];
	size_t n;
	path_of(path, sizeof path, dir);
	*out = store_dir_sorted(path, sizeof **out, SIZE_MAX, parse_hour_file, suffix, cmp_i64, &n);
	return n;
}

bool statsfile_hours_has(const int64_t *v, size_t n, int64_t hour)
{
	bool found;
	array_search(&hour, v, n, sizeof *v, cmp_i64, &found);
	return found;
}

int statsfile_clean_temp(const char *dir)
{
	char path[PATH_MAX], file[PATH_MAX];
	path_of(path, sizeof path, dir);
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

void statsfile_forget_inherited(void)
{
	if (open_hour.fd >= 0)
		close(open_hour.fd);
	open_hour.fd = -1;
	open_hour.path[0] = '\0';
}
