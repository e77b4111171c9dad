/* The created/ index: every task by creation time, for listings newest first and
 * for retention; and finished/<STATUS>/, the same for the tasks that ended in one
 * status, so a listing filtered by it reads only tasks that match.
 *
 *   created/<YYYYMMDDHH>/<MM>/<createdAt>-<id>
 *   finished/<COMPLETED|FAILED|CANCELLED>/<YYYYMMDDHH>/<MM>/<createdAt>-<id>
 *
 * createdAt is 13 digits of ms, so an entry's name, its key, sorts as (time, id)
 * does across the whole index. A listing reads the hour names (a week of retention
 * is 168), then the minutes of the hours it needs, then the entries of the minutes
 * it needs: a page costs its own size, not the number of tasks an hour holds.
 * Trees written before the minutes hold entries directly in the hour folder; an
 * hour that still has such entries is read whole, until retention removes it. */
#include "fs/taskindex.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hour.h"
#include "base/util.h"
#include "fs/store.h"
#include "fs/taskindex_dir.h"

#define MS_DIGITS 13
#define MINUTE_MS 60000LL

/* The index's root under the tree: created/, or finished/<STATUS>/. */
static void root_sub(const char *status, char *out, size_t n)
{
	if (status)
		snprintf(out, n, "finished/%s", status);
	else
		snprintf(out, n, "created");
}

static void entry_dir(const char *status, int64_t created_at, char *out, size_t n)
{
	char hour[HOUR_NAME_LEN + 1], root[48], sub[96];
	root_sub(status, root, sizeof root);
	hour_name(created_at, hour);
	snprintf(sub, sizeof sub, "%s/%s/%02d", root, hour,
		 (int)((created_at - hour_floor(created_at)) / MINUTE_MS));
	tindex_path(out, n, sub, NULL);
}

static int entry_add(const char *status, const char *id, int64_t created_at)
{
	char dir[PATH_MAX], name[96];
	entry_dir(status, created_at, dir, sizeof dir);
	snprintf(name, sizeof name, "%013lld-%s", (long long)created_at, id);
	return store_touch_entry(dir, name);
}

/* 0 when removed, -1 when there was no such entry. */
static int entry_remove(const char *status, const char *id, int64_t created_at)
{
	char dir[PATH_MAX], path[PATH_MAX + 96];
	entry_dir(status, created_at, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%013lld-%s", dir, (long long)created_at, id);
	return unlink(path) == 0 || errno != ENOENT ? 0 : -1;
}

int tindex_created_add(const char *id, int64_t created_at)
{
	return entry_add(NULL, id, created_at);
}

void tindex_created_remove(const char *id, int64_t created_at)
{
	if (entry_remove(NULL, id, created_at) == 0)
		return;
	char path[PATH_MAX + 96], hour[HOUR_NAME_LEN + 1];
	hour_name(created_at, hour); /* a tree from before the minutes */
	snprintf(path, sizeof path, "%s/created/%s/%013lld-%s", store_root(), hour,
		 (long long)created_at, id);
	unlink(path);
}

static bool status_ok(const char *status)
{
	return status && *status && strlen(status) < 16 &&
	       strspn(status, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(status);
}

int tindex_finished_add(const char *status, const char *id, int64_t created_at)
{
	return status_ok(status) ? entry_add(status, id, created_at) : STORE_INVALID;
}

void tindex_finished_remove(const char *status, const char *id, int64_t created_at)
{
	if (status_ok(status))
		entry_remove(status, id, created_at);
}

/* ---- names ---- */

struct name {
	char s[TINDEX_KEY_MAX];
};

static bool keep_kind(const char *n, void *elem, const void *arg)
{
	int kind = *(const int *)arg; /* 10: hours, 2: minutes, 0: entries */
	size_t len = strlen(n);
	if (kind > 0 ? (len != (size_t)kind || strspn(n, "0123456789") != len)
		     : (len < MS_DIGITS + 2 || len >= TINDEX_KEY_MAX ||
			strspn(n, "0123456789") != MS_DIGITS || n[MS_DIGITS] != '-' ||
			!store_id_valid(n + MS_DIGITS + 1) ||
			strlen(n + MS_DIGITS + 1) > TINDEX_ID_LEN))
		return false;
	memcpy(((struct name *)elem)->s, n, len + 1);
	return true;
}

static int cmp_desc(const void *a, const void *b)
{
	return strcmp(((const struct name *)b)->s, ((const struct name *)a)->s);
}

/* Names of one kind in dir, newest (largest) first; caller frees. */
static size_t names_desc(const char *dir, int kind, struct name **out)
{
	size_t n;
	*out = store_dir_sorted(dir, sizeof **out, SIZE_MAX, keep_kind, &kind, cmp_desc, &n);
	return n;
}

/* ---- the walk ---- */

struct walk {
	const char *after; /* "" or a key */
	int64_t after_ms;
	struct tindex_created_item *out;
	size_t n, max;
};

static void take(struct walk *w, const struct name *v, size_t k)
{
	for (size_t i = 0; i < k && w->n < w->max; i++) {
		if (w->after[0] && strcmp(v[i].s, w->after) >= 0)
			continue;
		struct tindex_created_item *it = &w->out[w->n++];
		snprintf(it->key, sizeof it->key, "%s", v[i].s);
		snprintf(it->id, sizeof it->id, "%s", v[i].s + MS_DIGITS + 1);
	}
}

/* An hour whose entries sit in the hour folder itself (an older tree): read
 * whole, minutes included, so the order holds. */
static void walk_flat_hour(struct walk *w, const char *hour_dir, struct name *flat, size_t nflat)
{
	struct name *mins, *all = NULL;
	size_t nm = names_desc(hour_dir, 2, &mins), n = 0, cap = 0;
	for (size_t i = 0; i < nflat; i++) {
		all = array_grow(all, n, &cap, sizeof *all, 64);
		all[n++] = flat[i];
	}
	for (size_t m = 0; m < nm; m++) {
		char dir[PATH_MAX + 8];
		snprintf(dir, sizeof dir, "%s/%s", hour_dir, mins[m].s);
		struct name *e;
		size_t ne = names_desc(dir, 0, &e);
		for (size_t i = 0; i < ne; i++) {
			all = array_grow(all, n, &cap, sizeof *all, 64);
			all[n++] = e[i];
		}
		free(e);
	}
	if (n)
		qsort(all, n, sizeof *all, cmp_desc);
	take(w, all, n);
	free(all);
	free(mins);
}

static void walk_hour(struct walk *w, const char *hour_dir, int64_t hour_start)
{
	struct name *flat;
	size_t nflat = names_desc(hour_dir, 0, &flat);
	if (nflat) {
		walk_flat_hour(w, hour_dir, flat, nflat);
		free(flat);
		return;
	}
	free(flat);
	struct name *mins;
	size_t nm = names_desc(hour_dir, 2, &mins);
	for (size_t m = 0; m < nm && w->n < w->max; m++) {
		int64_t start = hour_start + atoi(mins[m].s) * MINUTE_MS;
		if (w->after[0] && start > w->after_ms)
			continue; /* every entry of that minute is newer than the cursor */
		char dir[PATH_MAX + 8];
		snprintf(dir, sizeof dir, "%s/%s", hour_dir, mins[m].s);
		struct name *e;
		size_t ne = names_desc(dir, 0, &e);
		take(w, e, ne);
		free(e);
	}
	free(mins);
}

static size_t walk_index(const char *status, const char *after_key,
			 struct tindex_created_item *out, size_t max)
{
	struct walk w = {.after = after_key ? after_key : "", .out = out, .max = max};
	if (w.after[0])
		w.after_ms = strtoll(w.after, NULL, 10);
	char dir[PATH_MAX], root[48];
	root_sub(status, root, sizeof root);
	tindex_path(dir, sizeof dir, root, NULL);
	struct name *hours;
	size_t nh = names_desc(dir, HOUR_NAME_LEN, &hours);
	for (size_t h = 0; h < nh && w.n < w.max; h++) {
		int64_t start;
		if (!hour_parse(hours[h].s, &start) || (w.after[0] && start > w.after_ms))
			continue;
		char hour_dir[PATH_MAX + 16];
		snprintf(hour_dir, sizeof hour_dir, "%s/%s", dir, hours[h].s);
		walk_hour(&w, hour_dir, start);
	}
	free(hours);
	return w.n;
}

size_t tindex_created_walk(const char *after_key, struct tindex_created_item *out, size_t max)
{
	return walk_index(NULL, after_key, out, max);
}

size_t tindex_finished_walk(const char *status, const char *after_key,
			    struct tindex_created_item *out, size_t max)
{
	return status_ok(status) ? walk_index(status, after_key, out, max) : 0;
}

/* ---- retention ---- */

struct expire {
	int (*fn)(const char *id, void *arg);
	void *arg;
	size_t removed;
	bool stop;
	const char *dir;
	bool descend; /* in an hour folder: minute folders are walked too */
};

static int expire_name(const char *name, void *arg)
{
	struct expire *x = arg;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", x->dir, name);
	if (x->descend && strlen(name) == 2 && strspn(name, "0123456789") == 2) {
		struct expire inner = *x;
		inner.dir = path;
		inner.descend = false;
		tindex_each_name(path, expire_name, &inner);
		x->removed = inner.removed;
		x->stop = inner.stop;
		tindex_prune_dir(path);
		return x->stop ? 1 : 0;
	}
	const char *dash = strchr(name, '-');
	int verdict = dash && store_id_valid(dash + 1) ? x->fn(dash + 1, x->arg) : 0;
	if (verdict < 0) {
		x->stop = true;
		return 1;
	}
	if (verdict > 0 && unlink(path) == 0)
		x->removed++;
	return 0;
}

struct expire_hours {
	const char *before;
	const char *dir;
	struct expire *x;
};

static int expire_hour(const char *name, void *arg)
{
	struct expire_hours *e = arg;
	if (strlen(name) != HOUR_NAME_LEN || strcmp(name, e->before) >= 0)
		return 0;
	char hour_dir[PATH_MAX];
	snprintf(hour_dir, sizeof hour_dir, "%s/%s", e->dir, name);
	e->x->dir = hour_dir;
	e->x->descend = true;
	tindex_each_name(hour_dir, expire_name, e->x);
	tindex_prune_dir(hour_dir);
	return e->x->stop ? 1 : 0;
}

static size_t expire_index(const char *root, const char *before_hour,
			   int (*fn)(const char *id, void *arg), void *arg)
{
	char dir[PATH_MAX];
	tindex_path(dir, sizeof dir, root, NULL);
	struct expire x = {.fn = fn, .arg = arg};
	struct expire_hours e = {before_hour, dir, &x};
	tindex_each_name(dir, expire_hour, &e);
	return x.removed;
}

size_t tindex_created_expire(const char *before_hour, int (*fn)(const char *id, void *arg),
			     void *arg)
{
	return expire_index("created", before_hour, fn, arg);
}

struct expire_statuses {
	const char *before_hour;
	int (*fn)(const char *id, void *arg);
	void *arg;
};

static int expire_status(const char *name, void *arg)
{
	const struct expire_statuses *e = arg;
	char root[48];
	if (!status_ok(name))
		return 0;
	root_sub(name, root, sizeof root);
	expire_index(root, e->before_hour, e->fn, e->arg);
	return 0;
}

void tindex_finished_expire(const char *before_hour, int (*fn)(const char *id, void *arg),
			    void *arg)
{
	char dir[PATH_MAX];
	struct expire_statuses e = {before_hour, fn, arg};
	tindex_path(dir, sizeof dir, "finished", NULL);
	tindex_each_name(dir, expire_status, &e);
}
