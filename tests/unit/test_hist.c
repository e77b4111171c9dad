/* Unit tests for lib/hist.c (fixed log-spaced histograms, percentiles) and
 * lib/promtext.c (Prometheus text exposition). */
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
#include <string.h>

#include "base/hist.h"
#include "stats/promtext.h"
#include "stats/stats.h"

static void test_bounds_are_log_spaced(void **state)
{
	(void)state;
	for (int i = 1; i < HIST_FINITE; i++) {
		double ratio = (double)hist_bounds_ms[i] / (double)hist_bounds_ms[i - 1];
		assert_true(ratio >= 2.0 && ratio <= 2.5);
	}
	assert_int_equal(hist_bounds_ms[0], 5);
	assert_int_equal(hist_bounds_ms[HIST_FINITE - 1], 2500000);
}

static void test_bucket_of_is_le(void **state)
{
	(void)state;
	assert_int_equal(hist_bucket_of(-3), 0);
	assert_int_equal(hist_bucket_of(0), 0);
	assert_int_equal(hist_bucket_of(5), 0); /* le="0.005" includes 5 ms */
	assert_int_equal(hist_bucket_of(6), 1);
	assert_int_equal(hist_bucket_of(1000), 7);
	assert_int_equal(hist_bucket_of(1001), 8);
	assert_int_equal(hist_bucket_of(2500000), HIST_FINITE - 1);
	assert_int_equal(hist_bucket_of(2500001), HIST_FINITE);
	assert_int_equal(hist_bucket_of(INT64_MAX), HIST_FINITE);
	for (int i = 0; i < HIST_FINITE; i++) {
		assert_int_equal(hist_bucket_of(hist_bounds_ms[i]), i);
		assert_int_equal(hist_bucket_of(hist_bounds_ms[i] + 1), i + 1);
	}
}

static void test_add_counts_sum_min_max(void **state)
{
	(void)state;
	struct hist h = HIST_INIT;
	const int64_t v[] = {120, 7, 3000, 45, 900000};
	for (size_t i = 0; i < 5; i++)
		hist_add(&h, v[i]);
	assert_int_equal(h.count, 5);
	assert_int_equal(h.sum, 120 + 7 + 3000 + 45 + 900000);
	assert_int_equal(h.min, 7);
	assert_int_equal(h.max, 900000);
	uint64_t total = 0;
	for (int i = 0; i < HIST_BUCKETS; i++)
		total += h.b[i];
	assert_int_equal(total, 5);
	assert_true(fabs(hist_mean(&h) - (double)h.sum / 5.0) < 1e-9);
	hist_add(&h, -10); /* a clock step backwards counts as 0 */
	assert_int_equal(h.min, 0);
	assert_int_equal(h.b[0], 1);
}

static void test_quantiles_exact_when_uniform(void **state)
{
	(void)state;
	struct hist h = HIST_INIT;
	for (int i = 0; i < 10; i++)
		hist_add(&h, 1200);
	assert_true(hist_quantile(&h, 0.5) == 1200.0);
	assert_true(hist_quantile(&h, 0.95) == 1200.0);
	assert_true(hist_quantile(&h, 0.99) == 1200.0);
	struct hist empty = HIST_INIT;
	assert_true(hist_quantile(&empty, 0.5) == 0.0);
	assert_true(hist_mean(&empty) == 0.0);
}

static void test_quantiles_interpolate_within_bucket(void **state)
{
	(void)state;
	/* 100 values: 1..100 ms. */
	struct hist h = HIST_INIT;
	for (int i = 1; i <= 100; i++)
		hist_add(&h, i);
	/* Buckets: <=5: 5, <=10: 5, <=25: 15, <=50: 25, <=100: 50.
	 * p50: rank 50 falls in (25, 50] after 25 below: 25 + 25 * (25/25) = 50. */
	assert_true(fabs(hist_quantile(&h, 0.50) - 50.0) < 1e-9);
	/* p95: rank 95 in (50, 100], 50 below: 50 + 50 * (45/50) = 95. */
	assert_true(fabs(hist_quantile(&h, 0.95) - 95.0) < 1e-9);
	/* p99 = 99, p10 = rank 10 in (5, 10]: 5 + 5 * 5/5 = 10. */
	assert_true(fabs(hist_quantile(&h, 0.99) - 99.0) < 1e-9);
	assert_true(fabs(hist_quantile(&h, 0.10) - 10.0) < 1e-9);
	/* First bucket's lower edge is narrowed to min (1): rank 2.5 -> 1 + 4 * 2.5/5 = 3. */
	assert_true(fabs(hist_quantile(&h, 0.025) - 3.0) < 1e-9);
	assert_true(hist_quantile(&h, 0) == 1.0);
	assert_true(hist_quantile(&h, 1) == 100.0);
}

static void test_quantile_in_inf_bucket_stays_below_max(void **state)
{
	(void)state;
	struct hist h = HIST_INIT;
	hist_add(&h, 3000000);
	hist_add(&h, 5000000);
	double p = hist_quantile(&h, 0.99);
	assert_true(p > 3000000.0 && p <= 5000000.0);
	/* Monotonic in q. */
	double last = 0;
	for (double q = 0.05; q <= 1.0; q += 0.05) {
		double x = hist_quantile(&h, q);
		assert_true(x >= last);
		last = x;
	}
}

static void test_merge_equals_adding_everything(void **state)
{
	(void)state;
	struct hist a = HIST_INIT, b = HIST_INIT, all = HIST_INIT;
	for (int i = 0; i < 50; i++) {
		int64_t x = (i * 7919) % 100000, y = (i * 104729) % 3000000;
		hist_add(&a, x);
		hist_add(&b, y);
		hist_add(&all, x);
		hist_add(&all, y);
	}
	struct hist m = HIST_INIT;
	hist_merge(&m, &a);
	hist_merge(&m, &b);
	assert_true(hist_equal(&m, &all));
	struct hist empty = HIST_INIT;
	hist_merge(&m, &empty);
	assert_true(hist_equal(&m, &all));
}

static void test_json_round_trip(void **state)
{
	(void)state;
	struct hist h = HIST_INIT, back;
	hist_add(&h, 3);
	hist_add(&h, 4000);
	hist_add(&h, 9000000);
	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	hist_to_json(&h, &g);
	assert_int_equal(jg_finish(&g, &out), 0);
	yajl_val v = json_parse(out.data, out.len, NULL, NULL);
	assert_non_null(v);
	assert_true(hist_from_json(v, &back));
	assert_true(hist_equal(&h, &back));
	yajl_tree_free(v);
	/* A document whose buckets do not add up to count is refused. */
	const char *bad =
	    "{\"count\":3,\"sum\":1,\"min\":0,\"max\":1,\"buckets\":[1,0,0,0,0,0,0,0,0,"
	    "0,0,0,0,0,0,0,0,0,0]}";
	v = json_parse(bad, strlen(bad), NULL, NULL);
	assert_false(hist_from_json(v, &back));
	assert_int_equal(back.count, 0);
	yajl_tree_free(v);
	jg_free(&g);
	buf_free(&out);
}

/* ---- promtext ---- */

static void test_prom_values(void **state)
{
	(void)state;
	char v[64];
	prom_value(v, sizeof v, 3);
	assert_string_equal(v, "3");
	prom_value(v, sizeof v, 0.25);
	assert_string_equal(v, "0.25");
	prom_value(v, sizeof v, 1.0 / 0.0);
	assert_string_equal(v, "+Inf");
	prom_value(v, sizeof v, -1.0 / 0.0);
	assert_string_equal(v, "-Inf");
	prom_value(v, sizeof v, 0.0 / 0.0);
	assert_string_equal(v, "NaN");
	prom_value(v, sizeof v, 12345678901.0);
	assert_string_equal(v, "12345678901");
}

static void test_prom_escaping(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	struct prom_label l[2] = {{"model", "a\"b\\c\nd"}, {"status", "ok"}};
	prom_family(&out, "x_total", "counter", "help with \\ and\nnewline");
	prom_sample(&out, "x_total", l, 2, 7);
	assert_string_equal(buf_str(&out), "# HELP x_total help with \\\\ and\\nnewline\n"
					   "# TYPE x_total counter\n"
					   "x_total{model=\"a\\\"b\\\\c\\nd\",status=\"ok\"} 7\n");
	buf_reset(&out);
	prom_sample(&out, "up", NULL, 0, 1);
	assert_string_equal(buf_str(&out), "up 1\n");
	buf_free(&out);
}

static void test_prom_histogram(void **state)
{
	(void)state;
	struct hist h = HIST_INIT;
	hist_add(&h, 4);    /* <= 0.005 */
	hist_add(&h, 1200); /* <= 2.5 */
	hist_add(&h, 1200);
	hist_add(&h, 3000000); /* +Inf */
	struct buf out = BUF_INIT;
	struct prom_label l = {"server", "gpu-1"};
	prom_histogram(&out, "d_seconds", &l, 1, &h);
	const char *s = buf_str(&out);
	assert_non_null(strstr(s, "d_seconds_bucket{server=\"gpu-1\",le=\"0.005\"} 1\n"));
	assert_non_null(strstr(s, "d_seconds_bucket{server=\"gpu-1\",le=\"1\"} 1\n"));
	assert_non_null(strstr(s, "d_seconds_bucket{server=\"gpu-1\",le=\"2.5\"} 3\n"));
	assert_non_null(strstr(s, "d_seconds_bucket{server=\"gpu-1\",le=\"2500\"} 3\n"));
	assert_non_null(strstr(s, "d_seconds_bucket{server=\"gpu-1\",le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(s, "d_seconds_sum{server=\"gpu-1\"} 3002.404\n"));
	assert_non_null(strstr(s, "d_seconds_count{server=\"gpu-1\"} 4\n"));
	/* Cumulative: every bucket line's value is >= the previous one. */
	unsigned long long last = 0, n = 0;
	int lines = 0;
	for (const char *p = s; (p = strstr(p, "_bucket{")) != NULL; p++) {
		const char *sp = strchr(p, '}');
		assert_int_equal(sscanf(sp + 1, " %llu", &n), 1);
		assert_true(n >= last);
		last = n;
		lines++;
	}
	assert_int_equal(lines, HIST_BUCKETS);
	buf_free(&out);
}

static void test_fmt_num(void **state)
{
	(void)state;
	char t[32];
	stats_fmt_num(t, sizeof t, 12.5, 3);
	assert_string_equal(t, "12.5");
	stats_fmt_num(t, sizeof t, 40.0, 1);
	assert_string_equal(t, "40");
	stats_fmt_num(t, sizeof t, -0.00001, 2);
	assert_string_equal(t, "0");
	stats_fmt_num(t, sizeof t, 0.005, 3);
	assert_string_equal(t, "0.005");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bounds_are_log_spaced),
	    cmocka_unit_test(test_bucket_of_is_le),
	    cmocka_unit_test(test_add_counts_sum_min_max),
	    cmocka_unit_test(test_quantiles_exact_when_uniform),
	    cmocka_unit_test(test_quantiles_interpolate_within_bucket),
	    cmocka_unit_test(test_quantile_in_inf_bucket_stays_below_max),
	    cmocka_unit_test(test_merge_equals_adding_everything),
	    cmocka_unit_test(test_json_round_trip),
	    cmocka_unit_test(test_prom_values),
	    cmocka_unit_test(test_prom_escaping),
	    cmocka_unit_test(test_prom_histogram),
	    cmocka_unit_test(test_fmt_num),
	};
	return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
