/* The created/ index: every task by creation time, for listings newest first and
 * for retention.
 *
 *   created/<YYYYMMDDHH>/<MM>/<createdAt>-<id>
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

static void entry_dir(int64_t created_at, char *out, size_t n)
{
	char hour[HOUR_NAME_LEN + 1], sub[64];
	hour_name(created_at, hour);
	snprintf(sub, sizeof sub, "created/%s/%02d", hour,
		 (int)((created_at - hour_floor(created_at)) / MINUTE_MS));
	tindex_path(out, n, sub, NULL);
}

int tindex_created_add(const char *id, int64_t created_at)
{
	char dir[PATH_MAX], name[96];
	entry_dir(created_at, dir, sizeof dir);
	snprintf(name, sizeof name, "%013lld-%s", (long long)created_at, id);
	return store_touch_entry(dir, name);
}

void tindex_created_remove(const char *id, int64_t created_at)
{
	char dir[PATH_MAX], path[PATH_MAX + 96], hour[HOUR_NAME_LEN + 1];
	entry_dir(created_at, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%013lld-%s", dir, (long long)created_at, id);
	if (unlink(path) == 0 || errno != ENOENT)
		return;
	hour_name(created_at, hour); /* a tree from before the minutes */
	snprintf(path, sizeof path, "%s/created/%s/%013lld-%s", store_root(), hour,
		 (long long)created_at, id);
	unlink(path);
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

size_t tindex_created_walk(const char *after_key, struct tindex_created_item *out, size_t max)
{
	struct walk w = {.after = after_key ? after_key : "", .out = out, .max = max};
	if (w.after[0])
		w.after_ms = strtoll(w.after, NULL, 10);
	char dir[PATH_MAX];
	tindex_path(dir, sizeof dir, "created", NULL);
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

size_t tindex_created_expire(const char *before_hour, int (*fn)(const char *id, void *arg),
			     void *arg)
{
	char dir[PATH_MAX];
	tindex_path(dir, sizeof dir, "created", NULL);
	struct expire x = {.fn = fn, .arg = arg};
	struct expire_hours e = {before_hour, dir, &x};
	tindex_each_name(dir, expire_hour, &e);
	return x.removed;
}
