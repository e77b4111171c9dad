#include "fs/taskindex.h"
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

#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "fs/taskindex_dir.h"

void tindex_path(char *out, size_t n, const char *sub, const char *name)
{
	snprintf(out, n, "%s/%s%s%s", store_root(), sub, name ? "/" : "", name ? name : "");
}

int tindex_each_name(const char *dir, int (*fn)(const char *name, void *arg), void *arg)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			rc = fn(de->d_name, arg);
	closedir(d);
	return rc;
}

/* Whether dir has no name but dot files. */
bool tindex_dir_empty(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return true;
	/* getdents64 with a small buffer: readdir() would fill 32 KiB (a thousand
	 * names) to answer a yes/no question. */
	char ents[512];
	bool empty = true;
	for (int calls = 0; empty && calls < 1000000; calls++) {
		ssize_t n = getdents64(fd, ents, sizeof ents);
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n && empty;) {
			const struct dirent64 *de = (const struct dirent64 *)(ents + off);
			empty = de->d_name[0] == '.';
			off += de->d_reclen;
		}
	}
	close(fd);
	return empty;
}

void tindex_prune_dir(const char *dir)
{
	if (!tindex_dir_empty(dir))
		return;
	char proto[PATH_MAX + 16];
	snprintf(proto, sizeof proto, "%s/" STORE_ENTRY_PROTO, dir);
	unlink(proto);
	rmdir(dir);
}

/* "<id>.<attempt>", or "<id>" for attempt 0. */
static bool active_name_of(const char *id, int attempt, char *out, size_t n)
{
	if (!store_id_valid(id) || attempt < 0)
		return false;
	int len = attempt ? snprintf(out, n, "%s.%d", id, attempt) : snprintf(out, n, "%s", id);
	return len > 0 && (size_t)len < n;
}

int tindex_active_add(const char *id, int attempt)
{
	char dir[PATH_MAX], name[TINDEX_KEY_MAX];
	if (!active_name_of(id, attempt, name, sizeof name))
		return STORE_INVALID;
	tindex_path(dir, sizeof dir, "active", NULL);
	return store_touch_entry(dir, name);
}

void tindex_active_remove(const char *id, int attempt)
{
	char path[PATH_MAX], name[TINDEX_KEY_MAX];
	if (!active_name_of(id, attempt, name, sizeof name))
		return;
	tindex_path(path, sizeof path, "active", name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("active: cannot remove %s: %s", name, strerror(errno));
}

struct active_walk {
	int (*fn)(const char *id, int attempt, void *arg);
	void *arg;
};

static int active_name(const char *name, void *arg)
{
	const struct active_walk *w = arg;
	char id[TINDEX_ID_LEN + 1];
	int attempt = 0;
	const char *dot = strchr(name, '.');
	size_t idlen = dot ? (size_t)(dot - name) : strlen(name);
	if (idlen != TINDEX_ID_LEN) /* a task id, nothing else */
		return 0;
	memcpy(id, name, idlen);
	id[idlen] = '\0';
	if (dot) {
		char *end;
		long n = strtol(dot + 1, &end, 10);
		if (*end || end == dot + 1 || n < 1 || n > 1000000)
			return 0;
		attempt = (int)n;
	}
	return store_id_valid(id) ? w->fn(id, attempt, w->arg) : 0;
}

int tindex_active_each(int (*fn)(const char *id, int attempt, void *arg), void *arg)
{
	char dir[PATH_MAX];
	struct active_walk w = {fn, arg};
	tindex_path(dir, sizeof dir, "active", NULL);
	return tindex_each_name(dir, active_name, &w);
}

/* ---- work folders: what a worker still owes a backend ---- */

static const char *const work_dirs[] = {[TINDEX_SEND] = "sending", [TINDEX_CANCEL] = "cancelling"};

static void work_name(char *out, size_t n, const char *id, int attempt)
{
	snprintf(out, n, "%s.%d", id, attempt);
}

int tindex_work_add(enum tindex_work w, const char *id, int attempt)
{
	char dir[PATH_MAX], name[TINDEX_ID_LEN + 16];
	tindex_path(dir, sizeof dir, work_dirs[w], NULL);
	work_name(name, sizeof name, id, attempt);
	return store_touch_entry(dir, name);
}

bool tindex_work_claim(enum tindex_work w, const char *id, int attempt)
{
	char path[PATH_MAX], name[TINDEX_ID_LEN + 16];
	if (!store_id_valid(id))
		return false;
	work_name(name, sizeof name, id, attempt);
	tindex_path(path, sizeof path, work_dirs[w], name);
	/* unlink() succeeds for one caller only: that one owns the work. */
	return unlink(path) == 0;
}

static bool parse_work_name(const char *name, void *elem, const void *arg)
{
	(void)arg;
	struct tindex_work_item *it = elem;
	const char *dot = strrchr(name, '.');
	size_t idlen = dot ? (size_t)(dot - name) : 0;
	if (!dot || idlen == 0 || idlen > TINDEX_ID_LEN)
		return false;
	char *end;
	long n = strtol(dot + 1, &end, 10);
	if (*end || n < 1 || n > 1000000)
		return false;
	memcpy(it->id, name, idlen);
	it->id[idlen] = '\0';
	it->attempt = (int)n;
	return store_id_valid(it->id);
}

static int cmp_work(const void *a, const void *b)
{
	const struct tindex_work_item *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c ? c : (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

size_t tindex_work_list(enum tindex_work w, struct tindex_work_item **out, size_t max)
{
	char dir[PATH_MAX];
	size_t n;
	tindex_path(dir, sizeof dir, work_dirs[w], NULL);
	*out = store_dir_sorted(dir, sizeof **out, max, parse_work_name, NULL, cmp_work, &n);
	return n;
}

int tindex_work_take(enum tindex_work w, int max, int64_t until_mono,
		     bool (*act)(const struct tindex_work_item *it, void *arg), void *arg)
{
	struct tindex_work_item *v;
	size_t n = tindex_work_list(w, &v, (size_t)max);
	int done = 0;
	for (size_t i = 0; i < n && mono_ms() < until_mono; i++)
		if (tindex_work_claim(w, v[i].id, v[i].attempt) && act(&v[i], arg))
			done++; /* (an entry another worker claimed first is its work) */
	free(v);
	return done;
}

bool tindex_work_empty(enum tindex_work w)
{
	char dir[PATH_MAX];
	tindex_path(dir, sizeof dir, work_dirs[w], NULL);
	return tindex_dir_empty(dir);
}

/* ---- the drain wanted: a slot freed, a server back, a task due again ---- */

#define DRAIN_WANTED "drain-wanted"

void tindex_drain_request(void)
{
	char dir[PATH_MAX];
	tindex_path(dir, sizeof dir, "run", NULL);
	/* A hint: if it is lost, the sweep drains on its own schedule. */
	store_touch_entry(dir, DRAIN_WANTED);
}

bool tindex_drain_take(void)
{
	char path[PATH_MAX];
	tindex_path(path, sizeof path, "run", DRAIN_WANTED);
	return unlink(path) == 0;
}

bool tindex_drain_requested(void)
{
	char path[PATH_MAX];
	struct stat st;
	tindex_path(path, sizeof path, "run", DRAIN_WANTED);
	return stat(path, &st) == 0;
}
