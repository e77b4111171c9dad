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

#define PRIO_OFFSET 500000 /* priorities are -1000..1000; names must sort high first */

static void index_path(char *out, size_t n, const char *sub, const char *name)
{
	snprintf(out, n, "%s/%s%s%s", store_root(), sub, name ? "/" : "", name ? name : "");
}

int tindex_queue_add(const char *id, int priority, int64_t queued_at, int64_t not_before,
		     char key[TINDEX_KEY_MAX])
{
	char dir[PATH_MAX];
	snprintf(key, TINDEX_KEY_MAX, "%06d-%013lld-%013lld-%s", PRIO_OFFSET - priority,
		 (long long)queued_at, (long long)not_before, id);
	index_path(dir, sizeof dir, "queue", NULL);
	return store_touch_entry(dir, key);
}

void tindex_queue_remove(const char *key)
{
	char path[PATH_MAX];
	if (!key || !*key || strchr(key, '/'))
		return;
	index_path(path, sizeof path, "queue", key);
	/* No directory fsync: a removal lost in a crash only leaves a stale hint. */
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("queue: cannot remove %s: %s", key, strerror(errno));
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct tindex_entry *)a)->key, ((const struct tindex_entry *)b)->key);
}

static bool parse_queue_name(const char *name, void *elem, const void *arg)
{
	struct tindex_entry *e = elem;
	int prio;
	long long queued, not_before;
	int used = 0;
	if (strlen(name) >= sizeof e->key ||
	    sscanf(name, "%6d-%13lld-%13lld-%n", &prio, &queued, &not_before, &used) != 3 ||
	    used == 0)
		return false;
	const char *id = name + used;
	if (!store_id_valid(id) || strlen(id) > TINDEX_ID_LEN)
		return false;
	snprintf(e->key, sizeof e->key, "%s", name);
	snprintf(e->id, sizeof e->id, "%s", id);
	e->not_before = not_before;
	return true;
}

size_t tindex_queue_list(struct tindex_entry **out, size_t max)
{
	char dir[PATH_MAX];
	size_t n;
	index_path(dir, sizeof dir, "queue", NULL);
	/* Read everything, then sort: readdir order is arbitrary, and the head of the
	 * queue can be anywhere in it. The bound protects memory, not order. */
	*out = store_dir_sorted(dir, sizeof **out, 100000, parse_queue_name, NULL, cmp_entry, &n);
	return n > max ? max : n;
}

/* Calls fn for each name in dir but dot files while it returns 0; returns what
 * stopped it (0 at the end, or when dir cannot be opened). */
static int each_name(const char *dir, int (*fn)(const char *name, void *arg), void *arg)
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

static int count_name(const char *name, void *arg)
{
	(void)name;
	(*(size_t *)arg)++;
	return 0;
}

size_t tindex_queue_depth(void)
{
	char dir[PATH_MAX];
	size_t n = 0;
	index_path(dir, sizeof dir, "queue", NULL);
	each_name(dir, count_name, &n);
	return n;
}

/* Whether dir has no name but dot files. */
static bool dir_empty(const char *dir)
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

bool tindex_queue_empty(void)
{
	char dir[PATH_MAX];
	index_path(dir, sizeof dir, "queue", NULL);
	return dir_empty(dir);
}

int tindex_active_add(const char *id)
{
	char dir[PATH_MAX];
	index_path(dir, sizeof dir, "active", NULL);
	return store_touch_entry(dir, id);
}

void tindex_active_remove(const char *id)
{
	char path[PATH_MAX];
	if (!store_id_valid(id))
		return;
	index_path(path, sizeof path, "active", id);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("active: cannot remove %s: %s", id, strerror(errno));
}

struct active_walk {
	int (*fn)(const char *id, void *arg);
	void *arg;
};

static int active_name(const char *name, void *arg)
{
	const struct active_walk *w = arg;
	return store_id_valid(name) ? w->fn(name, w->arg) : 0;
}

int tindex_active_each(int (*fn)(const char *id, void *arg), void *arg)
{
	char dir[PATH_MAX];
	struct active_walk w = {fn, arg};
	index_path(dir, sizeof dir, "active", NULL);
	return each_name(dir, active_name, &w);
}

int tindex_created_add(const char *id, int64_t created_at)
{
	char hour[16], sub[64], dir[PATH_MAX], name[96];
	hour_name(created_at, hour);
	snprintf(sub, sizeof sub, "created/%s", hour);
	index_path(dir, sizeof dir, sub, NULL);
	snprintf(name, sizeof name, "%013lld-%s", (long long)created_at, id);
	return store_touch_entry(dir, name);
}

void tindex_created_remove(const char *id, int64_t created_at)
{
	char hour[16], path[PATH_MAX];
	hour_name(created_at, hour);
	snprintf(path, sizeof path, "%s/created/%s/%013lld-%s", store_root(), hour,
		 (long long)created_at, id);
	unlink(path);
}

static int cmp_desc(const void *a, const void *b)
{
	return strcmp(*(char *const *)b, *(char *const *)a);
}

static bool dup_name(const char *name, void *elem, const void *arg)
{
	*(char **)elem = xstrdup(name);
	return true;
}

/* Names in dir (skipping dot files), sorted newest first; caller frees. */
static size_t list_desc(const char *dir, char ***out)
{
	size_t n;
	*out = store_dir_sorted(dir, sizeof **out, 1000000, dup_name, NULL, cmp_desc, &n);
	return n;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

size_t tindex_created_page(const char *cursor, char (*ids)[TINDEX_ID_LEN + 1], size_t max,
			   char *cursor_out, size_t cursor_len)
{
	char dir[PATH_MAX], key[160];
	char **hours;
	size_t nh, got = 0;
	index_path(dir, sizeof dir, "created", NULL);
	nh = list_desc(dir, &hours);
	cursor_out[0] = '\0';
	for (size_t h = 0; h < nh && got < max; h++) {
		/* Whole hours newer than the cursor's hour were returned already. */
		if (cursor && *cursor && strncmp(hours[h], cursor, strlen(hours[h])) > 0)
			continue;
		char sub[PATH_MAX];
		snprintf(sub, sizeof sub, "%s/%s", dir, hours[h]);
		char **names;
		size_t nn = list_desc(sub, &names);
		for (size_t i = 0; i < nn && got < max; i++) {
			snprintf(key, sizeof key, "%s/%s", hours[h], names[i]);
			if (cursor && *cursor && strcmp(key, cursor) >= 0)
				continue;
			const char *dash = strchr(names[i], '-');
			if (!dash || !store_id_valid(dash + 1) || strlen(dash + 1) > TINDEX_ID_LEN)
				continue;
			snprintf(ids[got], TINDEX_ID_LEN + 1, "%s", dash + 1);
			snprintf(cursor_out, cursor_len, "%s", key);
			got++;
		}
		free_names(names, nn);
	}
	free_names(hours, nh);
	return got;
}

/* One hour folder's entries; false when fn asked to stop. */
static bool expire_hour(const char *hour_dir, int (*fn)(const char *id, void *arg), void *arg,
			size_t *removed)
{
	DIR *h = opendir(hour_dir);
	if (!h)
		return true;
	struct dirent *e;
	bool kept = false, go_on = true;
	while (go_on && (e = readdir(h)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		const char *dash = strchr(e->d_name, '-');
		int verdict = dash && store_id_valid(dash + 1) ? fn(dash + 1, arg) : 0;
		if (verdict < 0)
			go_on = false;
		if (verdict <= 0) {
			kept = true;
			continue;
		}
		char entry[PATH_MAX];
		snprintf(entry, sizeof entry, "%s/%s", hour_dir, e->d_name);
		unlink(entry);
		(*removed)++;
	}
	closedir(h);
	if (!kept) {
		char proto[PATH_MAX + 16];
		snprintf(proto, sizeof proto, "%s/" STORE_ENTRY_PROTO, hour_dir);
		unlink(proto);
		rmdir(hour_dir);
	}
	return go_on;
}

size_t tindex_created_expire(const char *before_hour, int (*fn)(const char *id, void *arg),
			     void *arg)
{
	char dir[PATH_MAX];
	size_t removed = 0;
	index_path(dir, sizeof dir, "created", NULL);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	bool go_on = true;
	while (go_on && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strlen(de->d_name) != HOUR_NAME_LEN ||
		    strcmp(de->d_name, before_hour) >= 0)
			continue;
		char hour_dir[PATH_MAX];
		snprintf(hour_dir, sizeof hour_dir, "%s/%s", dir, de->d_name);
		go_on = expire_hour(hour_dir, fn, arg, &removed);
	}
	closedir(d);
	return removed;
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
	index_path(dir, sizeof dir, work_dirs[w], NULL);
	work_name(name, sizeof name, id, attempt);
	return store_touch_entry(dir, name);
}

bool tindex_work_claim(enum tindex_work w, const char *id, int attempt)
{
	char path[PATH_MAX], name[TINDEX_ID_LEN + 16];
	if (!store_id_valid(id))
		return false;
	work_name(name, sizeof name, id, attempt);
	index_path(path, sizeof path, work_dirs[w], name);
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
	index_path(dir, sizeof dir, work_dirs[w], NULL);
	*out = store_dir_sorted(dir, sizeof **out, max, parse_work_name, NULL, cmp_work, &n);
	return n;
}

bool tindex_work_empty(enum tindex_work w)
{
	char dir[PATH_MAX];
	index_path(dir, sizeof dir, work_dirs[w], NULL);
	return dir_empty(dir);
}

/* ---- the drain wanted: a slot freed, a server back, a task due again ---- */

#define DRAIN_WANTED "drain-wanted"

void tindex_drain_request(void)
{
	char dir[PATH_MAX];
	index_path(dir, sizeof dir, "run", NULL);
	/* A hint: if it is lost, the sweep drains on its own schedule. */
	store_touch_entry(dir, DRAIN_WANTED);
}

bool tindex_drain_take(void)
{
	char path[PATH_MAX];
	index_path(path, sizeof path, "run", DRAIN_WANTED);
	return unlink(path) == 0;
}

bool tindex_drain_requested(void)
{
	char path[PATH_MAX];
	struct stat st;
	index_path(path, sizeof path, "run", DRAIN_WANTED);
	return stat(path, &st) == 0;
}
