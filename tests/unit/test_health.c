/* Unit tests for model/health (counter rules, intervals, scoring, verdicts),
 * sched/server_health and jobs/health (the run against real sockets) and
 * jobs/cronjob (options, run lock, stamps, the loop).
 *
 * The pure rules are table-driven. The run tests fork a tiny HTTP server on
 * 127.0.0.1 that answers by path (and holds /hang connections open without a word);
 * the child never calls cmocka and is killed by the teardown. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs/cronjob.h"
#include "jobs/health.h"
#include "model/server.h"
#include "net/http_client.h"
#include "fs/store.h"
#include "base/util.h"
#include "testutil.h"

/* ---- the counter, table-driven ---- */

struct counter_row {
	int rise, fall, start;
	const char *steps; /* P = pass, F = failure */
	const int *want;   /* counter after each step */
	const char *up;	   /* 'U' / 'D' after each step */
};

static void test_counter_table(void **state)
{
	(void)state;
	const struct counter_row rows[] = {
	    /* defaults 2/3, top 4: three failures take it down, two passes up */
	    {2, 3, 4, "FFF", (const int[]){3, 2, 0}, "UUD"},
	    {2, 3, 0, "PP", (const int[]){1, 4}, "DU"},
	    {2, 3, 4, "FFFPP", (const int[]){3, 2, 0, 1, 4}, "UUDDU"},
	    /* a pass while up but below top jumps back to the top */
	    {2, 3, 4, "FP", (const int[]){3, 4}, "UU"},
	    {2, 3, 4, "FFP", (const int[]){3, 2, 4}, "UUU"},
	    /* a failure while coming up starts the climb again */
	    {2, 3, 0, "PFPP", (const int[]){1, 0, 1, 4}, "DDDU"},
	    /* passes at the top and failures at 0 stay put */
	    {2, 3, 4, "PPP", (const int[]){4, 4, 4}, "UUU"},
	    {2, 3, 0, "FFF", (const int[]){0, 0, 0}, "DDD"},
	    /* flapping 1:1 keeps an up server up (HAProxy behaviour) */
	    {2, 3, 4, "PFPFPF", (const int[]){4, 3, 4, 3, 4, 3}, "UUUUUU"},
	    /* rise 1 fall 1: top 1, every check decides */
	    {1, 1, 1, "FPFP", (const int[]){0, 1, 0, 1}, "DUDU"},
	    /* rise 1 fall 3: one pass brings it up */
	    {1, 3, 0, "PFFF", (const int[]){3, 2, 1, 0}, "UUUD"},
	    /* rise 3 fall 1: one failure takes it down, three passes bring it up */
	    {3, 1, 3, "FPPP", (const int[]){0, 1, 2, 3}, "DDDU"},
	    {3, 1, 0, "PPFPPP", (const int[]){1, 2, 0, 1, 2, 3}, "DDDDDU"},
	    /* rise 5 fall 5: top 9 */
	    {5, 5, 9, "FFFFF", (const int[]){8, 7, 6, 5, 0}, "UUUUD"},
	    {5, 5, 0, "PPPPP", (const int[]){1, 2, 3, 4, 9}, "DDDDU"},
	};
	for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
		const struct counter_row *row = &rows[r];
		int c = row->start;
		for (size_t i = 0; row->steps[i]; i++) {
			c = health_counter_step(c, row->steps[i] == 'P', row->rise, row->fall);
			if (c != row->want[i] ||
			    health_counter_up(c, row->rise) != (row->up[i] == 'U')) {
				print_error("row %zu (rise %d fall %d start %d '%s') step %zu: "
					    "counter %d, want %d\n",
					    r, row->rise, row->fall, row->start, row->steps, i, c,
					    row->want[i]);
				fail();
			}
		}
	}
}

static void test_counter_normalize(void **state)
{
	(void)state;
	/* stored, stored_up, want (rise 2 fall 3, top 4) */
	static const int rows[][3] = {
	    {-1, 1, 4}, /* fresh registration: up at the top */
	    {-1, 0, 0}, {99, 1, 4}, {5, 0, 0}, {3, 1, 3}, {2, 1, 2},
	    {4, 1, 4},	{1, 0, 1},  {0, 0, 0}, {1, 1, 4}, /* status says up, counter says down: the
							     status wins */
	    {3, 0, 0}, /* forced offline (sweep): must climb rise passes */
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		assert_int_equal(health_counter_normalize(rows[i][0], rows[i][1], 2, 3),
				 rows[i][2]);
}

/* ---- applying outcomes to a server ---- */

static struct server fresh_server(void)
{
	struct server s;
	memset(&s, 0, sizeof s);
	snprintf(s.id, sizeof s.id, "s1");
	s.health = HEALTH_ONLINE;
	s.health_score = 100;
	s.check_counter = -1;
	return s;
}

static struct health_outcome outcome(enum health_verdict v, int64_t at)
{
	struct health_outcome o = {
	    .verdict = v, .answered = v != HV_FAIL, .elapsed_ms = 5, .at_ms = at};
	return o;
}

static void test_status_follows_counter(void **state)
{
	(void)state;
	struct health_cfg c;
	health_cfg_defaults(&c);
	struct server s = fresh_server();
	struct {
		enum health_verdict v;
		enum server_health want;
		int failures;
	} steps[] = {
	    {HV_FAIL, HEALTH_ONLINE, 1},   /* 1 failure: still online */
	    {HV_FAIL, HEALTH_DEGRADED, 2}, /* one more would take it down */
	    {HV_FAIL, HEALTH_OFFLINE, 3},  /* 3: offline */
	    {HV_FAIL, HEALTH_OFFLINE, 4},  {HV_PASS, HEALTH_OFFLINE, 0}, /* 1 pass: still offline */
	    {HV_PASS, HEALTH_ONLINE, 0},				 /* 2: online */
	    {HV_BUSY, HEALTH_ONLINE, 0},				 /* BUSY is up */
	    {HV_FAIL, HEALTH_ONLINE, 1},   {HV_BUSY, HEALTH_ONLINE, 0}, /* and resets like a pass */
	};
	int64_t t = 1000000;
	enum server_health prev = s.health;
	int64_t since = s.status_since;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		t += 1000;
		struct health_outcome o = outcome(steps[i].v, t);
		enum server_health from = health_apply(&c, &s, &o);
		assert_int_equal(from, prev);
		assert_int_equal(s.health, steps[i].want);
		assert_int_equal(s.consecutive_failures, steps[i].failures);
		assert_int_equal(s.last_health_check, t);
		if (s.health != prev)
			since = t;
		assert_int_equal(s.status_since, since);
		prev = s.health;
	}
}

/* A server as a registration leaves it before its probe. */
static struct server registered_server(int64_t at)
{
	struct server s = fresh_server();
	s.health = HEALTH_STARTING;
	s.check_counter = 0;
	s.registered_at = s.status_since = s.setup_since = at;
	return s;
}

static void test_starting_is_not_routable_but_not_an_error(void **state)
{
	(void)state;
	struct health_cfg c;
	health_cfg_defaults(&c);
	int64_t t = 5000;
	struct server s = registered_server(t);
	/* Within the grace, however many: starting, nothing counted. */
	for (int i = 0; i < 20; i++) {
		struct health_outcome o = outcome(HV_STARTING, t += 10000);
		health_apply(&c, &s, &o);
		assert_int_equal(s.health, HEALTH_STARTING);
		assert_false(server_health_routable(s.health));
		assert_int_equal(s.next_check_at, t + c.fastinter_ms);
	}
	assert_int_equal(s.consecutive_failures, 0);
	assert_int_equal(s.health_score, 100);
	assert_int_equal(s.last_success_at, 0);
	assert_int_equal(s.status_since, 5000);
	assert_string_equal(s.last_check.verdict, "starting");
	/* The first READY makes it routable at once, not after `rise` passes. */
	struct health_outcome p = outcome(HV_PASS, t += 1000);
	assert_int_equal(health_apply(&c, &s, &p), HEALTH_STARTING);
	assert_int_equal(s.health, HEALTH_ONLINE);
	assert_int_equal(s.check_counter, health_counter_top(c.rise, c.fall));
	assert_int_equal(s.setup_since, 0);
	assert_int_equal(s.last_success_at, t);
	/* A restart seen by a check (STARTING after a pass) opens a new spell. */
	struct health_outcome r = outcome(HV_STARTING, t += 1000);
	assert_int_equal(health_apply(&c, &s, &r), HEALTH_ONLINE);
	assert_int_equal(s.health, HEALTH_STARTING);
	assert_int_equal(s.setup_since, t);
	assert_int_equal(s.consecutive_failures, 0);
}

static void test_starting_past_the_grace_fails(void **state)
{
	(void)state;
	struct health_cfg c;
	health_cfg_defaults(&c);
	c.setup_grace_ms = 60000;
	int64_t t = 1000000;
	struct server s = registered_server(t);
	struct health_outcome o = outcome(HV_STARTING, t + 60000); /* at the edge: still grace */
	health_apply(&c, &s, &o);
	assert_int_equal(s.consecutive_failures, 0);
	t += 60001;
	for (int i = 1; i <= c.fall; i++) {
		o = outcome(HV_STARTING, t += 1000);
		health_apply(&c, &s, &o);
		assert_int_equal(s.consecutive_failures, i);
		assert_int_equal(s.health, i < c.fall ? HEALTH_STARTING : HEALTH_OFFLINE);
		assert_non_null(strstr(s.last_check.error, "past the setup grace of 60 s"));
	}
	assert_true(s.health_score < 100);
	/* Down now, and STARTING keeps counting: it does not bring it back to starting. */
	o = outcome(HV_STARTING, t += 1000);
	health_apply(&c, &s, &o);
	assert_int_equal(s.health, HEALTH_OFFLINE);
	assert_int_equal(s.consecutive_failures, c.fall + 1);
	/* Once it passes, it climbs like any offline server (rise passes). */
	struct health_outcome p = outcome(HV_PASS, t += 1000);
	health_apply(&c, &s, &p);
	assert_int_equal(s.health, HEALTH_OFFLINE);
	health_apply(&c, &s, &p);
	assert_int_equal(s.health, HEALTH_ONLINE);
	assert_int_equal(s.setup_since, 0);
}

static void test_starting_server_that_fails_goes_offline(void **state)
{
	(void)state;
	struct health_cfg c;
	health_cfg_defaults(&c);
	int64_t t = 1000;
	struct server s = registered_server(t);
	/* Unreachable is a real failure, grace or not: fall of them take it offline. */
	for (int i = 1; i <= c.fall; i++) {
		struct health_outcome f = outcome(HV_FAIL, t += 1000);
		health_apply(&c, &s, &f);
		assert_int_equal(s.consecutive_failures, i);
		assert_int_equal(s.health, i < c.fall ? HEALTH_STARTING : HEALTH_OFFLINE);
		assert_false(server_health_routable(s.health));
	}
	/* The setup spell began at registration: a STARTING answer now is within it
	 * and shows the server as starting again, without counting. */
	struct health_outcome o = outcome(HV_STARTING, t += 1000);
	health_apply(&c, &s, &o);
	assert_int_equal(s.health, HEALTH_STARTING);
	assert_int_equal(s.setup_since, 1000);
	assert_int_equal(s.consecutive_failures, c.fall);
}

static void test_maintenance_is_never_touched(void **state)
{
	(void)state;
	struct health_cfg c;
	health_cfg_defaults(&c);
	struct server s = fresh_server();
	s.maintenance = true;
	for (int i = 0; i < 5; i++) {
		struct health_outcome o = outcome(HV_FAIL, 1000 + i);
		health_apply(&c, &s, &o);
		assert_true(s.maintenance);
	}
	assert_int_equal(s.health, HEALTH_OFFLINE);
	s.maintenance = false;
	for (int i = 0; i < 2; i++) {
		struct health_outcome o = outcome(HV_PASS, 2000 + i);
		health_apply(&c, &s, &o);
		assert_false(s.maintenance);
	}
	assert_int_equal(s.health, HEALTH_ONLINE);
}

static void test_degraded_by_latency(void **state)
{
	(void)state;
	struct health_cfg c;
	health_cfg_defaults(&c);
	c.degraded_ms = 100;
	struct server s = fresh_server();
	struct health_outcome o = outcome(HV_PASS, 1000);
	o.elapsed_ms = 50;
	health_apply(&c, &s, &o);
	assert_int_equal(s.health, HEALTH_ONLINE);
	assert_true(s.ewma_ms == 50.0);
	o.elapsed_ms = 400; /* 0.7 * 50 + 0.3 * 400 = 155 */
	health_apply(&c, &s, &o);
	assert_true(s.ewma_ms > 154.9 && s.ewma_ms < 155.1);
	assert_int_equal(s.health, HEALTH_DEGRADED);
	o.elapsed_ms = 10;
	for (int i = 0; i < 5; i++)
		health_apply(&c, &s, &o);
	assert_int_equal(s.health, HEALTH_ONLINE);
	/* a timeout has no response time: the EWMA keeps its value */
	double before = s.ewma_ms;
	struct health_outcome f = outcome(HV_FAIL, 2000);
	f.elapsed_ms = 2000;
	health_apply(&c, &s, &f);
	assert_true(s.ewma_ms == before);
	/* status_of directly */
	assert_int_equal(health_status_of(&c, 4, 101), HEALTH_DEGRADED);
	assert_int_equal(health_status_of(&c, 4, 100), HEALTH_ONLINE);
	assert_int_equal(health_status_of(&c, 2, 0), HEALTH_DEGRADED);
	assert_int_equal(health_status_of(&c, 1, 0), HEALTH_OFFLINE);
	assert_int_equal(health_status_of(&c, 0, 1e9), HEALTH_OFFLINE);
	/* fall 1: the top is rise itself, no room for "degraded by failures" */
	c.fall = 1;
	assert_int_equal(health_status_of(&c, 2, 0), HEALTH_ONLINE);
}

/* ---- intervals ---- */

static void test_intervals(void **state)
{
	(void)state;
	struct health_cfg c;
	health_cfg_defaults(&c); /* 10 s, 2 s, 30 s, max 60 s; top 4 */
	/* stable: lengthens x1.5 up to maxInter */
	assert_int_equal(health_interval_ms(&c, 4, 4, 0), 10000);
	assert_int_equal(health_interval_ms(&c, 4, 4, 10000), 15000);
	assert_int_equal(health_interval_ms(&c, 4, 4, 15000), 22500);
	assert_int_equal(health_interval_ms(&c, 4, 4, 45000), 60000);
	assert_int_equal(health_interval_ms(&c, 4, 4, 60000), 60000);
	assert_int_equal(health_interval_ms(&c, 4, 4, 2000), 10000); /* never below inter */
	/* changing: fastinter, in both directions */
	assert_int_equal(health_interval_ms(&c, 4, 3, 60000), 2000);
	assert_int_equal(health_interval_ms(&c, 3, 2, 2000), 2000);
	assert_int_equal(health_interval_ms(&c, 0, 1, 30000), 2000);
	/* down */
	assert_int_equal(health_interval_ms(&c, 2, 0, 2000), 30000);
	assert_int_equal(health_interval_ms(&c, 0, 0, 30000), 30000);
	/* back at the top after a failure: adaptive starts over */
	assert_int_equal(health_interval_ms(&c, 3, 4, 2000), 10000);
	assert_int_equal(health_interval_ms(&c, 1, 4, 2000), 10000);

	/* the same through health_apply: nextCheckAt - lastHealthCheck */
	struct server s = fresh_server();
	static const struct {
		enum health_verdict v;
		int64_t want;
	} seq[] = {
	    {HV_PASS, 10000}, {HV_PASS, 15000}, {HV_PASS, 22500}, {HV_PASS, 33750},
	    {HV_PASS, 50625}, {HV_PASS, 60000}, {HV_PASS, 60000}, {HV_FAIL, 2000},
	    {HV_FAIL, 2000},  {HV_FAIL, 30000}, {HV_FAIL, 30000}, {HV_PASS, 2000},
	    {HV_PASS, 10000}, {HV_PASS, 15000}, {HV_BUSY, 22500}, {HV_STARTING, 2000},
	};
	int64_t t = 1000;
	for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
		struct health_outcome o = outcome(seq[i].v, t);
		health_apply(&c, &s, &o);
		if (s.next_check_at - t != seq[i].want) {
			print_error("step %zu: interval %lld, want %lld\n", i,
				    (long long)(s.next_check_at - t), (long long)seq[i].want);
			fail();
		}
		t = s.next_check_at + 3; /* checked a little late, as cron does */
	}
}

/* ---- score ---- */

static void test_score(void **state)
{
	(void)state;
	/* failures: 100 -> 70 -> 49 -> 34 ... -> 0; passes climb back to exactly 100 */
	int s = 100;
	s = health_score_next(s, HV_FAIL, 0, 1000);
	assert_int_equal(s, 70);
	s = health_score_next(s, HV_FAIL, 0, 1000);
	assert_int_equal(s, 49);
	for (int i = 0; i < 40; i++)
		s = health_score_next(s, HV_FAIL, 0, 1000);
	assert_int_equal(s, 0);
	s = health_score_next(s, HV_PASS, 10, 1000);
	assert_int_equal(s, 30);
	for (int i = 0; i < 40; i++)
		s = health_score_next(s, HV_PASS, 10, 1000);
	assert_int_equal(s, 100);
	/* BUSY counts as a pass, STARTING as no success */
	assert_int_equal(health_score_next(100, HV_BUSY, 10, 1000), 100);
	assert_int_equal(health_score_next(100, HV_STARTING, 10, 1000), 70);
	/* slow passes count 100 down to 50 */
	assert_int_equal(health_score_next(100, HV_PASS, 1000, 1000), 100);
	assert_int_equal(health_score_next(100, HV_PASS, 1500, 1000), 92); /* 70 + 22.5, down */
	assert_int_equal(health_score_next(100, HV_PASS, 5000, 1000), 85); /* 70 + 15 */
	s = 100;
	for (int i = 0; i < 60; i++)
		s = health_score_next(s, HV_PASS, 9000, 1000);
	assert_int_equal(s, 50);
	/* out-of-range stored values are clamped */
	assert_int_equal(health_score_next(500, HV_PASS, 1, 1000), 100);
	assert_int_equal(health_score_next(-5, HV_FAIL, 1, 1000), 0);
	/* EWMA */
	assert_true(health_ewma_next(0, 42) == 42.0);
	double e = health_ewma_next(100, 200);
	assert_true(e > 129.999 && e < 130.001);
}

/* ---- verdicts ---- */

static void test_classify_cog(void **state)
{
	(void)state;
	static const struct {
		long status;
		const char *body;
		enum health_verdict want;
	} rows[] = {
	    {200, "{\"status\":\"READY\",\"setup\":{\"status\":\"succeeded\"}}", HV_PASS},
	    {200, "{\"status\":\"BUSY\"}", HV_BUSY},
	    {200, "{\"status\":\"STARTING\"}", HV_STARTING},
	    {200, "{\"status\":\"SETUP_FAILED\"}", HV_FAIL},
	    {200, "{\"status\":\"DEFUNCT\"}", HV_FAIL},
	    {200, "{\"status\":\"UNHEALTHY\"}", HV_FAIL},
	    {200, "{\"status\":\"ready\"}", HV_FAIL}, /* Cog's statuses are upper case */
	    {200, "{\"status\":\"SOMETHING_NEW\"}", HV_FAIL},
	    {200, "{\"status\":1}", HV_FAIL},
	    {200, "{\"state\":\"READY\"}", HV_FAIL},
	    {200, "[\"READY\"]", HV_FAIL},
	    {200, "\"READY\"", HV_FAIL},
	    /* An answer is judged on its start (the probe keeps only the first
	     * HEALTH_BODY_MAX bytes): once the status is read, what follows, cut short
	     * or not, does not matter. */
	    {200, "{\"status\":\"READY\"", HV_PASS},
	    {200, "{\"status\":\"READY\",\"setup\":{\"logs\":\"loading", HV_PASS},
	    {200, "{\"status\":\"READY\"} /* c */", HV_PASS},
	    {200, "{\"setup\":{\"logs\":\"loading", HV_FAIL}, /* cut before any status */
	    {200, "", HV_FAIL},
	    {503, "{\"status\":\"READY\"}", HV_FAIL},
	    {204, "", HV_FAIL},
	    {302, "", HV_FAIL},
	    {0, NULL, HV_FAIL},
	};
	char why[128];
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *b = rows[i].body;
		enum health_verdict v = health_classify(PROTO_COG, rows[i].status, b,
							b ? strlen(b) : 0, why, sizeof why);
		if (v != rows[i].want) {
			print_error("row %zu (%ld %s): %s, want %s\n", i, rows[i].status,
				    b ? b : "(null)", health_verdict_name(v),
				    health_verdict_name(rows[i].want));
			fail();
		}
		if (v == HV_FAIL || v == HV_STARTING)
			assert_true(why[0] != '\0');
	}
	/* a body that is not NUL-terminated at len */
	const char *longer = "{\"status\":\"READY\"}garbage";
	assert_int_equal(health_classify(PROTO_COG, 200, longer, 18, why, sizeof why), HV_PASS);
}

static void test_classify_http_json(void **state)
{
	(void)state;
	static const long pass[] = {200, 201, 204, 299};
	static const long failing[] = {0, 100, 199, 300, 301, 302, 404, 429, 500, 503};
	char why[64];
	for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
		assert_int_equal(health_classify(PROTO_HTTP_JSON, pass[i], "x", 1, why, sizeof why),
				 HV_PASS);
	for (size_t i = 0; i < sizeof failing / sizeof failing[0]; i++)
		assert_int_equal(
		    health_classify(PROTO_HTTP_JSON, failing[i], "{}", 2, why, sizeof why),
		    HV_FAIL);
	/* the body is not looked at */
	assert_int_equal(health_classify(PROTO_HTTP_JSON, 200, "{\"status\":\"UNHEALTHY\"}", 22,
					 why, sizeof why),
			 HV_PASS);
}

static void test_summary(void **state)
{
	(void)state;
	struct health_summary s = {0};
	struct buf line = BUF_INIT;
	assert_int_equal(health_summary_exit(&s), 0); /* nothing registered */
	s.servers = 3;
	s.up = 3;
	health_summary_line(&s, &line);
	assert_string_equal(
	    buf_str(&line),
	    "TASKGATE HEALTH OK - 3 up, 0 degraded, 0 down | up=3 degraded=0 down=0");
	s.up = 2;
	s.degraded = 1;
	assert_int_equal(health_summary_exit(&s), 1);
	s.degraded = 0;
	s.down = 1;
	assert_int_equal(health_summary_exit(&s), 1);
	s.up = 0;
	s.degraded = 1;
	s.down = 2;
	assert_int_equal(health_summary_exit(&s), 1); /* degraded is still up */
	s.degraded = 0;
	s.down = 3;
	assert_int_equal(health_summary_exit(&s), 2);
	buf_reset(&line);
	health_summary_line(&s, &line);
	assert_string_equal(
	    buf_str(&line),
	    "TASKGATE HEALTH CRITICAL - 0 up, 0 degraded, 3 down | up=0 degraded=0 down=3");
	/* files that could not be read or written make an otherwise fine run a WARNING */
	struct health_summary e = {.servers = 1, .up = 1, .errors = 2};
	assert_int_equal(health_summary_exit(&e), 1);
	buf_reset(&line);
	health_summary_line(&e, &line);
	assert_string_equal(buf_str(&line),
			    "TASKGATE HEALTH WARNING - 1 up, 0 degraded, 0 down, 2 not readable or "
			    "not updated (see the log) | up=1 degraded=0 down=0");
	buf_free(&line);
}

/* ---- against the state tree and real sockets ---- */

struct fixture {
	char *dir;
	pid_t http;
	int port;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->dir = tu_mkdtemp();
	if (store_init(f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->http > 0) {
		kill(f->http, SIGKILL);
		waitpid(f->http, NULL, 0);
	}
	health_set_change_hook(NULL, NULL);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void respond(int c, const char *status, const char *extra, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: "
			 "%zu\r\nConnection: close\r\n\r\n",
			 status, extra, len);
	if (write(c, head, (size_t)n) < 0 || (len && write(c, body, len) < 0))
		return;
}

/* The child: answers by path; /hang connections are kept open and never answered
 * (their descriptors are simply never closed: the child is killed at teardown). */
static void serve(int ls)
{
	/* Over HEALTH_BODY_MAX: /big says READY first, then pads (as Cog repeats its
	 * setup logs); /bignostatus is as long with no status at all. */
	static char big[20000], bignostatus[20000];
	signal(SIGPIPE, SIG_IGN); /* a client may hang up early */
	memset(big, ' ', sizeof big);
	static const char big_start[] = "{\"status\":\"READY\",\"pad\":\"";
	memcpy(big, big_start, sizeof big_start - 1);
	memcpy(big + sizeof big - 2, "\"}", 2);
	memset(bignostatus, ' ', sizeof bignostatus);
	bignostatus[0] = '{';
	bignostatus[sizeof bignostatus - 1] = '}';
	for (;;) {
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		char req[4096];
		size_t got = 0;
		while (got < sizeof req - 1) {
			ssize_t n = read(c, req + got, sizeof req - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = '\0';
		char path[256] = "";
		sscanf(req, "GET %255s", path);
		if (strcmp(path, "/hang") == 0)
			continue; /* the descriptor stays open, the client hears nothing */
#define JSON(s) respond(c, "200 OK", "", s, strlen(s))
		if (strcmp(path, "/ready") == 0)
			JSON("{\"status\":\"READY\"}");
		else if (strcmp(path, "/busy") == 0)
			JSON("{\"status\":\"BUSY\"}");
		else if (strcmp(path, "/starting") == 0)
			JSON("{\"status\":\"STARTING\"}");
		else if (strcmp(path, "/unhealthy") == 0)
			JSON("{\"status\":\"UNHEALTHY\"}");
		else if (strcmp(path, "/badjson") == 0)
			JSON("{\"status\":");
		else if (strcmp(path, "/big") == 0)
			respond(c, "200 OK", "", big, sizeof big);
		else if (strcmp(path, "/bignostatus") == 0)
			respond(c, "200 OK", "", bignostatus, sizeof bignostatus);
		else if (strcmp(path, "/redirect") == 0)
			respond(c, "302 Found", "Location: /ready\r\n", "", 0);
		else if (strcmp(path, "/down") == 0)
			respond(c, "503 Service Unavailable", "", "{}", 2);
		else
			respond(c, "404 Not Found", "", "{}", 2);
#undef JSON
		close(c);
	}
}

static void start_http(struct fixture *f)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ls >= 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(ls, 512), 0);
	socklen_t len = sizeof sa;
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &len), 0);
	f->port = ntohs(sa.sin_port);
	f->http = fork();
	assert_true(f->http >= 0);
	if (f->http == 0) {
		serve(ls);
		_exit(0);
	}
	close(ls);
}

static void add_server(const char *id, enum server_protocol p, const char *url)
{
	struct server s = fresh_server();
	snprintf(s.id, sizeof s.id, "%s", id);
	s.name = strdup(id);
	s.predict_url = strdup("http://127.0.0.1:1/predict");
	s.health_url = strdup(url);
	s.protocol = p;
	s.max_concurrent = 1;
	s.weight = 1;
	struct jgen g;
	struct buf doc = BUF_INIT;
	jg_init(&g);
	server_to_doc(&s, &g);
	assert_int_equal(jg_finish(&g, &doc), 0);
	assert_int_equal(store_create("servers", id, doc.data, doc.len), STORE_OK);
	jg_free(&g);
	buf_free(&doc);
	server_free(&s);
}

static struct server load(const char *id)
{
	struct server s;
	assert_int_equal(server_load(id, &s), STORE_OK);
	return s;
}

static void short_cfg(struct health_cfg *c)
{
	health_cfg_defaults(c);
	c->timeout_ms = 500;
	c->connect_timeout_ms = 300;
	c->fastinter_ms = 10000; /* nothing falls due between two runs, even under valgrind */
}

static void test_run_probes_by_protocol(void **state)
{
	struct fixture *f = *state;
	start_http(f);
	static const struct {
		const char *id, *path;
		enum server_protocol p;
		int failures; /* after one check */
		bool passed;
	} rows[] = {
	    {"cog-ready", "/ready", PROTO_COG, 0, true},
	    {"cog-busy", "/busy", PROTO_COG, 0, true},
	    {"cog-starting", "/starting", PROTO_COG, 0, false},
	    {"cog-unhealthy", "/unhealthy", PROTO_COG, 1, false},
	    {"cog-badjson", "/badjson", PROTO_COG, 1, false},
	    {"cog-big", "/big", PROTO_COG, 0, true}, /* judged on its start */
	    {"cog-bignostatus", "/bignostatus", PROTO_COG, 1, false},
	    {"cog-redirect", "/redirect", PROTO_COG, 1, false},
	    {"cog-hang", "/hang", PROTO_COG, 1, false},
	    {"http-ok", "/ready", PROTO_HTTP_JSON, 0, true},
	    {"http-down", "/down", PROTO_HTTP_JSON, 1, false},
	    {"http-redirect", "/redirect", PROTO_HTTP_JSON, 1, false},
	    {"http-big", "/big", PROTO_HTTP_JSON, 0, true}, /* only the status code counts */
	    {"http-missing", "/nope", PROTO_HTTP_JSON, 1, false},
	};
	size_t n = sizeof rows / sizeof rows[0];
	char url[128];
	for (size_t i = 0; i < n; i++) {
		snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, rows[i].path);
		add_server(rows[i].id, rows[i].p, url);
	}
	add_server("refused", PROTO_HTTP_JSON, "http://127.0.0.1:1/health");
	add_server("ftp", PROTO_HTTP_JSON, "ftp://127.0.0.1/health"); /* not http(s) */

	struct health_cfg cfg;
	short_cfg(&cfg);
	struct health_opts o = {.cfg = &cfg};
	struct health_summary sum;
	assert_int_equal(health_run(&o, &sum), 0);
	assert_int_equal(sum.checked, (int)n + 2);
	assert_int_equal(sum.servers, (int)n + 2);
	/* One failure leaves every one up; STARTING takes its server out at once,
	 * without counting a failure (the setup grace). */
	assert_int_equal(sum.up, (int)n + 1);
	assert_int_equal(sum.starting, 1);
	assert_int_equal(sum.changed, 1);
	assert_true(sum.elapsed_ms < 5 * cfg.timeout_ms);
	for (size_t i = 0; i < n; i++) {
		struct server s = load(rows[i].id);
		if (s.consecutive_failures != rows[i].failures ||
		    (s.last_success_at > 0) != rows[i].passed || s.last_health_check == 0) {
			print_error("%s: failures %d, lastSuccessAt %lld\n", rows[i].id,
				    s.consecutive_failures, (long long)s.last_success_at);
			fail();
		}
		bool starting = strcmp(rows[i].id, "cog-starting") == 0;
		assert_int_equal(s.check_counter, starting ? 0 : rows[i].passed ? 4 : 3);
		assert_int_equal(s.health == HEALTH_STARTING, starting);
		server_free(&s);
	}
	struct server r = load("refused");
	assert_int_equal(r.consecutive_failures, 1);
	server_free(&r);
	r = load("ftp");
	assert_int_equal(r.consecutive_failures, 1);
	server_free(&r);

	/* Nothing is due right after a run (fastinter 2 s, inter 10 s)... */
	assert_int_equal(health_run(&o, &sum), 0);
	assert_int_equal(sum.checked, 0);
	assert_int_equal(sum.servers, (int)n + 2);
	/* ...unless all is asked for; two more failures: degraded, then offline */
	o.all = true;
	assert_int_equal(health_run(&o, &sum), 0);
	assert_int_equal(sum.checked, (int)n + 2);
	assert_int_equal(health_run(&o, &sum), 0);
	/* passing: ready, busy, big, http-ok, http-big; STARTING stays starting */
	assert_int_equal(sum.up, 5);
	assert_int_equal(sum.starting, 1);
	assert_int_equal(sum.down, (int)n + 2 - 5 - 1);
	assert_int_equal(sum.changed, (int)n + 2 - 5 - 1);
	assert_int_equal(health_summary_exit(&sum), 1);
	struct server st = load("cog-starting");
	assert_int_equal(st.health, HEALTH_STARTING);
	assert_int_equal(st.consecutive_failures, 0);
	assert_int_equal(st.health_score, 100);
	server_free(&st);

	/* max_checks bounds a run (the most overdue first) */
	o.max_checks = 2;
	assert_int_equal(health_run(&o, &sum), 0);
	assert_int_equal(sum.checked, 2);
	assert_int_equal(sum.servers, (int)n + 2);
}

static void test_run_many_hanging_servers_take_one_timeout(void **state)
{
	struct fixture *f = *state;
	start_http(f);
	char url[128], id[32];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/hang", f->port);
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof id, "hang-%02d", i);
		add_server(id, PROTO_COG, url);
	}
	struct health_cfg cfg;
	short_cfg(&cfg);
	struct health_opts o = {.cfg = &cfg, .max_parallel = 256};
	struct health_summary sum;
	int64_t t0 = mono_ms();
	assert_int_equal(health_run(&o, &sum), 0);
	int64_t took = mono_ms() - t0;
	assert_int_equal(sum.checked, 60);
	assert_true(took >= cfg.timeout_ms - 50);
	assert_true(took < 5 * cfg.timeout_ms); /* not 60 timeouts */
	/* bounded parallelism: 20 at a time means 3 rounds */
	o.max_parallel = 20;
	o.all = true;
	t0 = mono_ms();
	assert_int_equal(health_run(&o, &sum), 0);
	took = mono_ms() - t0;
	assert_true(took >= 3 * cfg.timeout_ms - 50);
}

struct hook_log {
	int calls;
	char id[65];
	enum server_health from, to;
};

static void hook(const char *id, enum server_health from, enum server_health to, void *arg)
{
	struct hook_log *l = arg;
	l->calls++;
	snprintf(l->id, sizeof l->id, "%s", id);
	l->from = from;
	l->to = to;
}

static void test_passive_feeds_the_counter(void **state)
{
	(void)state;
	add_server("p1", PROTO_COG, "http://127.0.0.1:1/health-check");
	struct hook_log log = {0};
	health_set_change_hook(hook, &log);

	/* A passing dispatch on a healthy server writes nothing. */
	struct stat before, after;
	char path[4096];
	snprintf(path, sizeof path, "%s/servers/p1.json", store_root());
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(health_record_passive("p1", true, 1234), STORE_OK);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);

	assert_int_equal(health_record_passive("p1", false, 10), STORE_OK);
	struct server s = load("p1");
	assert_int_equal(s.health, HEALTH_ONLINE);
	assert_int_equal(s.consecutive_failures, 1);
	assert_int_equal(s.check_counter, 3);
	assert_true(s.next_check_at > 0); /* an active check will confirm soon */
	assert_int_equal(s.last_health_check, 0);
	assert_true(s.ewma_ms == 0); /* dispatch time is not a response time */
	server_free(&s);
	assert_int_equal(log.calls, 0);

	assert_int_equal(health_record_passive("p1", false, 10), STORE_OK);
	assert_int_equal(health_record_passive("p1", false, 10), STORE_OK);
	s = load("p1");
	assert_int_equal(s.health, HEALTH_OFFLINE);
	assert_false(s.maintenance);
	server_free(&s);
	assert_int_equal(log.calls, 2); /* online -> degraded -> offline */
	assert_string_equal(log.id, "p1");
	assert_int_equal(log.from, HEALTH_DEGRADED);
	assert_int_equal(log.to, HEALTH_OFFLINE);

	assert_int_equal(health_record_passive("p1", true, 10), STORE_OK);
	assert_int_equal(health_record_passive("p1", true, 10), STORE_OK);
	assert_int_equal(log.calls, 3);
	assert_int_equal(log.from, HEALTH_OFFLINE);
	assert_int_equal(log.to, HEALTH_ONLINE);

	assert_int_equal(health_record_passive("nope", false, 1), STORE_NOENT);
	assert_int_equal(health_record_passive("../x", false, 1), STORE_INVALID);
}

static void test_run_hook_and_maintenance(void **state)
{
	(void)state;
	add_server("m1", PROTO_HTTP_JSON, "http://127.0.0.1:1/health");
	/* put it in maintenance as the API would */
	struct server s = load("m1");
	s.maintenance = true;
	struct jgen g;
	struct buf doc = BUF_INIT;
	jg_init(&g);
	server_to_doc(&s, &g);
	assert_int_equal(jg_finish(&g, &doc), 0);
	assert_int_equal(store_put("servers", "m1", doc.data, doc.len), STORE_OK);
	jg_free(&g);
	buf_free(&doc);
	server_free(&s);

	struct hook_log log = {0};
	struct health_cfg cfg;
	short_cfg(&cfg);
	struct health_opts o = {.cfg = &cfg, .all = true, .on_change = hook, .on_change_arg = &log};
	struct health_summary sum;
	for (int i = 0; i < 3; i++)
		assert_int_equal(health_run(&o, &sum), 0);
	assert_int_equal(log.calls, 2);
	assert_int_equal(log.to, HEALTH_OFFLINE);
	assert_int_equal(sum.maintenance, 1);
	assert_int_equal(sum.down, 1);
	assert_int_equal(health_summary_exit(&sum), 2);
	s = load("m1");
	assert_true(s.maintenance); /* checked, but maintenance untouched */
	assert_int_equal(s.health, HEALTH_OFFLINE);
	assert_int_equal(s.consecutive_failures, 3);
	server_free(&s);
}

static void test_run_survives_a_corrupt_file(void **state)
{
	(void)state;
	add_server("good", PROTO_HTTP_JSON, "http://127.0.0.1:1/health");
	char path[4096];
	snprintf(path, sizeof path, "%s/servers/bad.json", store_root());
	assert_int_equal(tu_write_file(path, "{\"id\":", 6), 0);
	struct health_cfg cfg;
	short_cfg(&cfg);
	struct health_opts o = {.cfg = &cfg, .all = true};
	struct health_summary sum;
	assert_int_equal(health_run(&o, &sum), 0);
	assert_int_equal(sum.checked, 1);
	assert_int_equal(sum.errors, 1);
	assert_int_equal(health_summary_exit(&sum), 1);
	assert_false(tu_path_exists(path)); /* quarantined by the store */
}

/* ---- cronjob ---- */

/* cronjob_parse wants char **; string literals are const here (-Wwrite-strings). */
static int parse_words(const char *const *words, const struct cronjob_option *extra,
		       struct cronjob_opts *o)
{
	char *argv[16];
	int argc = 0;
	while (words[argc] && argc < 15) {
		argv[argc] = strdup(words[argc]);
		argc++;
	}
	argv[argc] = NULL;
	int rc = cronjob_parse(argc, argv, "test", "about", extra, o);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

static void test_cronjob_parse(void **state)
{
	(void)state;
	bool all = false;
	long max = 0;
	const struct cronjob_option extra[] = {
	    {"all", NULL, "all", &all, NULL, 0, 0},
	    {"max", "N", "max", NULL, &max, 0, 100},
	    {0},
	};
	struct cronjob_opts o;
	static const char *const a1[] = {"x",	    "--for", "55",    "--every", "5",
					 "--quiet", "--all", "--max", "7",	 NULL};
	assert_int_equal(parse_words(a1, extra, &o), -1);
	assert_int_equal(o.for_s, 55);
	assert_int_equal(o.every_s, 5);
	assert_true(o.quiet);
	assert_true(all);
	assert_int_equal(max, 7);

	static const char *const a2[] = {"x", NULL};
	assert_int_equal(parse_words(a2, extra, &o), -1);
	assert_int_equal(o.for_s, 0);
	assert_int_equal(o.every_s, CRONJOB_EVERY_DEFAULT);
	assert_false(o.quiet);

	static const char *const bad[][4] = {
	    {"x", "--for", "-1", NULL},	 {"x", "--for", "99999", NULL},
	    {"x", "--every", "0", NULL}, {"x", "--every", "5s", NULL},
	    {"x", "--max", "101", NULL}, {"x", "--bogus", NULL, NULL},
	    {"x", "--for", NULL, NULL},	 {"x", "extra", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(parse_words(bad[i], extra, &o), CRONJOB_UNKNOWN);
}

static void test_cronjob_lock_and_stamp(void **state)
{
	(void)state;
	assert_int_equal(cronjob_last_run("job"), 0);
	assert_true(cronjob_overdue("job", 60));
	int fd = cronjob_lock("job");
	assert_true(fd >= 0);
	/* a second open file description conflicts, as another process would */
	int64_t t0 = mono_ms();
	assert_int_equal(cronjob_lock("job"), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_true(mono_ms() - t0 < 100);			  /* non-blocking */
	assert_int_equal(cronjob_piggyback_begin("job", 60), -1); /* held */
	cronjob_unlock(fd);

	fd = cronjob_piggyback_begin("job", 60);
	assert_true(fd >= 0);
	cronjob_piggyback_end("job", fd, true);
	int64_t last = cronjob_last_run("job");
	assert_true(last > 0 && last <= now_ms());
	assert_false(cronjob_overdue("job", 60));
	assert_true(cronjob_overdue("job", -1));
	assert_int_equal(cronjob_piggyback_begin("job", 60), -1); /* not overdue */

	/* a stamp far in the future (a broken clock elsewhere) does not starve */
	char path[4096], text[32];
	snprintf(path, sizeof path, "%s/run/job.last", store_root());
	snprintf(text, sizeof text, "%lld\n", (long long)(now_ms() + 7200 * 1000LL));
	assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
	assert_true(cronjob_overdue("job", 60));
	assert_int_equal(tu_write_file(path, "garbage", 7), 0);
	assert_int_equal(cronjob_last_run("job"), 0);
}

static int steps_called;
static int step_code;

static int count_step(void *arg)
{
	(void)arg;
	steps_called++;
	return step_code;
}

static void test_cronjob_run_loop(void **state)
{
	(void)state;
	struct cronjob_opts o = {.for_s = 0, .every_s = 1};
	steps_called = 0;
	step_code = CRONJOB_WARNING;
	assert_int_equal(cronjob_run("loop", &o, count_step, NULL), CRONJOB_WARNING);
	assert_int_equal(steps_called, 1);
	assert_true(cronjob_last_run("loop") > 0);

	/* --for 2 --every 1: runs at 0 s and 1 s, none in the last slot */
	o.for_s = 2;
	steps_called = 0;
	step_code = CRONJOB_OK;
	int64_t t0 = mono_ms();
	assert_int_equal(cronjob_run("loop", &o, count_step, NULL), CRONJOB_OK);
	int64_t took = mono_ms() - t0;
	assert_int_equal(steps_called, 2);
	assert_true(took >= 950 && took < 1900);

	/* a held lock: BUSY at once, the step never runs */
	int fd = cronjob_lock("loop");
	steps_called = 0;
	assert_int_equal(cronjob_run("loop", &o, count_step, NULL), CRONJOB_BUSY);
	assert_int_equal(steps_called, 0);
	cronjob_unlock(fd);

	/* UNKNOWN means the work was not done: no stamp */
	step_code = CRONJOB_UNKNOWN;
	o.for_s = 0;
	assert_int_equal(cronjob_run("fresh", &o, count_step, NULL), CRONJOB_UNKNOWN);
	assert_int_equal(cronjob_last_run("fresh"), 0);
}

int main(void)
{
	http_client_init();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counter_table),
	    cmocka_unit_test(test_counter_normalize),
	    cmocka_unit_test(test_status_follows_counter),
	    cmocka_unit_test(test_starting_is_not_routable_but_not_an_error),
	    cmocka_unit_test(test_starting_past_the_grace_fails),
	    cmocka_unit_test(test_starting_server_that_fails_goes_offline),
	    cmocka_unit_test(test_maintenance_is_never_touched),
	    cmocka_unit_test(test_degraded_by_latency),
	    cmocka_unit_test(test_intervals),
	    cmocka_unit_test(test_score),
	    cmocka_unit_test(test_classify_cog),
	    cmocka_unit_test(test_classify_http_json),
	    cmocka_unit_test(test_summary),
	    T(test_run_probes_by_protocol),
	    T(test_run_many_hanging_servers_take_one_timeout),
	    T(test_passive_feeds_the_counter),
	    T(test_run_hook_and_maintenance),
	    T(test_run_survives_a_corrupt_file),
	    T(test_cronjob_parse),
	    T(test_cronjob_lock_and_stamp),
	    T(test_cronjob_run_loop),
	};
#undef T
	int rc = cmocka_run_group_tests_name("health", tests, NULL, NULL);
	http_client_cleanup();
	return rc;
}
