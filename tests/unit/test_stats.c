/* Unit tests for the pure statistics code: event lines (lib/stats.c), the fold math,
 * status time, hour names, the plain-language findings (lib/findings.c) and the alert
 * state machine (lib/alerts.c). */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hour.h"
#include "stats/alerts.h"
#include "stats/failrule.h"
#include "stats/findings.h"
#include "model/unservable.h"
#include "fs/store.h"
#include "testutil.h"
#include "stats/stats.h"
#include "stats/statsq.h"

#define H0   1700000000000LL /* 2023-11-14T22:13:20Z */
#define HOUR HOUR_MS

static void line(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
	buf_addch(b, '\n');
}

/* One task's life: created, dispatched after wait ms, ended (type) after run ms. */
static void task_life(struct buf *b, int64_t t, const char *id, const char *model,
		      const char *server, int64_t wait, int64_t run, const char *end)
{
	line(
	    b,
	    "{\"t\":%lld,\"type\":\"created\",\"task\":\"%s\",\"model\":\"%s\",\"createdAt\":%lld}",
	    (long long)t, id, model, (long long)t);
	line(b,
	     "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"%s\",\"model\":\"%s\",\"server\":\"%"
	     "s\","
	     "\"waitMs\":%lld}",
	     (long long)(t + wait), id, model, server, (long long)wait);
	line(b,
	     "{\"t\":%lld,\"type\":\"%s\",\"task\":\"%s\",\"model\":\"%s\",\"server\":\"%s\","
	     "\"ms\":%lld}",
	     (long long)(t + wait + run), end, id, model, server, (long long)run);
}

static void test_parse_line(void **state)
{
	(void)state;
	struct stats_event ev;
	const char *l1 = "{\"t\":5,\"type\":\"completed\",\"task\":\"x\",\"model\":\"m\","
			 "\"server\":\"s\",\"ms\":120,\"outcome\":\"succeeded\"}\n";
	assert_int_equal(stats_parse_line(l1, strlen(l1), &ev), 0);
	assert_int_equal(ev.kind, EV_TASK);
	assert_int_equal(ev.type, ST_COMPLETED);
	assert_int_equal(ev.t, 5);
	assert_int_equal(ev.ms, 120);
	assert_int_equal(ev.wait_ms, -1);
	assert_int_equal(ev.outcome, OC_SUCCEEDED);
	assert_string_equal(ev.model, "m");
	assert_string_equal(ev.server, "s");

	const char *l2 = "{\"t\":9,\"type\":\"server_status\",\"server\":\"g\",\"from\":\"online\","
			 "\"to\":\"offline\"}";
	assert_int_equal(stats_parse_line(l2, strlen(l2), &ev), 0);
	assert_int_equal(ev.kind, EV_SERVER_STATUS);
	assert_int_equal(ev.from, SS_ONLINE);
	assert_int_equal(ev.to, SS_OFFLINE);

	const char *l3 = "{\"t\":9,\"type\":\"server_maintenance\",\"server\":\"g\",\"on\":true}";
	assert_int_equal(stats_parse_line(l3, strlen(l3), &ev), 0);
	assert_int_equal(ev.kind, EV_SERVER_MAINT);
	assert_true(ev.on);

	const char *unknown = "{\"t\":9,\"type\":\"something_new\"}";
	assert_int_equal(stats_parse_line(unknown, strlen(unknown), &ev), 1);
	const char *garbage[] = {"",
				 "not json",
				 "{\"type\":\"created\"}",
				 "[1,2]",
				 "{\"t\":-1,\"type\":\"created\"}",
				 "{\"t\":\"x\",\"type\":\"created\"}"};
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
		assert_int_equal(stats_parse_line(garbage[i], strlen(garbage[i]), &ev), -1);

	/* A model name longer than any task can have is treated as absent. */
	struct buf b = BUF_INIT;
	buf_adds(&b, "{\"t\":1,\"type\":\"created\",\"model\":\"");
	for (int i = 0; i < 200; i++)
		buf_addch(&b, 'm');
	buf_adds(&b, "\"}");
	assert_int_equal(stats_parse_line(b.data, b.len, &ev), 0);
	assert_string_equal(ev.model, "");
	buf_free(&b);
}

/* The scripted workload used by several tests: 10 tasks of model a on gpu-1 (8
 * completed in 1200 ms, 2 failed after 400 ms), 10 of model b on gpu-3 (6 completed in
 * 3000 ms, 4 failed in 500 ms), one busy retry, one client retry, one cancellation. */
static void workload(struct buf *b, int64_t t0)
{
	char id[16];
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof id, "a%d", i);
		task_life(b, t0 + i * 60000, id, "a", "gpu-1", 100, i < 8 ? 1200 : 400,
			  i < 8 ? "completed" : "failed");
		snprintf(id, sizeof id, "b%d", i);
		task_life(b, t0 + i * 60000 + 1000, id, "b", "gpu-3", 2000, i < 6 ? 3000 : 500,
			  i < 6 ? "completed" : "failed");
	}
	line(b,
	     "{\"t\":%lld,\"type\":\"retried\",\"task\":\"x\",\"model\":\"a\",\"server\":\"gpu-1\","
	     "\"ms\":3,\"outcome\":\"busy\"}",
	     (long long)(t0 + 700000));
	line(b, "{\"t\":%lld,\"type\":\"retried\",\"task\":\"a9\",\"model\":\"a\"}",
	     (long long)(t0 + 710000));
	line(b, "{\"t\":%lld,\"type\":\"cancelled\",\"task\":\"y\",\"model\":\"b\"}",
	     (long long)(t0 + 720000));
}

static void test_fold_workload_exact(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	workload(&b, H0);
	struct stats_agg a;
	stats_agg_init(&a);
	size_t used = stats_fold_text(&a, b.data, b.len, false, INT64_MIN, INT64_MAX);
	assert_int_equal(used, b.len);
	assert_int_equal(a.lines, 63);
	assert_int_equal(a.bad, 0);

	const struct stats_group *all = &a.all;
	assert_int_equal(all->n[ST_CREATED], 20);
	assert_int_equal(all->n[ST_DISPATCHED], 20);
	assert_int_equal(all->n[ST_COMPLETED], 14);
	assert_int_equal(all->n[ST_FAILED], 6);
	assert_int_equal(all->n[ST_RETRIED], 2);
	assert_int_equal(all->n[ST_CANCELLED], 1);
	/* Run histogram: 20 attempts; the busy one never ran, the client retry and the
	 * queued cancellation name no server. */
	assert_int_equal(all->run.count, 20);
	assert_int_equal(all->run.sum, 8 * 1200 + 2 * 400 + 6 * 3000 + 4 * 500);
	assert_int_equal(all->run.min, 400);
	assert_int_equal(all->run.max, 3000);
	assert_int_equal(all->wait.count, 20);
	assert_int_equal(all->wait.sum, 10 * 100 + 10 * 2000);
	assert_int_equal(all->outcome[OC_BUSY], 1);

	const struct stats_group *ma = stats_model_c(&a, "a"), *mb = stats_model_c(&a, "b");
	assert_non_null(ma);
	assert_non_null(mb);
	assert_int_equal(ma->n[ST_COMPLETED], 8);
	assert_int_equal(ma->n[ST_FAILED], 2);
	assert_int_equal(ma->n[ST_RETRIED], 2);
	assert_int_equal(mb->n[ST_CANCELLED], 1);
	assert_true(hist_mean(&ma->run) == (8 * 1200.0 + 2 * 400.0) / 10.0);

	const struct stats_group *g1 = stats_server_c(&a, "gpu-1"),
				 *g3 = stats_server_c(&a, "gpu-3");
	assert_non_null(g1);
	assert_non_null(g3);
	assert_int_equal(g1->n[ST_RETRIED], 1); /* the busy one; the client retry has no server */
	assert_int_equal(stats_group_processed(g1), 10);
	assert_int_equal(stats_group_errors(g1), 2);
	assert_int_equal(stats_group_processed(g3), 10);
	assert_int_equal(stats_group_errors(g3), 4);
	assert_int_equal(g3->last_active, H0 + 9 * 60000 + 1000 + 2000 + 500);
	assert_null(stats_server_c(&a, "nobody"));
	assert_int_equal(a.nmodels, 2);
	assert_int_equal(a.nservers, 2);
	stats_agg_free(&a);
	buf_free(&b);
}

static void test_fold_window_and_fragments(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	workload(&b, H0);
	struct stats_agg a;
	stats_agg_init(&a);
	/* Only the first five minutes: tasks 0..4 of model a created (t0 + i min), b too. */
	stats_fold_text(&a, b.data, b.len, false, H0, H0 + 5 * 60000);
	assert_int_equal(a.all.n[ST_CREATED], 10);
	assert_int_equal(a.all.n[ST_COMPLETED], 10);
	stats_agg_free(&a);

	/* A line without its newline is a writer half way through: left unread... */
	stats_agg_init(&a);
	const char *text =
	    "{\"t\":1,\"type\":\"created\",\"model\":\"m\"}\n{\"t\":2,\"type\":\"crea";
	size_t used = stats_fold_text(&a, text, strlen(text), false, INT64_MIN, INT64_MAX);
	assert_int_equal(used, strlen("{\"t\":1,\"type\":\"created\",\"model\":\"m\"}\n"));
	assert_int_equal(a.all.n[ST_CREATED], 1);
	assert_int_equal(a.bad, 0);
	/* ...unless the file is final: then it is a bad line. */
	used = stats_fold_text(&a, text + used, strlen(text + used), true, INT64_MIN, INT64_MAX);
	assert_int_equal(used, strlen("{\"t\":2,\"type\":\"crea"));
	assert_int_equal(a.bad, 1);
	stats_agg_free(&a);
	buf_free(&b);
}

static void test_merge_and_json_round_trip(void **state)
{
	(void)state;
	struct buf b1 = BUF_INIT, b2 = BUF_INIT, both = BUF_INIT;
	workload(&b1, H0);
	workload(&b2, H0 + HOUR);
	buf_add(&both, b1.data, b1.len);
	buf_add(&both, b2.data, b2.len);
	struct stats_agg x, y, m, z;
	stats_agg_init(&x);
	stats_agg_init(&y);
	stats_agg_init(&m);
	stats_agg_init(&z);
	stats_fold_text(&x, b1.data, b1.len, true, INT64_MIN, INT64_MAX);
	stats_fold_text(&y, b2.data, b2.len, true, INT64_MIN, INT64_MAX);
	stats_fold_text(&z, both.data, both.len, true, INT64_MIN, INT64_MAX);
	stats_agg_merge(&m, &x);
	stats_agg_merge(&m, &y);
	assert_true(stats_agg_equal(&m, &z)); /* folding is additive */

	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	jg_obj(&g);
	stats_agg_to_json(&m, &g, true);
	jg_obj_end(&g);
	assert_int_equal(jg_finish(&g, &out), 0);
	yajl_val v = json_parse(out.data, out.len, NULL, NULL);
	assert_non_null(v);
	struct stats_agg back;
	stats_agg_from_json(v, &back);
	assert_true(stats_agg_equal(&m, &back));
	yajl_tree_free(v);
	jg_free(&g);
	buf_free(&out);
	stats_agg_free(&back);
	stats_agg_free(&x);
	stats_agg_free(&y);
	stats_agg_free(&m);
	stats_agg_free(&z);
	buf_free(&b1);
	buf_free(&b2);
	buf_free(&both);
}

static void test_status_time(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	/* gpu-1: offline at 15 min, back online at 45 min. gpu-2: maintenance from 10 to
	 * 20 min while its health changes underneath (degraded at 12 min). */
	line(&b,
	     "{\"t\":%lld,\"type\":\"server_status\",\"server\":\"gpu-1\",\"from\":\"online\","
	     "\"to\":\"offline\"}",
	     (long long)(H0 + 15 * 60000));
	line(&b,
	     "{\"t\":%lld,\"type\":\"server_status\",\"server\":\"gpu-1\",\"from\":\"offline\","
	     "\"to\":\"online\"}",
	     (long long)(H0 + 45 * 60000));
	line(&b, "{\"t\":%lld,\"type\":\"server_maintenance\",\"server\":\"gpu-2\",\"on\":true}",
	     (long long)(H0 + 10 * 60000));
	line(&b,
	     "{\"t\":%lld,\"type\":\"server_status\",\"server\":\"gpu-2\",\"from\":\"online\","
	     "\"to\":\"degraded\"}",
	     (long long)(H0 + 12 * 60000));
	line(&b, "{\"t\":%lld,\"type\":\"server_maintenance\",\"server\":\"gpu-2\",\"on\":false}",
	     (long long)(H0 + 20 * 60000));
	struct stats_agg raw, out;
	stats_agg_init(&raw);
	stats_agg_init(&out);
	stats_fold_text(&raw, b.data, b.len, true, INT64_MIN, INT64_MAX);
	struct stats_state start = {0}, end = {0};
	/* gpu-9 is known from an earlier hour and has no event in this one. */
	struct stats_sstate *s9 = stats_state_get(&start, "gpu-9", true);
	s9->health = SS_OFFLINE;
	s9->maint = 0;
	stats_account_status(&raw, &start, H0, H0 + HOUR, &out, &end);

	const struct stats_group *g1 = stats_server_c(&out, "gpu-1");
	assert_int_equal(g1->status_ms[SS_ONLINE], 30 * 60000);
	assert_int_equal(g1->status_ms[SS_OFFLINE], 30 * 60000);
	assert_int_equal(g1->changes, 2);
	const struct stats_group *g2 = stats_server_c(&out, "gpu-2");
	assert_int_equal(g2->status_ms[SS_ONLINE], 10 * 60000);
	assert_int_equal(g2->status_ms[SS_MAINTENANCE], 10 * 60000);
	assert_int_equal(g2->status_ms[SS_DEGRADED], 40 * 60000);
	const struct stats_group *g9 = stats_server_c(&out, "gpu-9");
	assert_int_equal(g9->status_ms[SS_OFFLINE], HOUR);
	assert_int_equal(g9->changes, 0);
	assert_int_equal(stats_sstate_status(stats_state_get(&end, "gpu-1", false)), SS_ONLINE);
	assert_int_equal(stats_sstate_status(stats_state_get(&end, "gpu-2", false)), SS_DEGRADED);
	assert_int_equal(stats_sstate_status(stats_state_get(&end, "gpu-9", false)), SS_OFFLINE);

	/* A window inside the hour: 20..50 min. Transitions before 20 min only set the state. */
	struct stats_agg part;
	stats_agg_init(&part);
	stats_account_status(&raw, &start, H0 + 20 * 60000, H0 + 50 * 60000, &part, NULL);
	g1 = stats_server_c(&part, "gpu-1");
	assert_int_equal(g1->status_ms[SS_OFFLINE], 25 * 60000);
	assert_int_equal(g1->status_ms[SS_ONLINE], 5 * 60000);
	assert_int_equal(g1->changes, 1);
	g2 = stats_server_c(&part, "gpu-2");
	assert_int_equal(g2->status_ms[SS_DEGRADED], 30 * 60000);
	assert_int_equal(g2->changes, 1); /* maintenance off at exactly 20 min is inside */

	/* A quiet hour afterwards: everyone stays where they were. */
	struct stats_agg quiet;
	stats_agg_init(&quiet);
	stats_account_status(NULL, &end, H0 + HOUR, H0 + 2 * HOUR, &quiet, NULL);
	assert_int_equal(stats_server_c(&quiet, "gpu-1")->status_ms[SS_ONLINE], HOUR);
	assert_int_equal(stats_server_c(&quiet, "gpu-2")->status_ms[SS_DEGRADED], HOUR);

	stats_agg_free(&quiet);
	stats_agg_free(&part);
	stats_state_free(&start);
	stats_state_free(&end);
	stats_agg_free(&raw);
	stats_agg_free(&out);
	buf_free(&b);
}

static void test_hour_names(void **state)
{
	(void)state;
	char name[11];
	int64_t start;
	hour_name(H0, name);
	assert_string_equal(name, "2023111422");
	assert_true(hour_parse(name, &start));
	assert_int_equal(start, hour_floor(H0));
	assert_int_equal(start % HOUR, 0);
	const char *bad[] = {"2023111424", "2023023100", "202311142", "20231114221",
			     "abcdefghij", "1969123123", "2023130100"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(hour_parse(bad[i], &start));
	int64_t ms;
	assert_true(statsq_parse_time("2023-11-14T22:13:20Z", &ms));
	assert_int_equal(ms, H0);
	assert_true(statsq_parse_time("2023-11-14T23:13:20.5+01:00", &ms));
	assert_int_equal(ms, H0 + 500);
	assert_true(statsq_parse_time("1700000000000", &ms));
	assert_int_equal(ms, H0);
	assert_true(statsq_parse_time("2023-11-14", &ms));
	assert_false(statsq_parse_time("2023-11-14T22:13", &ms));
	assert_false(statsq_parse_time("yesterday", &ms));
	assert_false(statsq_parse_time("", &ms));
}

/* ---- findings ---- */

static void live_servers(struct statsq_live *l, struct server *v, size_t n)
{
	memset(l, 0, sizeof *l);
	l->servers = v;
	l->nservers = n;
}

static bool has_text(const struct finding *f, size_t n, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(f[i].text, text))
			return true;
	return false;
}

static void test_findings(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	workload(&b, H0);
	struct stats_agg a;
	stats_agg_init(&a);
	stats_fold_text(&a, b.data, b.len, true, INT64_MIN, INT64_MAX);
	struct server sv[3];
	memset(sv, 0, sizeof sv);
	snprintf(sv[0].id, sizeof sv[0].id, "gpu-1");
	snprintf(sv[1].id, sizeof sv[1].id, "gpu-2");
	sv[1].health = HEALTH_OFFLINE;
	sv[1].status_since = H0 + HOUR - 7 * 60000;
	snprintf(sv[2].id, sizeof sv[2].id, "gpu-3");
	struct statsq_live live;
	live_servers(&live, sv, 3);
	struct finding *f;
	struct findings_input in = {.win = &a, .live = &live, .window_ms = HOUR, .now = H0 + HOUR};
	size_t n = findings_build(&in, &f);
	assert_true(has_text(f, n, "gpu-3 failed 40% of its tasks in the last hour (4 of 10)"));
	/* 20% is at the default threshold, which counts (>=). */
	assert_true(has_text(f, n, "gpu-1 failed 20% of its tasks in the last hour (2 of 10)"));
	assert_true(has_text(f, n, "gpu-2 is offline for 7 min"));
	assert_true(has_text(f, n, "model b: 40% of its tasks failed in the last hour (4 of 10)"));
	assert_true(has_text(f, n, "gpu-3 is slow") == false); /* two servers: 3000 vs 1200 */
	for (size_t i = 1; i < n; i++)
		assert_true(f[i - 1].level >= f[i].level);
	free(f);

	/* Raise the bar and gpu-1 drops out. */
	in.failure_pct = 25;
	n = findings_build(&in, &f);
	assert_false(has_text(f, n, "gpu-1 failed"));
	assert_true(has_text(f, n, "gpu-3 failed 40%"));
	free(f);

	/* Nobody healthy is critical and comes first. */
	sv[0].health = sv[2].health = HEALTH_OFFLINE;
	in.failure_pct = 0;
	n = findings_build(&in, &f);
	assert_int_equal(f[0].level, FINDING_CRITICAL);
	assert_true(strstr(f[0].text, "no server is healthy") != NULL);
	free(f);

	/* Nothing wrong. */
	struct stats_agg empty;
	stats_agg_init(&empty);
	sv[0].health = sv[1].health = sv[2].health = HEALTH_ONLINE;
	in.win = &empty;
	in.window_ms = 6 * HOUR;
	n = findings_build(&in, &f);
	assert_int_equal(n, 1);
	assert_string_equal(f[0].text, "no problems found in the last 6 hours");
	free(f);
	stats_agg_free(&empty);
	stats_agg_free(&a);
	buf_free(&b);
}

/* Queued tasks nobody can take: one finding per wish, counted; the document that
 * carries them between the sweep and the readers survives a damaged file. */
static void test_unservable(void **state)
{
	(void)state;
	struct stats_agg empty;
	stats_agg_init(&empty);
	struct server sv[1];
	memset(sv, 0, sizeof sv);
	snprintf(sv[0].id, sizeof sv[0].id, "gpu-1");
	struct statsq_live live;
	live_servers(&live, sv, 1);
	for (int i = 0; i < 3; i++)
		unservable_add(&live.unservable, "group 'cpu' that no server has", "sd", "t-1", H0 - i);
	unservable_add(&live.unservable, "model 'x' that no server serves", "x", "t-9", H0);
	assert_int_equal(live.unservable.tasks, 4);
	assert_int_equal(live.unservable.n, 2);
	assert_string_equal(live.unservable.v[0].oldest, "t-1");
	assert_true(live.unservable.v[0].since == H0 - 2);
	struct finding *f;
	struct findings_input in = {.win = &empty, .live = &live, .window_ms = HOUR, .now = H0};
	size_t n = findings_build(&in, &f);
	assert_true(has_text(f, n, "3 tasks want group 'cpu' that no server has"));
	assert_true(has_text(f, n, "1 task wants model 'x' that no server serves"));
	assert_false(has_text(f, n, "no problems found"));
	free(f);
	/* Wishes past UNSERVABLE_WANTS_MAX are counted, not named. */
	char text[64];
	for (int i = 0; i < UNSERVABLE_WANTS_MAX; i++) {
		snprintf(text, sizeof text, "tag 't%d' that no server has", i);
		unservable_add(&live.unservable, text, "sd", "t-2", H0);
	}
	assert_int_equal(live.unservable.n, UNSERVABLE_WANTS_MAX);
	n = findings_build(&in, &f);
	assert_true(has_text(f, n, "2 more queued tasks want what no registered server offers"));
	free(f);

	char *dir = tu_mkdtemp();
	assert_int_equal(store_init(dir), 0);
	struct unservable got;
	unservable_load(&got);
	assert_int_equal(got.tasks, 0); /* none yet */
	assert_int_equal(unservable_save(&live.unservable), STORE_OK);
	assert_int_equal(unservable_save(&live.unservable), STORE_UNCHANGED); /* idle: no write */
	unservable_load(&got);
	assert_int_equal(got.tasks, live.unservable.tasks);
	assert_int_equal(got.n, UNSERVABLE_WANTS_MAX);
	assert_string_equal(got.v[0].text, "group 'cpu' that no server has");
	assert_int_equal(got.v[0].tasks, 3);
	/* A damaged or hostile file reads as what can be trusted of it. */
	char path[4200];
	snprintf(path, sizeof path, "%s/unservable.json", dir);
	const char *bad = "{\"tasks\":2,\"wants\":[{\"text\":\"\",\"tasks\":1},"
			  "{\"text\":\"x\",\"tasks\":-5},{\"text\":\"y\",\"tasks\":99},"
			  "{\"text\":7,\"tasks\":1},{\"text\":\"ok\",\"tasks\":2}]}";
	assert_int_equal(tu_write_file(path, bad, strlen(bad)), 0);
	unservable_load(&got);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0].text, "ok");
	assert_int_equal(tu_write_file(path, "{\"tasks\":", 10), 0);
	unservable_load(&got);
	assert_int_equal(got.tasks, 0);
	assert_int_equal(got.n, 0);
	tu_rmtree(dir);
	free(dir);
	stats_agg_free(&empty);
}

/* ---- alerts ---- */

static struct alert_rule rule(const char *json)
{
	struct alert_rule *r;
	struct buf err = BUF_INIT;
	yajl_val v = json_parse(json, strlen(json), NULL, NULL);
	assert_non_null(v);
	size_t n = alerts_rules_parse(v, &r, &err);
	assert_int_equal(n, 1);
	assert_int_equal(err.len, 0);
	struct alert_rule out = r[0];
	free(r);
	yajl_tree_free(v);
	buf_free(&err);
	return out;
}

static void test_alert_rules_parse(void **state)
{
	(void)state;
	const char *json =
	    "[{\"name\":\"f\",\"kind\":\"failure_rate\"},"
	    "{\"name\":\"q\",\"kind\":\"queue_depth\",\"threshold\":5,\"windowMinutes\":2},"
	    "{\"name\":\"bad kind\",\"kind\":\"x\"},"
	    "{\"name\":\"k\",\"kind\":\"nope\"},"
	    "{\"name\":\"f\",\"kind\":\"queue_depth\"},"
	    "{\"name\":\"t\",\"kind\":\"oldest_queued\",\"threshold\":-1},"
	    "{\"name\":\"s\",\"kind\":\"server_offline\",\"server\":\"../x\"},"
	    "{\"name\":\"w\",\"kind\":\"failure_rate\",\"windowMinutes\":0}]";
	yajl_val v = json_parse(json, strlen(json), NULL, NULL);
	struct alert_rule *r;
	struct buf err = BUF_INIT;
	size_t n = alerts_rules_parse(v, &r, &err);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].name, "f");
	assert_true(r[0].threshold == 20);
	assert_int_equal(r[0].window_min, 15);
	assert_int_equal(r[0].min_tasks, 5);
	assert_int_equal(r[1].kind, AK_QUEUE_DEPTH);
	assert_true(r[1].threshold == 5);
	assert_int_equal(r[1].window_min, 2);
	/* One line per refused rule, naming its index. */
	int lines = 0;
	for (size_t i = 0; i < err.len; i++)
		lines += err.data[i] == '\n';
	assert_int_equal(lines, 6);
	assert_non_null(strstr(err.data, "alerts[4]: repeats the name"));
	free(r);
	buf_free(&err);
	yajl_tree_free(v);
}

static struct alert_obs obs(const char *subject, bool active, double value)
{
	struct alert_obs o;
	memset(&o, 0, sizeof o);
	snprintf(o.subject, sizeof o.subject, "%s", subject);
	o.active = active;
	o.value = value;
	snprintf(o.message, sizeof o.message, "value %g", value);
	return o;
}

static void test_alert_state_machine(void **state)
{
	(void)state;
	struct alerts_state s = {0};
	struct alerts_result r = {0};
	struct alert_rule fr = rule("[{\"name\":\"fail\",\"kind\":\"failure_rate\"}]");
	struct alert_obs o = obs("", true, 40);
	/* Fires at once (no hold for failure_rate)... */
	assert_true(alerts_apply(&s, &fr, &o, 1, H0, &r) > 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.v[0].state, AS_FIRING);
	assert_int_equal(s.v[0].fired_at, H0);
	assert_int_equal(r.fired, 1);
	/* ...and a second run that sees the same changes nothing (no second notification). */
	assert_int_equal(alerts_apply(&s, &fr, &o, 1, H0 + 60000, &r), 0);
	assert_int_equal(r.fired, 1);
	/* Back under the threshold: resolved once. */
	o = obs("", false, 5);
	assert_true(alerts_apply(&s, &fr, &o, 1, H0 + 120000, &r) > 0);
	assert_int_equal(s.v[0].state, AS_RESOLVED);
	assert_int_equal(r.resolved, 1);
	assert_int_equal(alerts_apply(&s, &fr, &o, 1, H0 + 180000, &r), 0);
	assert_int_equal(s.nhist, 2);
	assert_string_equal(s.hist[1].message, "resolved: value 5");

	/* A held rule: pending first, firing once the condition held windowMinutes. */
	struct alert_rule q = rule("[{\"name\":\"q\",\"kind\":\"queue_depth\",\"threshold\":10,"
				   "\"windowMinutes\":5}]");
	o = obs("", true, 50);
	alerts_apply(&s, &q, &o, 1, H0, &r);
	struct alert_inst *a = &s.v[1];
	assert_string_equal(a->name, "q");
	assert_int_equal(a->state, AS_PENDING);
	assert_int_equal(alerts_apply(&s, &q, &o, 1, H0 + 4 * 60000, &r), 0);
	assert_true(alerts_apply(&s, &q, &o, 1, H0 + 5 * 60000, &r) > 0);
	assert_int_equal(s.v[1].state, AS_FIRING);
	/* A pending alert whose condition ends just disappears (it never fired). */
	struct alerts_state s2 = {0};
	alerts_apply(&s2, &q, &o, 1, H0, NULL);
	o = obs("", false, 1);
	alerts_apply(&s2, &q, &o, 1, H0 + 60000, NULL);
	assert_int_equal(s2.n, 0);
	assert_int_equal(s2.nhist, 0);
	alerts_state_free(&s2);

	/* One alert per subject; a subject that is no longer reported resolves. */
	struct alert_rule off = rule("[{\"name\":\"off\",\"kind\":\"server_offline\"}]");
	struct alert_obs two[2] = {obs("gpu-1", true, 3), obs("gpu-2", true, 1)};
	two[0].since = H0 - 60000;
	alerts_apply(&s, &off, two, 2, H0, &r);
	assert_int_equal(s.n, 4);
	assert_int_equal(alerts_apply(&s, &off, two, 1, H0 + 60000, &r), 1); /* gpu-2 is back */
	for (size_t i = 0; i < s.n; i++)
		if (strcmp(s.v[i].name, "off") == 0)
			assert_int_equal(s.v[i].state, strcmp(s.v[i].subject, "gpu-1") == 0
							   ? AS_FIRING
							   : AS_RESOLVED);

	/* A rule removed from config.json: its firing alerts resolve. */
	struct alert_rule keep[2] = {fr, q};
	int before = r.resolved;
	alerts_retire(&s, keep, 2, H0 + 120000, &r);
	assert_int_equal(r.resolved, before + 1); /* off/gpu-1 */
	/* A day later the resolved ones are forgotten (no webhook configured here). */
	alerts_retire(&s, keep, 2, H0 + 120000 + ALERTS_KEEP_RESOLVED_MS + 1, &r);
	for (size_t i = 0; i < s.n; i++)
		assert_int_not_equal(s.v[i].state, AS_RESOLVED);

	/* The state survives JSON. */
	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	alerts_state_to_json(&s, &g);
	assert_int_equal(jg_finish(&g, &out), 0);
	assert_non_null(strstr(out.data, "\"state\":\"firing\""));
	jg_free(&g);
	buf_free(&out);
	alerts_state_free(&s);
}

/* The one failure-rate rule: servers count attempts (a retried attempt is the
 * server's error), models count finished tasks; the threshold's edge is a flag. */
static void test_failrule(void **state)
{
	(void)state;
	struct stats_group g;
	memset(&g, 0, sizeof g);
	g.n[ST_COMPLETED] = 6;
	g.n[ST_FAILED] = 1;
	g.n[ST_RETRIED] = 3; /* attempts that ended in an error, the tasks went on */
	struct failrate fr;
	struct failrule tasks = {FAILRULE_TASKS, 5, 100.0 / 7, true};
	failrule_eval(&tasks, &g, &fr);
	assert_int_equal(fr.failed, 1);
	assert_int_equal(fr.finished, 7);
	assert_true(fr.breached); /* exactly at the threshold, from it on */
	tasks.at_threshold = false;
	failrule_eval(&tasks, &g, &fr);
	assert_false(fr.breached); /* exactly at the threshold, only above it */
	struct failrule attempts = {FAILRULE_ATTEMPTS, 5, 20, false};
	failrule_eval(&attempts, &g, &fr);
	assert_int_equal(fr.failed, 4);
	assert_int_equal(fr.finished, 10);
	assert_true(fr.breached);
	attempts.min_finished = 11;
	failrule_eval(&attempts, &g, &fr);
	assert_false(fr.breached);
	failrule_eval(&attempts, NULL, &fr);
	assert_int_equal(fr.finished, 0);
	assert_false(fr.breached);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_line),
	    cmocka_unit_test(test_fold_workload_exact),
	    cmocka_unit_test(test_fold_window_and_fragments),
	    cmocka_unit_test(test_merge_and_json_round_trip),
	    cmocka_unit_test(test_status_time),
	    cmocka_unit_test(test_hour_names),
	    cmocka_unit_test(test_findings),
	    cmocka_unit_test(test_unservable),
	    cmocka_unit_test(test_alert_rules_parse),
	    cmocka_unit_test(test_alert_state_machine),
	    cmocka_unit_test(test_failrule),
	};
	return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
