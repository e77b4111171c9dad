/* Unit tests for lib/rollup.c and lib/statsq.c against a real state tree: folding,
 * idempotence, crashes at every step (a forked child _exit()s at each crash point,
 * the way kill -9 would stop it), late lines, retention, and queries that combine
 * folded hours with raw events. Every test runs in a fresh mkdtemp() tree. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/hour.h"
#include "jobs/rollup.h"
#include "stats/stats.h"
#include "stats/statsq.h"
#include "fs/store.h"
#include "testutil.h"

#define HOUR HOUR_MS
#define BASE (1700006400000LL)		     /* 2023-11-15T00:00:00Z, an hour start */
#define NOW  (BASE + 10 * HOUR + 10 * 60000) /* 10:10 */

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->dir = tu_mkdtemp();
	if (store_init(f->dir) < 0)
		return -1;
	statsq_cache_clear();
	rollup_crash_hook = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	statsq_cache_clear();
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void append(const char *dir, int64_t hour, const char *text)
{
	char name[11], path[4096];
	hour_name(hour, name);
	snprintf(path, sizeof path, "%s/stats/events/%s.jsonl", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* n tasks in hour: created at +i s, dispatched 50 ms later, ended after run ms;
 * every fail-th one fails (0: none). */
static void workload(const char *dir, int64_t hour, const char *model, const char *server, int n,
		     int64_t run, int fail)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < n; i++) {
		int64_t t = hour + 1000LL * i + 500;
		bool failed = fail && i % fail == fail - 1;
		buf_printf(&b,
			   "{\"t\":%lld,\"type\":\"created\",\"task\":\"%s%d\",\"model\":\"%s\"}\n",
			   (long long)t, model, i, model);
		buf_printf(&b,
			   "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"%s%d\",\"model\":\"%s\","
			   "\"server\":\"%s\",\"waitMs\":50}\n",
			   (long long)(t + 50), model, i, model, server);
		buf_printf(&b,
			   "{\"t\":%lld,\"type\":\"%s\",\"task\":\"%s%d\",\"model\":\"%s\","
			   "\"server\":\"%s\",\"ms\":%lld}\n",
			   (long long)(t + 50 + run), failed ? "failed" : "completed", model, i,
			   model, server, (long long)run);
	}
	append(dir, hour, buf_str(&b));
	buf_free(&b);
}

static void three_hours(const char *dir)
{
	workload(dir, BASE + 2 * HOUR, "a", "gpu-1", 30, 1200, 5);
	workload(dir, BASE + 5 * HOUR, "b", "gpu-2", 20, 300, 0);
	workload(dir, BASE + 8 * HOUR, "a", "gpu-2", 10, 70000, 2);
	append(dir, BASE + 8 * HOUR,
	       "{\"t\":1700035200000,\"type\":\"server_status\",\"server\":\"gpu-2\","
	       "\"from\":\"online\",\"to\":\"offline\"}\n"); /* 08:00 */
}

static struct rollup_opts opts(int64_t now)
{
	struct rollup_opts o = ROLLUP_OPTS_DEFAULT;
	o.now = now;
	o.grace_s = 120;
	o.keep_days = 0;
	return o;
}

static char *read_rel(const char *dir, const char *rel)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/stats/%s", dir, rel);
	return tu_read_file(path, NULL);
}

/* Every file of stats/hourly and stats/totals.json, concatenated with names. */
static char *snapshot(const char *dir)
{
	struct buf b = BUF_INIT;
	int64_t *hours;
	size_t n = 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/stats/hourly", dir);
	for (int64_t h = BASE; h < BASE + 24 * HOUR; h += HOUR) {
		char name[11], rel[64];
		hour_name(h, name);
		snprintf(rel, sizeof rel, "hourly/%s.json", name);
		char *t = read_rel(dir, rel);
		if (t) {
			buf_printf(&b, "== %s\n%s", rel, t);
			free(t);
			n++;
		}
	}
	(void)hours;
	char *t = read_rel(dir, "totals.json");
	buf_printf(&b, "== totals (%zu documents)\n%s", n, t ? t : "(none)");
	free(t);
	return buf_detach(&b);
}

static void test_fold_and_idempotent(void **state)
{
	struct fixture *f = *state;
	three_hours(f->dir);
	struct rollup_opts o = opts(NOW);
	struct rollup_result r;
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(r.folded, 3);
	assert_int_equal(r.lines, 30 * 3 + 20 * 3 + 10 * 3 + 1);
	assert_int_equal(r.bad, 0);
	char *first = snapshot(f->dir);

	struct rollup_totals t;
	assert_int_equal(rollup_totals_load(&t), STORE_OK);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.agg.all.n[ST_CREATED], 60);
	assert_int_equal(t.agg.all.n[ST_COMPLETED], 24 + 20 + 5);
	assert_int_equal(t.agg.all.n[ST_FAILED], 6 + 5);
	assert_int_equal(t.agg.all.run.sum, 30 * 1200 + 20 * 300 + 10 * 70000);
	assert_int_equal(stats_server_c(&t.agg, "gpu-2")->run.count, 30);
	rollup_totals_free(&t);

	/* Twice = the same files, byte for byte. */
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(r.folded + r.refolded + r.recovered, 0);
	char *second = snapshot(f->dir);
	assert_string_equal(first, second);
	struct buf report = BUF_INIT;
	assert_int_equal(rollup_check(&report), 0);
	buf_free(&report);
	free(first);
	free(second);
}

static void test_unfinished_hours_wait(void **state)
{
	struct fixture *f = *state;
	workload(f->dir, BASE + 9 * HOUR, "a", "gpu-1", 5, 100, 0);
	workload(f->dir, BASE + 10 * HOUR, "a", "gpu-1", 5, 100, 0);
	struct rollup_result r;
	/* 10:01: hour 9 ended a minute ago, within the grace period; hour 10 is running. */
	struct rollup_opts o = opts(BASE + 10 * HOUR + 60000);
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(r.folded, 0);
	o.now = BASE + 10 * HOUR + 3 * 60000;
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(r.folded, 1);
	struct rollup_totals t;
	rollup_totals_load(&t);
	assert_non_null(rollup_totals_find(&t, BASE + 9 * HOUR));
	assert_null(rollup_totals_find(&t, BASE + 10 * HOUR));
	rollup_totals_free(&t);
}

/* The reference: the same events folded without interruption in another tree. */
static char *clean_reference(void)
{
	char *dir = tu_mkdtemp();
	assert_int_equal(store_init(dir), 0);
	three_hours(dir);
	struct rollup_opts o = opts(NOW);
	struct rollup_result r;
	assert_int_equal(rollup_run(&o, &r), 0);
	char *snap = snapshot(dir);
	tu_rmtree(dir);
	free(dir);
	return snap;
}

static int crash_at_call, crash_calls;
static void crash_hook(const char *point)
{
	(void)point;
	if (++crash_calls == crash_at_call)
		_exit(0);
}

static void test_crash_at_every_step(void **state)
{
	struct fixture *f = *state;
	char *want = clean_reference();
	store_init(f->dir);
	for (int k = 1;; k++) {
		/* A fresh tree for each crash point. */
		char *dir = tu_mkdtemp();
		assert_int_equal(store_init(dir), 0);
		three_hours(dir);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			crash_at_call = k;
			crash_calls = 0;
			rollup_crash_hook = crash_hook;
			struct rollup_opts o = opts(NOW);
			struct rollup_result r;
			rollup_run(&o, &r);
			_exit(crash_calls >= k ? 1 : 42); /* 42: ran to the end */
		}
		int status;
		waitpid(pid, &status, 0);
		assert_true(WIFEXITED(status));
		bool completed = WEXITSTATUS(status) == 42;
		/* Whatever was left, the next run finishes the job exactly. */
		struct rollup_opts o = opts(NOW);
		struct rollup_result r;
		assert_int_equal(rollup_run(&o, &r), 0);
		char *got = snapshot(dir);
		assert_string_equal(got, want);
		struct buf report = BUF_INIT;
		assert_int_equal(rollup_check(&report), 0);
		buf_free(&report);
		free(got);
		tu_rmtree(dir);
		free(dir);
		store_init(f->dir);
		if (completed)
			break;
		assert_true(k < 20);
	}
	free(want);
}

static void test_totals_lost_or_damaged(void **state)
{
	struct fixture *f = *state;
	three_hours(f->dir);
	struct rollup_opts o = opts(NOW);
	struct rollup_result r;
	rollup_run(&o, &r);
	char *want = snapshot(f->dir);
	char path[4096];
	snprintf(path, sizeof path, "%s/stats/totals.json", f->dir);
	/* Deleted (and a killed writer's temp file left behind): rebuilt from the
	 * documents, not folded again, and the temp file is gone. */
	unlink(path);
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s/stats/hourly/.2023111502.json.host.1.abcd.tmp", f->dir);
	assert_int_equal(tu_write_file(tmp, "{\"half", 6), 0);
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_true(r.rebuilt);
	assert_int_equal(r.folded, 0);
	char *got = snapshot(f->dir);
	assert_string_equal(got, want);
	assert_false(tu_path_exists(tmp));
	free(got);
	/* Damaged: the same. */
	assert_int_equal(tu_write_file(path, "{\"folded\":", 10), 0);
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_true(r.rebuilt);
	got = snapshot(f->dir);
	assert_string_equal(got, want);
	free(got);
	/* Tampered counts are caught by --check and repaired by --rebuild. */
	char *text = tu_read_file(path, NULL);
	char *p = strstr(text, "\"created\":60");
	assert_non_null(p);
	p[11] = '1';
	tu_write_file(path, text, strlen(text));
	free(text);
	struct buf report = BUF_INIT;
	assert_int_equal(rollup_check(&report), 1);
	assert_non_null(strstr(buf_str(&report), "created: totals 61, documents 60"));
	buf_free(&report);
	assert_int_equal(rollup_rebuild(), 0);
	got = snapshot(f->dir);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void test_late_lines_are_refolded(void **state)
{
	struct fixture *f = *state;
	three_hours(f->dir);
	struct rollup_opts o = opts(NOW);
	struct rollup_result r;
	rollup_run(&o, &r);
	/* A slow writer appends to hour 5 after it was folded. */
	workload(f->dir, BASE + 5 * HOUR, "late", "gpu-9", 2, 10, 0);
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(r.refolded, 1);
	assert_int_equal(r.folded, 0);
	struct rollup_totals t;
	rollup_totals_load(&t);
	assert_int_equal(t.agg.all.n[ST_CREATED], 62);
	assert_non_null(stats_model_c(&t.agg, "late"));
	rollup_totals_free(&t);
	struct buf report = BUF_INIT;
	assert_int_equal(rollup_check(&report), 0);
	buf_free(&report);

	/* And a crash right after totals stopped listing the hour loses nothing. */
	workload(f->dir, BASE + 5 * HOUR, "later", "gpu-9", 3, 10, 0);
	pid_t pid = fork();
	if (pid == 0) {
		crash_at_call = 1;
		crash_calls = 0;
		rollup_crash_hook = crash_hook;
		rollup_run(&o, &r);
		_exit(42);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0); /* crashed at "unlisted" */
	rollup_totals_load(&t);
	assert_null(rollup_totals_find(&t, BASE + 5 * HOUR));
	assert_int_equal(t.agg.all.n[ST_CREATED], 62 - 22); /* hour 5 unlisted */
	rollup_totals_free(&t);
	assert_int_equal(rollup_run(&o, &r), 0);
	rollup_totals_load(&t);
	assert_int_equal(t.agg.all.n[ST_CREATED], 65);
	rollup_totals_free(&t);
	assert_int_equal(rollup_check(&report), 0);
	buf_free(&report);
}

static void test_queries_combine_documents_and_events(void **state)
{
	struct fixture *f = *state;
	three_hours(f->dir);
	workload(f->dir, BASE + 10 * HOUR, "c", "gpu-1", 7, 500, 0); /* the current hour */
	struct stats_agg a;
	struct statsq_info info;
	/* Before any rollup: all raw. */
	statsq_all_time(NOW, &a, &info);
	assert_int_equal(a.all.n[ST_CREATED], 67);
	assert_int_equal(info.hours_raw, 4);
	stats_agg_free(&a);
	struct rollup_opts o = opts(NOW);
	struct rollup_result r;
	rollup_run(&o, &r);
	/* After: three documents plus the current hour's tail, same figures. */
	statsq_all_time(NOW, &a, &info);
	assert_int_equal(a.all.n[ST_CREATED], 67);
	assert_int_equal(info.hours_doc, 3);
	assert_int_equal(info.hours_raw, 1);
	stats_agg_free(&a);
	/* The current hour grows: figures follow to the line. */
	workload(f->dir, BASE + 10 * HOUR, "d", "gpu-1", 1, 5, 0);
	statsq_all_time(NOW, &a, &info);
	assert_int_equal(a.all.n[ST_CREATED], 68);
	stats_agg_free(&a);

	/* A window over part of hour 2 (folded) is exact from its raw events: tasks
	 * created at 02:00:10.5 .. 02:00:19.5. */
	statsq_window(BASE + 2 * HOUR + 10000, BASE + 2 * HOUR + 20000, NOW, &a, &info);
	assert_int_equal(a.all.n[ST_CREATED], 10);
	assert_false(info.approximate);
	stats_agg_free(&a);
	/* Whole hours come from documents. */
	statsq_window(BASE, BASE + 9 * HOUR, NOW, &a, &info);
	assert_int_equal(a.all.n[ST_CREATED], 60);
	assert_int_equal(info.hours_doc, 3);
	assert_int_equal(info.hours_raw, 0);
	/* gpu-2 went offline at 08:00 and stayed: 1 h offline in [00:00, 09:00); before it
	 * its state was only known from that event's "from" (online, 08:00 onwards only). */
	const struct stats_group *g2 = stats_server_c(&a, "gpu-2");
	assert_non_null(g2);
	assert_int_equal(g2->status_ms[SS_OFFLINE], HOUR);
	stats_agg_free(&a);

	/* Per hour. */
	struct stats_agg h[11];
	statsq_hours(BASE, 11, NOW, h);
	assert_int_equal(h[2].all.n[ST_CREATED], 30);
	assert_int_equal(h[3].all.n[ST_CREATED], 0);
	assert_int_equal(h[5].all.n[ST_COMPLETED], 20);
	assert_int_equal(h[8].all.n[ST_FAILED], 5);
	assert_int_equal(h[10].all.n[ST_CREATED], 8);
	for (int i = 0; i < 11; i++)
		stats_agg_free(&h[i]);

	/* Retention: once the raw events of hour 2 are gone, a partial window uses the
	 * whole hour's document and says so. */
	o.keep_days = 1;
	o.now = NOW + 2 * 24 * HOUR;
	rollup_run(&o, &r);
	assert_true(r.removed >= 3);
	statsq_window(BASE + 2 * HOUR + 10000, BASE + 2 * HOUR + 20000, NOW, &a, &info);
	assert_int_equal(a.all.n[ST_CREATED], 30);
	assert_true(info.approximate);
	stats_agg_free(&a);
	statsq_all_time(NOW, &a, &info);
	assert_int_equal(a.all.n[ST_CREATED], 68);
	stats_agg_free(&a);
}

static void test_bounded_runs_catch_up(void **state)
{
	struct fixture *f = *state;
	three_hours(f->dir);
	struct rollup_opts o = opts(NOW);
	o.max_hours = 1;
	struct rollup_result r;
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(r.folded, 1);
	assert_int_equal(r.pending, 2);
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(rollup_run(&o, &r), 0);
	assert_int_equal(r.folded, 1);
	assert_int_equal(r.pending, 0);
	char *got = snapshot(f->dir);
	char *want = clean_reference();
	assert_string_equal(got, want);
	free(got);
	free(want);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_fold_and_idempotent),     T(test_unfinished_hours_wait),
	    T(test_crash_at_every_step),     T(test_totals_lost_or_damaged),
	    T(test_late_lines_are_refolded), T(test_queries_combine_documents_and_events),
	    T(test_bounded_runs_catch_up),
	};
#undef T
	return cmocka_run_group_tests_name("rollup", tests, NULL, NULL);
}
