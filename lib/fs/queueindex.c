/* The queue/ index: QUEUED (and PENDING) tasks in dispatch order, in small folders
 * so that finding the head costs the same for ten waiting tasks or a million.
 *
 *   queue/<prio>/<bucket>/<queuedAt>-<notBefore>-<id>
 *
 * prio is 500000 - priority in six digits (names sort high priority first),
 * bucket the start (13 digits of ms) of the QUEUE_BUCKET_MS window holding
 * queuedAt, so within a priority buckets sort oldest first and names within a
 * bucket FIFO. An entry's key, kept in the task as queueKey, is its path under
 * queue/. The head is read from the first priority's first buckets only: the cost
 * of a listing is the number of priorities and buckets plus the entries of the
 * buckets it reads, not the queue's length. A bucket (and a priority) folder is
 * removed with its last entry.
 *
 * Trees written before the buckets hold flat entries, queue/<prio>-<queuedAt>-
 * <notBefore>-<id> (key: the name): they are listed too, merged in order, until
 * they have drained. */
#include "fs/taskindex.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "fs/taskindex_dir.h"

#define PRIO_OFFSET 500000 /* priorities are -1000..1000; names must sort high first */
#define QUEUE_BUCKET_MS 65536LL
/* Flat entries of an old tree read at most (they only drain). */
#define FLAT_MAX 100000

int tindex_queue_add(const char *id, int priority, int64_t queued_at, int64_t not_before,
		     char key[TINDEX_KEY_MAX])
{
	char sub[64], dir[PATH_MAX];
	long long bucket = (long long)(queued_at - queued_at % QUEUE_BUCKET_MS);
	snprintf(sub, sizeof sub, "queue/%06d/%013lld", PRIO_OFFSET - priority, bucket);
	snprintf(key, TINDEX_KEY_MAX, "%06d/%013lld/%013lld-%013lld-%s", PRIO_OFFSET - priority,
		 bucket, (long long)queued_at, (long long)not_before, id);
	tindex_path(dir, sizeof dir, sub, NULL);
	return store_touch_entry(dir, strrchr(key, '/') + 1);
}

/* A key this file made: "<prio>/<bucket>/<name>" or a flat name; never "..". */
static bool key_ok(const char *key)
{
	return key && *key && strlen(key) < TINDEX_KEY_MAX && !strstr(key, "..") &&
	       strspn(key, "0123456789abcdefABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz_-/") ==
		   strlen(key);
}

void tindex_queue_remove(const char *key)
{
	char path[PATH_MAX];
	if (!key_ok(key))
		return;
	tindex_path(path, sizeof path, "queue", key);
	/* No directory fsync: a removal lost in a crash only leaves a stale hint. */
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("queue: cannot remove %s: %s", key, strerror(errno));
	char *slash = strrchr(path, '/');
	if (!strchr(key, '/') || !slash)
		return;
	*slash = '\0';
	tindex_prune_dir(path); /* the bucket, if that was its last entry */
	slash = strrchr(path, '/');
	if (slash) {
		*slash = '\0';
		rmdir(path); /* the priority, likewise (it holds no entries of its own) */
	}
}

/* "<queuedAt>-<notBefore>-<id>" (a bucket's entry; prefix "<prio>/<bucket>/") or
 * "<prio>-<queuedAt>-<notBefore>-<id>" (a flat one, prefix ""). */
struct parse_ctx {
	const char *prefix;
	bool flat;
};

static bool parse_entry(const char *name, void *elem, const void *arg)
{
	const struct parse_ctx *p = arg;
	struct tindex_entry *e = elem;
	int prio = 0, used = 0;
	long long queued, not_before;
	int got = p->flat ? sscanf(name, "%6d-%13lld-%13lld-%n", &prio, &queued, &not_before, &used)
			  : sscanf(name, "%13lld-%13lld-%n", &queued, &not_before, &used);
	if (got != (p->flat ? 3 : 2) || used == 0)
		return false;
	const char *id = name + used;
	if (!store_id_valid(id) || strlen(id) > TINDEX_ID_LEN)
		return false;
	if ((size_t)snprintf(e->key, sizeof e->key, "%s%s", p->prefix, name) >= sizeof e->key)
		return false;
	snprintf(e->id, sizeof e->id, "%s", id);
	e->queued_at = queued;
	e->not_before = not_before;
	/* Dispatch order across both forms: what the flat name says (priority, then
	 * queuedAt, notBefore and id), which a bucket's entry gets from its folder. */
	if (p->flat)
		snprintf(e->order, sizeof e->order, "%s", name);
	else
		snprintf(e->order, sizeof e->order, "%.6s-%s", p->prefix, name);
	(void)prio;
	return true;
}

static int cmp_order(const void *a, const void *b)
{
	return strcmp(((const struct tindex_entry *)a)->order, ((const struct tindex_entry *)b)->order);
}

/* Folder names: six digits (a priority), thirteen (a bucket). */
struct names {
	char (*v)[24];
	size_t n;
};

static bool keep_digits(const char *name, void *elem, const void *arg)
{
	size_t want = *(const size_t *)arg;
	if (strlen(name) != want || strspn(name, "0123456789") != want)
		return false;
	memcpy(elem, name, want + 1);
	return true;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void list_digits(const char *dir, size_t digits, struct names *out)
{
	out->v = store_dir_sorted(dir, sizeof *out->v, SIZE_MAX, keep_digits, &digits, cmp_name,
				  &out->n);
}

static void append(struct tindex_entry **all, size_t *n, size_t *cap, const struct tindex_entry *v,
		   size_t k)
{
	for (size_t i = 0; i < k; i++) {
		*all = array_grow(*all, *n, cap, sizeof **all, 64);
		(*all)[(*n)++] = v[i];
	}
}

/* Entries of one bucket, in order. */
static size_t read_bucket(const char *prio, const char *bucket, struct tindex_entry **out)
{
	char sub[64], dir[PATH_MAX], prefix[48];
	snprintf(sub, sizeof sub, "queue/%s/%s", prio, bucket);
	snprintf(prefix, sizeof prefix, "%s/%s/", prio, bucket);
	tindex_path(dir, sizeof dir, sub, NULL);
	struct parse_ctx p = {prefix, false};
	size_t n;
	*out = store_dir_sorted(dir, sizeof **out, SIZE_MAX, parse_entry, &p, cmp_order, &n);
	return n;
}

size_t tindex_queue_list(struct tindex_entry **out, size_t max)
{
	char dir[PATH_MAX];
	struct tindex_entry *all = NULL;
	size_t n = 0, cap = 0;
	tindex_path(dir, sizeof dir, "queue", NULL);

	/* Flat entries of an older tree, if any: all of them (they only drain). */
	struct parse_ctx flat = {"", true};
	size_t nflat;
	struct tindex_entry *fv =
	    store_dir_sorted(dir, sizeof *fv, FLAT_MAX, parse_entry, &flat, cmp_order, &nflat);
	append(&all, &n, &cap, fv, nflat);
	free(fv);

	/* Buckets in order until max entries are in hand: a later bucket holds only
	 * later tasks of the same priority, and a later priority only lower ones. */
	struct names prios;
	list_digits(dir, 6, &prios);
	size_t bucketed = 0;
	for (size_t p = 0; p < prios.n && bucketed < max; p++) {
		char sub[32], pdir[PATH_MAX];
		snprintf(sub, sizeof sub, "queue/%s", prios.v[p]);
		tindex_path(pdir, sizeof pdir, sub, NULL);
		struct names buckets;
		list_digits(pdir, 13, &buckets);
		for (size_t b = 0; b < buckets.n && bucketed < max; b++) {
			struct tindex_entry *bv;
			size_t k = read_bucket(prios.v[p], buckets.v[b], &bv);
			append(&all, &n, &cap, bv, k);
			bucketed += k;
			free(bv);
		}
		free(buckets.v);
	}
	free(prios.v);
	if (n && nflat)
		qsort(all, n, sizeof *all, cmp_order);
	*out = all;
	return n > max ? max : n;
}

struct count_ctx {
	const char *dir;
	size_t *n, max;
	int depth;
};

static int count_entry(const struct count_ctx *c)
{
	return ++*c->n >= c->max; /* non-zero stops the walk */
}

/* Counts the entries below one folder of queue/ (a bucket's, or flat names). */
static int count_below(const char *name, void *arg)
{
	const struct count_ctx *c = arg;
	bool folder = strspn(name, "0123456789") == strlen(name) && c->depth < 2;
	if (!folder)
		return count_entry(c);
	char sub[PATH_MAX];
	snprintf(sub, sizeof sub, "%s/%s", c->dir, name);
	struct count_ctx inner = {sub, c->n, c->max, c->depth + 1};
	return tindex_each_name(sub, count_below, &inner);
}

size_t tindex_queue_depth_upto(size_t max)
{
	char dir[PATH_MAX];
	size_t n = 0;
	tindex_path(dir, sizeof dir, "queue", NULL);
	struct count_ctx c = {dir, &n, max ? max : 1, 0};
	tindex_each_name(dir, count_below, &c);
	return n;
}

size_t tindex_queue_depth(void)
{
	return tindex_queue_depth_upto(SIZE_MAX);
}

bool tindex_queue_empty(void)
{
	char dir[PATH_MAX];
	tindex_path(dir, sizeof dir, "queue", NULL);
	/* Priority folders go with their last entry, so an empty queue is an empty
	 * folder: one small read, whatever the queue held before. */
	return tindex_dir_empty(dir);
}
