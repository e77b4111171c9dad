/* Unit tests for lib/fs/queueindex.c and lib/fs/createdindex.c: the index folders'
 * order, their small folders, pruning, cursors and trees from before the buckets.
 * Every test runs in its own fresh mkdtemp() tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/hour.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "stats/statsq.h"
#include "testutil.h"

#define T0 1796000000000LL /* an hour's start plus a little: 2026-12-01T... */

static int setup(void **state)
{
	char *dir = tu_mkdtemp();
	if (store_init(dir) < 0)
		return -1;
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	tu_rmtree(*state);
	free(*state);
	return 0;
}

static void id_of(int n, char out[37])
{
	snprintf(out, 37, "00000000-0000-4000-8000-%012d", n);
}

static bool exists(const char *root, const char *rel)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", root, rel);
	return stat(path, &st) == 0;
}

struct seen {
	char ids[8][37];
	int attempts[8];
	int n;
};

static int collect(const char *id, int attempt, void *arg)
{
	struct seen *s = arg;
	if (s->n < 8) {
		snprintf(s->ids[s->n], 37, "%s", id);
		s->attempts[s->n++] = attempt;
	}
	return 0;
}

/* An attempt that ends removes its own entry, never its successor's: the end of
 * attempt 1, removed after attempt 2 was claimed (the interleaving that left a task
 * PROCESSING with no entry, which no sweep then timed out), leaves attempt 2's. */
static void test_active_entries_per_attempt(void **state)
{
	const char *root = *state;
	char id[37];
	id_of(7, id);
	assert_int_equal(tindex_active_add(id, 1), 0);
	assert_int_equal(tindex_active_add(id, 2), 0); /* the retry's claim */
	tindex_active_remove(id, 1);		       /* attempt 1's end, late */
	char rel[64];
	snprintf(rel, sizeof rel, "active/%s.2", id);
	assert_true(exists(root, rel));
	struct seen s = {0};
	tindex_active_each(collect, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], id);
	assert_int_equal(s.attempts[0], 2);
	/* An older tree's plain entry reads as attempt 0; names that are neither are
	 * skipped, whatever lies in the folder. */
	char other[37], path[4200];
	id_of(8, other);
	assert_int_equal(tindex_active_add(other, 0), 0);
	const char *junk[] = {"x.1", "00000000-0000-4000-8000-000000000009.", "00000000-0000-4000-8000-000000000009.0",
			      "00000000-0000-4000-8000-000000000009.1x", "../up.1"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		if (strchr(junk[i], '/'))
			continue;
		snprintf(path, sizeof path, "%s/active/%s", root, junk[i]);
		assert_int_equal(tu_write_file(path, "", 0), 0);
	}
	memset(&s, 0, sizeof s);
	tindex_active_each(collect, &s);
	assert_int_equal(s.n, 2);
	int plain = strcmp(s.ids[0], other) == 0 ? 0 : 1;
	assert_string_equal(s.ids[plain], other);
	assert_int_equal(s.attempts[plain], 0);
	assert_int_equal(tindex_active_add("../x", 1), STORE_INVALID);
	assert_int_equal(tindex_active_add(id, -1), STORE_INVALID);
}

/* Priority first, then queuedAt, across buckets; the key is the entry's path. */
static void test_queue_order_across_priorities_and_buckets(void **state)
{
	(void)state;
	char id[37], key[TINDEX_KEY_MAX];
	/* n: priority, queuedAt (three buckets apart), in a scrambled order */
	const struct {
		int n, prio;
		int64_t at;
	} in[] = {{1, 0, T0 + 200000}, {2, 5, T0 + 300000}, {3, 0, T0}, {4, 5, T0 + 100},
		  {5, -3, T0 - 500000}, {6, 0, T0 + 100000}};
	for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
		id_of(in[i].n, id);
		assert_int_equal(tindex_queue_add(id, in[i].prio, in[i].at, 0, key), STORE_OK);
		assert_non_null(strchr(key, '/'));
	}
	struct tindex_entry *e;
	size_t n = tindex_queue_list(&e, 100);
	assert_int_equal(n, 6);
	const int want[] = {4, 2, 3, 6, 1, 5};
	for (size_t i = 0; i < n; i++) {
		id_of(want[i], id);
		assert_string_equal(e[i].id, id);
	}
	free(e);
	assert_int_equal(tindex_queue_depth(), 6);
	assert_false(tindex_queue_empty());
}

/* The head costs the first buckets only: a listing for two reads one bucket. An
 * entry planted out of place in the last bucket (older than all) shows it: it is
 * listed (last, with its bucket) only when the listing reads that far. */
static void test_queue_list_reads_only_the_head(void **state)
{
	char id[37], key[TINDEX_KEY_MAX];
	for (int i = 0; i < 50; i++) {
		id_of(i, id);
		/* ten buckets of five */
		assert_int_equal(tindex_queue_add(id, 0, T0 + (int64_t)(i / 5) * 70000 + i, 0, key),
				 STORE_OK);
	}
	char path[4096];
	id_of(99, id);
	snprintf(path, sizeof path, "%s/queue/%.*s/%013lld-%013lld-%s", (char *)*state,
		 (int)(strrchr(key, '/') - key), key, (long long)(T0 - 5), 0LL, id);
	assert_int_equal(tu_write_file(path, "", 0), 0);
	struct tindex_entry *e;
	size_t n = tindex_queue_list(&e, 2);
	assert_int_equal(n, 2);
	id_of(0, id);
	assert_string_equal(e[0].id, id);
	free(e);
	n = tindex_queue_list(&e, 100);
	assert_int_equal(n, 51);
	id_of(99, id);
	assert_string_equal(e[45].id, id); /* first of the last bucket */
	free(e);
}

/* Removing a bucket's last entry removes the bucket, and the priority with it. */
static void test_queue_remove_prunes_folders(void **state)
{
	char id[37], k1[TINDEX_KEY_MAX], k2[TINDEX_KEY_MAX];
	id_of(1, id);
	assert_int_equal(tindex_queue_add(id, 7, T0, 0, k1), STORE_OK);
	id_of(2, id);
	assert_int_equal(tindex_queue_add(id, 7, T0 + 1, 0, k2), STORE_OK);
	char bucket[128];
	snprintf(bucket, sizeof bucket, "queue/%.*s", (int)(strrchr(k1, '/') - k1), k1);
	tindex_queue_remove(k1);
	assert_true(exists(*state, bucket));
	tindex_queue_remove(k2);
	assert_false(exists(*state, bucket));
	assert_true(tindex_queue_empty());
	assert_int_equal(tindex_queue_depth(), 0);
	/* A key with ".." never becomes a path. */
	tindex_queue_remove("../servers/x.json");
	/* And the queue takes entries again at once. */
	assert_int_equal(tindex_queue_add(id, 7, T0 + 2, 0, k2), STORE_OK);
	assert_false(tindex_queue_empty());
}

/* An older tree's flat entries are listed in order with the buckets' ones. */
static void test_queue_flat_entries_of_an_older_tree(void **state)
{
	char id[37], key[TINDEX_KEY_MAX], name[160], path[4096];
	id_of(1, id);
	assert_int_equal(tindex_queue_add(id, 0, T0 + 1000, 0, key), STORE_OK);
	id_of(2, id); /* flat, older, same priority: it goes first */
	snprintf(name, sizeof name, "%06d-%013lld-%013lld-%s", 500000, (long long)T0, 0LL, id);
	snprintf(path, sizeof path, "%s/queue/%s", (char *)*state, name);
	assert_int_equal(tu_write_file(path, "", 0), 0);
	struct tindex_entry *e;
	size_t n = tindex_queue_list(&e, 10);
	assert_int_equal(n, 2);
	assert_string_equal(e[0].id, id);
	assert_string_equal(e[0].key, name);
	free(e);
	assert_int_equal(tindex_queue_depth(), 2);
	tindex_queue_remove(name);
	assert_int_equal(tindex_queue_depth(), 1);
}

/* Newest first across hours and minutes; a cursor resumes right after its task. */
static void test_created_walk_pages(void **state)
{
	(void)state;
	char id[37];
	for (int i = 0; i < 30; i++) {
		id_of(i, id);
		/* every 7 minutes: spans several hours */
		assert_int_equal(tindex_created_add(id, T0 + (int64_t)i * 420000), STORE_OK);
	}
	struct tindex_created_item v[12];
	char after[TINDEX_KEY_MAX] = "";
	int expect = 29, pages = 0;
	for (;;) {
		size_t n = tindex_created_walk(after, v, 12);
		for (size_t i = 0; i < n; i++) {
			id_of(expect--, id);
			assert_string_equal(v[i].id, id);
		}
		pages++;
		if (n < 12)
			break;
		snprintf(after, sizeof after, "%s", v[n - 1].key);
	}
	assert_int_equal(expect, -1);
	assert_int_equal(pages, 3);
}

/* What the live figures read of the queue: the longest-waiting due task, from the
 * entries' order (priority, queuedAt, notBefore, id), in both forms of entry. */
static void test_live_figures_read_the_queue(void **state)
{
	(void)state;
	char id[37], key[TINDEX_KEY_MAX];
	const int64_t now = T0 + 600000;
	for (int i = 1; i <= 3; i++) {
		id_of(i, id);
		assert_int_equal(store_create("tasks", id, "{\"status\":\"QUEUED\"}", 19), STORE_OK);
		/* 2 waits longest; 3 backs off until after now */
		int64_t at = i == 2 ? T0 : T0 + 1000 * i;
		assert_int_equal(tindex_queue_add(id, 0, at, i == 3 ? now + 60000 : 0, key), STORE_OK);
	}
	struct tindex_entry *e;
	size_t n = tindex_queue_list(&e, 10);
	assert_int_equal(n, 3);
	char want[64];
	snprintf(want, sizeof want, "500000-%013lld-", (long long)T0);
	assert_memory_equal(e[0].order, want, strlen(want));
	free(e);
	struct statsq_live l;
	statsq_live_load(&l, now);
	assert_int_equal(l.queue_depth, 3);
	assert_int_equal(l.due, 2);
	assert_int_equal(l.oldest_since, T0);
	id_of(2, id);
	assert_string_equal(l.oldest_task, id);
	statsq_live_free(&l);
}

static int gone(const char *task, void *arg)
{
	(void)task;
	(void)arg;
	return 1;
}

/* An hour of an older tree, entries in the hour folder itself, still lists in
 * order with the minutes beside it, and expires. */
static void test_created_flat_hour_and_retention(void **state)
{
	char id[37], hour[HOUR_NAME_LEN + 1], path[4096];
	hour_name(T0, hour);
	id_of(1, id);
	assert_int_equal(tindex_created_add(id, T0 + 1000), STORE_OK);
	id_of(2, id);
	snprintf(path, sizeof path, "%s/created/%s/%013lld-%s", (char *)*state, hour,
		 (long long)(T0 + 2000), id);
	assert_int_equal(tu_write_file(path, "", 0), 0);
	struct tindex_created_item v[4];
	size_t n = tindex_created_walk("", v, 4);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].id, id);
	char after_hour[HOUR_NAME_LEN + 1];
	hour_name(T0 + 3600000, after_hour);
	size_t removed = tindex_created_expire(after_hour, gone, NULL);
	assert_int_equal(removed, 2);
	char rel[64];
	snprintf(rel, sizeof rel, "created/%s", hour);
	assert_false(exists(*state, rel));
	assert_int_equal(tindex_created_walk("", v, 4), 0);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_queue_order_across_priorities_and_buckets, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_queue_list_reads_only_the_head, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_remove_prunes_folders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_flat_entries_of_an_older_tree, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_created_walk_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_active_entries_per_attempt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_figures_read_the_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_created_flat_hour_and_retention, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
