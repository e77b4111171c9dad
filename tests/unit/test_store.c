/* Unit tests for lib/store.c: the state tree's files, locks and guarantees.
 *
 * Every test runs in its own fresh mkdtemp() directory (store_init(dir)) that the
 * teardown removes. The concurrency tests fork real processes: flock stripes and
 * rename() are what they exercise, so threads would prove nothing. Children never
 * call cmocka asserts (they would unwind into the parent's runner); they report
 * through their exit status instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/store.h"
#include "base/util.h"
#include "testutil.h"

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->dir = tu_mkdtemp();
	if (store_init(f->dir) < 0)
		return -1;
	store_set_lock_wait(5000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static int put_str(const char *kind, const char *id, const char *json)
{
	return store_put(kind, id, json, strlen(json));
}

static int create_str(const char *kind, const char *id, const char *json)
{
	return store_create(kind, id, json, strlen(json));
}

/* The single file matching a glob pattern below the root (NULL if not exactly one). */
static char *find_one(const char *pattern_rel)
{
	char pattern[4096];
	glob_t g;
	snprintf(pattern, sizeof pattern, "%s/%s", store_root(), pattern_rel);
	if (glob(pattern, 0, NULL, &g) != 0)
		return NULL;
	char *path = g.gl_pathc == 1 ? strdup(g.gl_pathv[0]) : NULL;
	globfree(&g);
	return path;
}

static size_t count_glob(const char *pattern_rel)
{
	char pattern[4096];
	glob_t g;
	snprintf(pattern, sizeof pattern, "%s/%s", store_root(), pattern_rel);
	if (glob(pattern, 0, NULL, &g) != 0)
		return 0;
	size_t n = g.gl_pathc;
	globfree(&g);
	return n;
}

static char *root_path(const char *rel)
{
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/%s", store_root(), rel);
	return p;
}

static long long load_int(const char *kind, const char *id, const char *key)
{
	yajl_val doc;
	int rc = store_load(kind, id, &doc);
	if (rc != STORE_OK)
		fail_msg("store_load %s/%s: %s", kind, id, store_strerror(rc));
	long long v = json_int_or(doc, key, -999);
	yajl_tree_free(doc);
	return v;
}

/* An edit that increments "n" (absent or no document counts as 0). */
static int edit_incr(yajl_val old, struct jgen *out, void *arg)
{
	int *calls = arg;
	if (calls)
		(*calls)++;
	jg_obj(out);
	jg_kint(out, "n", json_int_or(old, "n", 0) + 1);
	jg_obj_end(out);
	return STORE_OK;
}

/* An edit that refuses with the code given in arg. */
static int edit_refuse(yajl_val old, struct jgen *out, void *arg)
{
	jg_obj(out);
	jg_kint(out, "n", 12345);
	jg_obj_end(out);
	return *(int *)arg;
}

/* An edit that records whether it saw a document. */
static int edit_note_old(yajl_val old, struct jgen *out, void *arg)
{
	*(int *)arg = old ? 1 : 2;
	jg_obj(out);
	jg_kstr(out, "made", "by upsert");
	jg_obj_end(out);
	return STORE_OK;
}

/* An edit whose generator fails (a number where a key belongs). */
static int edit_broken_gen(yajl_val old, struct jgen *out, void *arg)
{
	jg_obj(out);
	jg_int(out, 1);
	jg_obj_end(out);
	return STORE_OK;
}

/* Which lock stripe (the locks/ file name) an id of kind maps to, found by writing
 * it in a scratch tree and looking at the lock file the write created. This uses
 * the documented layout (locks/<kind>.<n>) rather than copying the hash. */
static char *stripe_of(const char *kind, const char *id)
{
	char saved[4096];
	snprintf(saved, sizeof saved, "%s", store_root());
	char *scratch = tu_mkdtemp();
	assert_int_equal(store_init(scratch), 0);
	assert_int_equal(put_str(kind, id, "{}"), STORE_OK);
	char *lock = find_one("locks/*");
	assert_non_null(lock);
	char *name = strdup(strrchr(lock, '/') + 1);
	free(lock);
	tu_rmtree(scratch);
	free(scratch);
	assert_int_equal(store_init(saved), 0);
	return name;
}

/* ---- ids ---- */

static void test_id_validation(void **state)
{
	char long64[65], long65[66];
	memset(long64, 'a', 64);
	long64[64] = '\0';
	memset(long65, 'a', 65);
	long65[65] = '\0';

	const char *bad[] = {
	    "",	   "..",     ".",    "a/b",	    "/a",   ".x",  "-a",     "_a",
	    "a b", "a.json", "a\\b", "caf\xc3\xa9", "a\nb", "a:b", "%2e%2e", long65,
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (store_id_valid(bad[i]))
			fail_msg("id '%s' must be refused", bad[i]);
	assert_false(store_id_valid(NULL));

	const char *good[] = {"gpu-1", "A_b9", "a", "9", "a-", "x_-_y", long64};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!store_id_valid(good[i]))
			fail_msg("id '%s' must be accepted", good[i]);
}

static void test_invalid_ids_never_touch_the_disk(void **state)
{
	yajl_val doc = (yajl_val)1;
	/* "../escape" would land outside servers/ if it became a path. */
	assert_int_equal(create_str("servers", "../escape", "{}"), STORE_INVALID);
	assert_int_equal(put_str("servers", "../escape", "{}"), STORE_INVALID);
	assert_int_equal(store_update("servers", "../escape", STORE_UPSERT, edit_incr, NULL),
			 STORE_INVALID);
	assert_int_equal(store_load("servers", "../escape", &doc), STORE_INVALID);
	assert_null(doc);
	assert_int_equal(store_remove("servers", ""), STORE_INVALID);
	assert_false(store_exists("servers", "a/b"));
	char *p = root_path("escape.json");
	assert_false(tu_path_exists(p));
	free(p);
	/* Nothing was written anywhere, not even a lock. */
	assert_int_equal(count_glob("servers/*"), 0);
	assert_int_equal(count_glob("locks/*"), 0);
}

/* ---- create, load, put, remove ---- */

static void test_init_creates_tree(void **state)
{
	const char *dirs[] = {"servers", "tasks",  "locks",	   "corrupt",	   "run",
			      "queue",	 "active", "stats/events", "stats/hourly", "idempotency"};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char *p = root_path(dirs[i]);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		free(p);
	}
	/* Initialising an existing tree is fine (every process start does it). */
	assert_int_equal(store_init(store_root()), 0);
}

static void test_create_does_not_clobber(void **state)
{
	assert_int_equal(create_str("servers", "gpu-1", "{\"v\":1}"), STORE_OK);
	char *path = root_path("servers/gpu-1.json");
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);

	assert_int_equal(create_str("servers", "gpu-1", "{\"v\":2,\"other\":true}"), STORE_EXISTS);
	char *text = tu_read_file(path, NULL);
	assert_string_equal(text, "{\"v\":1}"); /* same bytes */
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino); /* same file, not replaced */
	assert_int_equal(load_int("servers", "gpu-1", "v"), 1);
	/* The losing writer cleaned up its temp file. */
	assert_int_equal(count_glob("servers/.*.tmp"), 0);
	free(text);
	free(path);
}

static void test_load_exists_put_remove(void **state)
{
	yajl_val doc = (yajl_val)1;
	assert_int_equal(store_load("servers", "nope", &doc), STORE_NOENT);
	assert_null(doc);
	assert_false(store_exists("servers", "nope"));

	assert_int_equal(put_str("servers", "s1", "{\"v\":1}"), STORE_OK); /* put creates */
	assert_true(store_exists("servers", "s1"));
	assert_int_equal(put_str("servers", "s1", "{\"v\":2}"), STORE_OK); /* and replaces */
	assert_int_equal(load_int("servers", "s1", "v"), 2);

	assert_int_equal(store_remove("servers", "s1"), STORE_OK);
	assert_false(store_exists("servers", "s1"));
	assert_int_equal(store_remove("servers", "s1"), STORE_NOENT);
	assert_int_equal(store_load("servers", "s1", &doc), STORE_NOENT);
	assert_int_equal(count_glob("servers/*"), 0);
	assert_int_equal(count_glob("servers/.*.tmp"), 0);
}

static void test_root_singleton_and_sharded_layout(void **state)
{
	/* STORE_ROOT objects live at <root>/<id>.json. */
	assert_int_equal(put_str(STORE_ROOT, "config", "{\"k\":3}"), STORE_OK);
	char *p = root_path("config.json");
	assert_true(tu_path_exists(p));
	free(p);
	assert_int_equal(load_int(STORE_ROOT, "config", "k"), 3);

	/* Sharded kinds live in a two-hex-digit subfolder, never flat. */
	assert_int_equal(create_str("tasks", "t-1", "{\"k\":4}"), STORE_OK);
	char *t = find_one("tasks/[0-9a-f][0-9a-f]/t-1.json");
	assert_non_null(t);
	free(t);
	assert_int_equal(count_glob("tasks/*.json"), 0);
	assert_int_equal(load_int("tasks", "t-1", "k"), 4);
}

/* ---- update ---- */

static void test_update_increments_and_upsert(void **state)
{
	int calls = 0;
	/* Without STORE_UPSERT an absent object is NOENT and the edit never runs. */
	assert_int_equal(store_update("servers", "c", 0, edit_incr, &calls), STORE_NOENT);
	assert_int_equal(calls, 0);
	assert_false(store_exists("servers", "c"));

	/* With it, the edit sees NULL and creates the object. */
	int seen = 0;
	assert_int_equal(store_update("servers", "c", STORE_UPSERT, edit_note_old, &seen),
			 STORE_OK);
	assert_int_equal(seen, 2);
	assert_int_equal(store_update("servers", "c", STORE_UPSERT, edit_note_old, &seen),
			 STORE_OK);
	assert_int_equal(seen, 1);

	for (int i = 0; i < 5; i++)
		assert_int_equal(store_update("servers", "c", 0, edit_incr, &calls), STORE_OK);
	assert_int_equal(calls, 5);
	assert_int_equal(load_int("servers", "c", "n"), 5);
	assert_int_equal(count_glob("servers/.*.tmp"), 0);
}

static void test_update_refusal_leaves_file_alone(void **state)
{
	assert_int_equal(create_str("servers", "r", "{\"n\":1}"), STORE_OK);
	char *path = root_path("servers/r.json");
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);

	/* Whatever the edit generated, a non-OK return writes nothing. */
	int codes[] = {STORE_UNCHANGED, STORE_EDIT_BASE + 7, STORE_BUSY};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		assert_int_equal(store_update("servers", "r", 0, edit_refuse, &codes[i]), codes[i]);
	/* A generator failure is an I/O-class error and writes nothing either. */
	assert_int_equal(store_update("servers", "r", 0, edit_broken_gen, NULL), STORE_IO);

	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	char *text = tu_read_file(path, NULL);
	assert_string_equal(text, "{\"n\":1}");
	free(text);
	free(path);
}

static void test_update_holds_the_stripe_lock(void **state)
{
	assert_int_equal(create_str("servers", "locked", "{\"n\":0}"), STORE_OK);
	char *stripe = stripe_of("servers", "locked");
	char rel[256];
	snprintf(rel, sizeof rel, "locks/%s", stripe);
	free(stripe);

	/* Another holder of the stripe (a separate open file description, as another
	 * process would have) makes writers wait, then give up with STORE_BUSY. */
	int held = store_lock_path(rel, 1000);
	assert_true(held >= 0);
	store_set_lock_wait(150);
	int calls = 0;
	int64_t t0 = mono_ms();
	assert_int_equal(store_update("servers", "locked", 0, edit_incr, &calls), STORE_BUSY);
	int64_t waited = mono_ms() - t0;
	assert_int_equal(calls, 0); /* the edit never ran without the lock */
	assert_true(waited >= 150);
	assert_true(waited < 3000); /* the wait is bounded */
	assert_int_equal(put_str("servers", "locked", "{\"n\":99}"), STORE_BUSY);
	assert_int_equal(store_remove("servers", "locked"), STORE_BUSY);
	assert_int_equal(load_int("servers", "locked", "n"), 0); /* readers take no lock */

	/* store_lock_path itself reports the timeout as EWOULDBLOCK. */
	assert_int_equal(store_lock_path(rel, 20), -1);
	assert_int_equal(errno, EWOULDBLOCK);

	store_unlock(held);
	assert_int_equal(store_update("servers", "locked", 0, edit_incr, &calls), STORE_OK);
	assert_int_equal(load_int("servers", "locked", "n"), 1);
}

/* ---- corruption ---- */

static void test_corrupt_file_is_quarantined(void **state)
{
	char *path = root_path("servers/bad.json");
	const char *garbage = "{\"half\": written";
	assert_int_equal(tu_write_file(path, garbage, strlen(garbage)), 0);

	yajl_val doc = (yajl_val)1;
	assert_int_equal(store_load("servers", "bad", &doc), STORE_CORRUPT);
	assert_null(doc);
	assert_false(tu_path_exists(path));
	/* Moved, not deleted: the bytes are kept for a human under corrupt/. */
	char *moved = find_one("corrupt/*bad*");
	assert_non_null(moved);
	assert_non_null(strstr(moved, "servers"));
	char *text = tu_read_file(moved, NULL);
	assert_string_equal(text, garbage);
	free(text);
	free(moved);
	/* Once quarantined, the object is simply absent. */
	assert_int_equal(store_load("servers", "bad", &doc), STORE_NOENT);
	free(path);
}

static void test_non_object_and_empty_documents_are_corrupt(void **state)
{
	/* Valid JSON that is not an object is not one of our documents. An empty
	 * file (a crashed non-atomic writer) is not either. Sharded kinds too. */
	assert_int_equal(create_str("tasks", "arr", "{}"), STORE_OK);
	char *tpath = find_one("tasks/*/arr.json");
	assert_non_null(tpath);
	assert_int_equal(tu_write_file(tpath, "[1,2]", 5), 0);
	char *empty = root_path("servers/empty.json");
	assert_int_equal(tu_write_file(empty, "", 0), 0);

	yajl_val doc;
	assert_int_equal(store_load("tasks", "arr", &doc), STORE_CORRUPT);
	assert_int_equal(store_load("servers", "empty", &doc), STORE_CORRUPT);
	assert_int_equal(count_glob("corrupt/*"), 2);
	assert_false(tu_path_exists(tpath));
	assert_false(tu_path_exists(empty));
	assert_int_equal(store_load("tasks", "arr", &doc), STORE_NOENT);
	free(tpath);
	free(empty);
}

static void test_update_of_corrupt_file(void **state)
{
	char *path = root_path("servers/u.json");
	assert_int_equal(tu_write_file(path, "nope", 4), 0);
	int calls = 0;
	/* The edit must not run on garbage (it would "repair" it from nothing). */
	assert_int_equal(store_update("servers", "u", STORE_UPSERT, edit_incr, &calls),
			 STORE_CORRUPT);
	assert_int_equal(calls, 0);
	assert_false(tu_path_exists(path));
	assert_int_equal(count_glob("corrupt/*"), 1);
	free(path);
}

/* ---- listing and temp files ---- */

struct collected {
	char ids[200][STORE_ID_MAX + 1];
	int n;
	int stop_after; /* 0 = never */
};

static int collect(const char *id, void *arg)
{
	struct collected *c = arg;
	if (c->n < 200)
		snprintf(c->ids[c->n], sizeof c->ids[0], "%s", id);
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 42 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_list_sharded_and_flat(void **state)
{
	/* 60 tasks spread over shards. */
	char id[32];
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof id, "task-%02d", i);
		assert_int_equal(create_str("tasks", id, "{}"), STORE_OK);
	}
	assert_true(count_glob("tasks/*/") > 1); /* really sharded */

	static struct collected c;
	memset(&c, 0, sizeof c);
	assert_int_equal(store_list("tasks", collect, &c), 0);
	assert_int_equal(c.n, 60);
	qsort(c.ids, (size_t)c.n, sizeof c.ids[0], cmp_str);
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof id, "task-%02d", i);
		assert_string_equal(c.ids[i], id); /* each exactly once */
	}

	/* Flat kind; the folder also holds things that are not objects. */
	assert_int_equal(create_str("servers", "b", "{}"), STORE_OK);
	assert_int_equal(create_str("servers", "a", "{}"), STORE_OK);
	char *p;
	p = root_path("servers/.a.json.host.1.abcd1234.tmp");
	assert_int_equal(tu_write_file(p, "{", 1), 0);
	free(p);
	p = root_path("servers/notes.txt");
	assert_int_equal(tu_write_file(p, "x", 1), 0);
	free(p);
	p = root_path("servers/-bad.json");
	assert_int_equal(tu_write_file(p, "{}", 2), 0);
	free(p);
	p = root_path("servers/.json");
	assert_int_equal(tu_write_file(p, "{}", 2), 0);
	free(p);
	memset(&c, 0, sizeof c);
	assert_int_equal(store_list("servers", collect, &c), 0);
	assert_int_equal(c.n, 2);
	qsort(c.ids, (size_t)c.n, sizeof c.ids[0], cmp_str);
	assert_string_equal(c.ids[0], "a");
	assert_string_equal(c.ids[1], "b");

	/* An empty kind lists nothing. */
	memset(&c, 0, sizeof c);
	assert_int_equal(store_list("idempotency", collect, &c), 0);
	assert_int_equal(c.n, 0);
}

static void test_list_stops_early(void **state)
{
	char id[32];
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof id, "t%d", i);
		assert_int_equal(create_str("tasks", id, "{}"), STORE_OK);
	}
	static struct collected c;
	memset(&c, 0, sizeof c);
	c.stop_after = 3;
	assert_int_equal(store_list("tasks", collect, &c), 42);
	assert_int_equal(c.n, 3);
}

static void test_list_ids_sorted_and_bounded(void **state)
{
	const char *ids[] = {"m", "b", "z", "a"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(create_str("servers", ids[i], "{}"), STORE_OK);
	char(*v)[STORE_ID_MAX + 1];
	size_t n = store_list_ids("servers", 100, &v);
	assert_int_equal(n, 4);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	assert_string_equal(v[2], "m");
	assert_string_equal(v[3], "z");
	free(v);
	n = store_list_ids("servers", 2, &v); /* the first two listed, sorted */
	assert_int_equal(n, 2);
	assert_true(strcmp(v[0], v[1]) < 0);
	free(v);
	assert_int_equal(store_list_ids("idempotency", 100, &v), 0);
	free(v);
}

static bool keep_digits(const char *name, void *elem, const void *arg)
{
	(void)arg;
	*(long *)elem = strtol(name, NULL, 10);
	return strspn(name, "0123456789") == strlen(name);
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static void test_dir_sorted(void **state)
{
	char *dir = root_path("scratch");
	assert_int_equal(mkdir(dir, 0750), 0);
	const char *names[] = {"30", "5", ".7", "x1", "100"};
	char path[4096];
	for (size_t i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		assert_int_equal(tu_write_file(path, "", 0), 0);
	}
	size_t n;
	long *v = store_dir_sorted(dir, sizeof *v, 100, keep_digits, NULL, cmp_long, &n);
	assert_int_equal(n, 3); /* the dot file is skipped, "x1" refused */
	assert_int_equal(v[0], 5);
	assert_int_equal(v[1], 30);
	assert_int_equal(v[2], 100);
	free(v);
	v = store_dir_sorted(dir, sizeof *v, 1, keep_digits, NULL, cmp_long, &n);
	assert_int_equal(n, 1);
	free(v);
	snprintf(path, sizeof path, "%s/none", dir);
	assert_null(store_dir_sorted(path, sizeof *v, 100, keep_digits, NULL, cmp_long, &n));
	assert_int_equal(n, 0);
	free(dir);
}

/* Creates a temp file as a writer killed between open() and rename() leaves it. */
static void make_temp(const char *dir_rel, const char *name, int age_s)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s/%s", store_root(), dir_rel, name);
	assert_int_equal(tu_write_file(path, "{\"partial", 9), 0);
	if (age_s)
		assert_int_equal(tu_age_file(path, age_s), 0);
}

static void test_clean_temp_removes_crashed_writers_files(void **state)
{
	/* A real object in a shard gives us a shard folder to litter. */
	assert_int_equal(create_str("tasks", "t1", "{}"), STORE_OK);
	char *obj = find_one("tasks/*/t1.json");
	assert_non_null(obj);
	char shard[64];
	snprintf(shard, sizeof shard, "tasks/%.2s", obj + strlen(obj) - strlen("ab/t1.json"));
	free(obj);

	make_temp("servers", ".gpu-1.json.node-a.4242.deadbeef.tmp", 3600); /* stale */
	make_temp("servers", ".gpu-2.json.node-a.4243.cafebabe.tmp", 0);    /* in flight */
	make_temp("servers", "keep.tmp", 3600); /* not ours: no leading dot */
	make_temp("servers", ".hidden", 3600);	/* not a temp file */
	make_temp(shard, ".t1.json.node-b.77.0badf00d.tmp", 7200);
	make_temp(shard, ".t2.json.node-b.78.0badf00e.tmp", 7200);
	/* An old object file is data, never garbage. */
	assert_int_equal(create_str("servers", "old", "{}"), STORE_OK);
	char *old = root_path("servers/old.json");
	assert_int_equal(tu_age_file(old, 7200), 0);

	assert_int_equal(store_clean_temp("servers", 60), 1);
	assert_int_equal(store_clean_temp("tasks", 60), 2);
	assert_int_equal(count_glob("servers/.gpu-1*"), 0);
	assert_int_equal(count_glob("servers/.gpu-2*"), 1); /* younger than max age */
	assert_int_equal(count_glob("servers/keep.tmp"), 1);
	assert_int_equal(count_glob("servers/.hidden"), 1);
	assert_true(tu_path_exists(old));
	assert_int_equal(count_glob("tasks/*/.*.tmp"), 0);
	assert_int_equal(load_int("tasks", "t1", "n"), -999); /* object intact */
	/* Nothing left to do the second time. */
	assert_int_equal(store_clean_temp("servers", 60), 0);
	free(old);
}

/* ---- concurrency: lost updates ---- */

/* Forks nproc children; each runs rounds increments over the ids (in turn). Returns
 * the number of children that failed. */
static int run_incrementers(int nproc, int rounds, const char *const *ids, int nids)
{
	pid_t pids[16];
	fflush(NULL);
	for (int p = 0; p < nproc; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			for (int r = 0; r < rounds; r++)
				for (int i = 0; i < nids; i++)
					if (store_update("servers", ids[(i + p) % nids], 0,
							 edit_incr, NULL) != STORE_OK)
						_exit(10 + i);
			_exit(0);
		}
	}
	int failed = 0;
	for (int p = 0; p < nproc; p++) {
		int st;
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			print_message("# child %d: status 0x%x\n", p, st);
			failed++;
		}
	}
	return failed;
}

static void test_no_lost_updates_same_object(void **state)
{
	/* A generous wait: under valgrind a round trip is slow, and STORE_BUSY would
	 * be reported by the child as a failure, not hidden as a lost update. */
	store_set_lock_wait(60000);
	assert_int_equal(create_str("servers", "counter", "{\"n\":0}"), STORE_OK);
	const char *ids[] = {"counter"};
	assert_int_equal(run_incrementers(4, 200, ids, 1), 0);
	assert_int_equal(load_int("servers", "counter", "n"), 800);
	assert_int_equal(count_glob("servers/.*.tmp"), 0);
}

/* Two ids on the same stripe (sharing == true) or on different ones. */
static void pick_pair(bool sharing, char a[16], char b[16])
{
	char *stripes[64] = {0};
	char ids[64][16];
	for (int i = 0; i < 64; i++) {
		snprintf(ids[i], sizeof ids[i], "obj-%d", i);
		stripes[i] = stripe_of("servers", ids[i]);
		for (int j = 0; j < i; j++)
			if ((strcmp(stripes[i], stripes[j]) == 0) == sharing) {
				snprintf(a, 16, "%s", ids[j]);
				snprintf(b, 16, "%s", ids[i]);
				for (int k = 0; k <= i; k++)
					free(stripes[k]);
				return;
			}
	}
	for (int k = 0; k < 64; k++)
		free(stripes[k]);
	fail_msg("no pair of ids %s a lock stripe among 64", sharing ? "sharing" : "not sharing");
}

static void race_two_objects(bool sharing)
{
	char a[16], b[16];
	pick_pair(sharing, a, b);
	print_message("# %s and %s %s a stripe\n", a, b, sharing ? "share" : "do not share");
	store_set_lock_wait(60000);
	assert_int_equal(create_str("servers", a, "{\"n\":0}"), STORE_OK);
	assert_int_equal(create_str("servers", b, "{\"n\":0}"), STORE_OK);
	const char *ids[] = {a, b};
	/* A process never holds two locks of one kind, so a shared stripe must not
	 * deadlock; it only serialises. */
	assert_int_equal(run_incrementers(4, 200, ids, 2), 0);
	assert_int_equal(load_int("servers", a, "n"), 800);
	assert_int_equal(load_int("servers", b, "n"), 800);
}

static void test_no_lost_updates_shared_stripe(void **state)
{
	race_two_objects(true);
}

static void test_no_lost_updates_separate_stripes(void **state)
{
	race_two_objects(false);
}

/* ---- crash safety ---- */

/* The child: rewrites the object forever, alternating a big and a small version so
 * a torn write would show as a truncated or mixed document. */
static void crash_writer(const char *big, size_t big_len) __attribute__((noreturn));
static void crash_writer(const char *big, size_t big_len)
{
	char small[64];
	for (unsigned i = 0;; i++) {
		int rc;
		if (i % 2) {
			rc = store_put("servers", "victim", big, big_len);
		} else {
			int n = snprintf(small, sizeof small, "{\"seq\":%u}", i);
			rc = store_put("servers", "victim", small, (size_t)n);
		}
		if (rc != STORE_OK)
			_exit(3);
	}
}

/* Every non-temp file in servers/ must parse as an object. */
static void assert_every_json_parses(void)
{
	char pattern[4096];
	glob_t g;
	snprintf(pattern, sizeof pattern, "%s/servers/*.json", store_root());
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		size_t len = 0;
		char *text = tu_read_file(g.gl_pathv[i], &len);
		assert_non_null(text);
		/* The big version has a 300 KiB string: the store's own limits, not the
		 * request defaults, apply to our documents. */
		static const struct json_limits lim = {4u << 20, 96, 4u << 20};
		yajl_val v = json_parse(text, len, &lim, NULL);
		if (!v || !YAJL_IS_OBJECT(v))
			fail_msg("%s is partial (%zu bytes)", g.gl_pathv[i], len);
		yajl_tree_free(v);
		free(text);
	}
	globfree(&g);
}

static void test_kill_9_never_leaves_a_partial_document(void **state)
{
	/* ~300 KiB: big enough that a write() is not instantaneous. */
	struct buf big = BUF_INIT;
	buf_adds(&big, "{\"seq\":1,\"pad\":\"");
	for (int i = 0; i < 300 * 1024 / 64; i++)
		buf_adds(&big, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	buf_adds(&big, "\",\"end\":true}");
	assert_int_equal(put_str("servers", "victim", "{\"seq\":0}"), STORE_OK);

	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	srand(seed);
	print_message("# crash test seed %u\n", seed);
	int big_seen = 0;
	for (int round = 0; round < 50; round++) {
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_writer(big.data, big.len);
		sleep_ms(1 + (unsigned)(rand() % 25)); /* a random moment of the loop */
		assert_int_equal(kill(pid, SIGKILL), 0);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
			fail_msg("writer ended by itself (status 0x%x) in round %d", st, round);

		yajl_val doc;
		int rc = store_load("servers", "victim", &doc);
		if (rc != STORE_OK)
			fail_msg("round %d: store_load gave %s", round, store_strerror(rc));
		if (json_get(doc, "pad")) {
			/* The big version is whole: its last field made it too. */
			assert_true(json_bool_or(doc, "end", false));
			big_seen++;
		}
		yajl_tree_free(doc);
		assert_every_json_parses();
		/* The only .json is the object itself: temp files are dot files. */
		assert_int_equal(count_glob("servers/*.json"), 1);
	}
	print_message("# %d of 50 kills left the big version\n", big_seen);
	assert_int_equal(count_glob("corrupt/*"), 0);
	buf_free(&big);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_id_validation),
	    T(test_invalid_ids_never_touch_the_disk),
	    T(test_init_creates_tree),
	    T(test_create_does_not_clobber),
	    T(test_load_exists_put_remove),
	    T(test_root_singleton_and_sharded_layout),
	    T(test_update_increments_and_upsert),
	    T(test_update_refusal_leaves_file_alone),
	    T(test_update_holds_the_stripe_lock),
	    T(test_corrupt_file_is_quarantined),
	    T(test_non_object_and_empty_documents_are_corrupt),
	    T(test_update_of_corrupt_file),
	    T(test_list_sharded_and_flat),
	    T(test_list_stops_early),
	    T(test_list_ids_sorted_and_bounded),
	    T(test_dir_sorted),
	    T(test_clean_temp_removes_crashed_writers_files),
	    T(test_no_lost_updates_same_object),
	    T(test_no_lost_updates_shared_stripe),
	    T(test_no_lost_updates_separate_stripes),
	    T(test_kill_9_never_leaves_a_partial_document),
	};
#undef T
	/* The store logs quarantines and failures on stderr; keep TAP output clean by
	 * leaving stderr as it is (run-all.sh only counts "ok"/"not ok" lines). */
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
