/* Unit tests for lib/lb.c (the pure choice: every algorithm, affinity, dynamic
 * weights) and lib/lbstate.c (configuration, shared cursors across processes,
 * folding the event log, distribution).
 *
 * The algorithm tests run over generated server sets (a seeded PRNG, so a failure
 * is reproducible: the seed and set are printed) and 10,000 picks each. Stated
 * tolerances:
 *   round-robin        exact: every usable server within 1 pick of picks/usable;
 *   weighted           at every multiple of the weight total, exactly proportional;
 *                      at every prefix, within 1 pick of the ideal share (smooth);
 *                      the heaviest never runs longer than ceil(w/(W-w)) + 1;
 *   least-connections  always a lowest (load+1)/max server; equal ties within 15%
 *                      of a uniform share; never a full server while one has room;
 *   p2c                never a full server while one has room; equal loads within
 *                      15% of uniform; a nearly full server loses every duel;
 *   response-time      the 10x faster server takes >= 85%, the slower >= 1%;
 *   affinity           adding an 11th server moves only keys to it, 9.1% +- 3%;
 *   all                never an excluded or full index; -1 iff nothing is usable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lb/lb.h"
#include "lb/lbstate.h"
#include "fs/store.h"
#include "base/util.h"
#include "testutil.h"

#define PICKS 10000
#define MAXN 32

/* ---- a reproducible PRNG ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int rng_in(int lo, int hi)
{
	return lo + (int)(rng() % (uint64_t)(hi - lo + 1));
}

/* ---- generated server sets ---- */

struct set {
	size_t n;
	struct lb_candidate c[MAXN];
	bool excluded[MAXN];
	char ids[MAXN][16];
};

static void set_make(struct set *s, size_t n)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(s->ids[i], sizeof s->ids[i], "srv-%02zu", i);
		s->c[i] = (struct lb_candidate){.id = s->ids[i], .weight = 1, .factor = 1,
						.load = 0, .max = 1000000};
	}
}

static size_t set_usable(const struct set *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		k += !s->excluded[i] && s->c[i].load < s->c[i].max;
	return k;
}

static void print_set(const struct set *s, uint64_t seed)
{
	print_error("seed %llu, %zu servers:\n", (unsigned long long)seed, s->n);
	for (size_t i = 0; i < s->n; i++)
		print_error("  [%zu] w=%d f=%.2f load=%d/%d ewma=%.0f%s\n", i, s->c[i].weight,
			    s->c[i].factor, s->c[i].load, s->c[i].max, s->c[i].ewma_ms,
			    s->excluded[i] ? " excluded" : "");
}

/* ---- round-robin ---- */

static void test_round_robin_exact(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		rng_state = seed;
		struct set s;
		set_make(&s, (size_t)rng_in(1, 20));
		for (size_t i = 0; i < s.n; i++)
			s.excluded[i] = rng() % 4 == 0;
		size_t live = set_usable(&s);
		struct lb_state st = {rng() % 1000};
		long count[MAXN] = {0};
		for (int p = 0; p < PICKS; p++) {
			int i = lb_pick(LB_ROUND_ROBIN, s.c, s.n, s.excluded, &st, NULL, rng());
			if (live == 0) {
				assert_int_equal(i, -1);
				continue;
			}
			assert_true(i >= 0 && !s.excluded[i]);
			count[i]++;
		}
		for (size_t i = 0; i < s.n && live; i++) {
			long want = s.excluded[i] ? 0 : PICKS / (long)live;
			if (labs(count[i] - want) > 1) {
				print_set(&s, seed);
				fail_msg("round-robin: server %zu got %ld, want %ld +- 1", i, count[i],
					 want);
			}
		}
	}
}

/* A gap passes its turn on once: the server after an excluded one gets no double
 * share, and within every window of `live` picks each server is chosen once. */
static void test_round_robin_no_bias_after_gap(void **state)
{
	(void)state;
	struct set s;
	set_make(&s, 5);
	s.excluded[1] = true;
	struct lb_state st = {0};
	int window[4];
	for (int round = 0; round < 100; round++) {
		for (int k = 0; k < 4; k++)
			window[k] = lb_pick(LB_ROUND_ROBIN, s.c, s.n, s.excluded, &st, NULL, 0);
		int seen[5] = {0};
		for (int k = 0; k < 4; k++)
			seen[window[k]]++;
		assert_int_equal(seen[0], 1);
		assert_int_equal(seen[1], 0);
		assert_int_equal(seen[2], 1);
		assert_int_equal(seen[3], 1);
		assert_int_equal(seen[4], 1);
	}
}

/* ---- weighted ---- */

static void test_weighted_proportional_and_smooth(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		rng_state = seed * 7919;
		struct set s;
		set_make(&s, (size_t)rng_in(2, 12));
		long total = 0;
		int heaviest = 0;
		for (size_t i = 0; i < s.n; i++) {
			s.c[i].weight = rng_in(1, 10);
			total += s.c[i].weight;
			if (s.c[i].weight > s.c[heaviest].weight)
				heaviest = (int)i;
		}
		long count[MAXN] = {0};
		int run = 0, max_run = 0, last = -1;
		double worst_dev = 0;
		for (long p = 1; p <= PICKS; p++) {
			int i = lb_pick(LB_WEIGHTED, s.c, s.n, NULL, NULL, NULL, rng());
			assert_true(i >= 0 && (size_t)i < s.n);
			count[i]++;
			run = i == last ? run + 1 : 1;
			last = i;
			if (i == heaviest && run > max_run)
				max_run = run;
			for (size_t k = 0; k < s.n; k++) {
				double dev = fabs((double)count[k] -
						  (double)p * s.c[k].weight / (double)total);
				if (dev > worst_dev)
					worst_dev = dev;
			}
			if (p % total == 0)
				for (size_t k = 0; k < s.n; k++)
					if (count[k] != p / total * s.c[k].weight) {
						print_set(&s, seed);
						fail_msg("weighted: after %ld picks server %zu has %ld, "
							 "want %ld",
							 p, k, count[k], p / total * s.c[k].weight);
					}
		}
		long w = s.c[heaviest].weight;
		long bound = total == w ? PICKS : (w + (total - w) - 1) / (total - w) + 1;
		if (worst_dev > 1.0 + 1e-9 || max_run > bound) {
			print_set(&s, seed);
			fail_msg("weighted: worst prefix deviation %.3f (max 1), heaviest run %d "
				 "(max %ld)",
				 worst_dev, max_run, bound);
		}
	}
}

/* nginx's documented example: weights 5, 1, 1 give a a b a c a a. */
static void test_weighted_nginx_sequence(void **state)
{
	(void)state;
	struct set s;
	set_make(&s, 3);
	s.c[0].weight = 5;
	const char *want = "aabacaa";
	for (int cycle = 0; cycle < 3; cycle++)
		for (int k = 0; want[k]; k++) {
			int i = lb_pick(LB_WEIGHTED, s.c, s.n, NULL, NULL, NULL, 0);
			assert_int_equal(i, want[k] - 'a');
		}
}

/* ---- least-connections ---- */

static double score_lc(const struct lb_candidate *c)
{
	return ((double)c->load + 1) / ((double)c->max * (c->factor > 0 ? c->factor : 1));
}

static void test_least_connections_minimum_and_fair_ties(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 30; seed++) {
		rng_state = seed * 31;
		struct set s;
		set_make(&s, (size_t)rng_in(2, 16));
		for (size_t i = 0; i < s.n; i++) {
			s.c[i].max = rng_in(1, 8);
			s.c[i].load = rng_in(0, s.c[i].max);
		}
		double best = INFINITY;
		for (size_t i = 0; i < s.n; i++)
			if (s.c[i].load < s.c[i].max && score_lc(&s.c[i]) < best)
				best = score_lc(&s.c[i]);
		size_t ties = 0;
		for (size_t i = 0; i < s.n; i++)
			ties += s.c[i].load < s.c[i].max && score_lc(&s.c[i]) == best;
		long count[MAXN] = {0};
		for (int p = 0; p < PICKS; p++) {
			int i = lb_pick(LB_LEAST_CONNECTIONS, s.c, s.n, NULL, NULL, NULL, rng());
			if (ties == 0) {
				assert_int_equal(i, -1);
				continue;
			}
			assert_true(i >= 0);
			assert_true(s.c[i].load < s.c[i].max);
			assert_true(score_lc(&s.c[i]) == best);
			count[i]++;
		}
		for (size_t i = 0; i < s.n && ties; i++) {
			if (!(s.c[i].load < s.c[i].max && score_lc(&s.c[i]) == best))
				continue;
			double share = (double)count[i] / (PICKS / (double)ties);
			if (share < 0.85 || share > 1.15) {
				print_set(&s, seed);
				fail_msg("least-connections: tie %zu got %ld of %d (%zu ties)", i,
					 count[i], PICKS, ties);
			}
		}
	}
}

/* Picks take slots and random completions free them: never a full server while any
 * other has room, and -1 only when every server is full. Used for lc and p2c. */
static void run_capacity_sim(enum lb_algorithm alg, uint64_t seed)
{
	rng_state = seed;
	struct set s;
	set_make(&s, (size_t)rng_in(2, 20));
	for (size_t i = 0; i < s.n; i++)
		s.c[i].max = rng_in(1, 6);
	for (int p = 0; p < PICKS; p++) {
		size_t room = set_usable(&s);
		int i = lb_pick(alg, s.c, s.n, NULL, NULL, NULL, rng());
		if (room == 0) {
			assert_int_equal(i, -1);
		} else {
			if (i < 0 || s.c[i].load >= s.c[i].max) {
				print_set(&s, seed);
				fail_msg("%s picked %d with %zu servers having room",
					 lb_algorithm_name(alg), i, room);
			}
			s.c[i].load++;
		}
		if (rng() % 3 == 0) { /* a task ends somewhere */
			size_t k = (size_t)(rng() % s.n);
			if (s.c[k].load > 0)
				s.c[k].load--;
		}
	}
}

static void test_least_connections_never_full(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++)
		run_capacity_sim(LB_LEAST_CONNECTIONS, seed);
}

/* ---- p2c ---- */

static void test_p2c_never_full(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++)
		run_capacity_sim(LB_P2C, seed + 1000);
}

static void test_p2c_distribution(void **state)
{
	(void)state;
	rng_state = 99;
	struct set s;
	set_make(&s, 8);
	for (size_t i = 0; i < s.n; i++)
		s.c[i].max = 10;
	long count[MAXN] = {0};
	for (int p = 0; p < PICKS; p++)
		count[lb_pick(LB_P2C, s.c, s.n, NULL, NULL, NULL, rng())]++;
	for (size_t i = 0; i < s.n; i++) {
		double share = (double)count[i] / (PICKS / 8.0);
		assert_true(share > 0.85 && share < 1.15);
	}
	/* A server with 9 of 10 slots taken loses every duel against an idle one. */
	memset(count, 0, sizeof count);
	s.c[3].load = 9;
	for (int p = 0; p < PICKS; p++)
		count[lb_pick(LB_P2C, s.c, s.n, NULL, NULL, NULL, rng())]++;
	assert_int_equal(count[3], 0);
	/* With one candidate left, that one (if it has room). */
	memset(s.excluded, 1, sizeof s.excluded);
	s.excluded[5] = false;
	assert_int_equal(lb_pick(LB_P2C, s.c, s.n, s.excluded, NULL, NULL, rng()), 5);
	s.c[5].load = 10;
	assert_int_equal(lb_pick(LB_P2C, s.c, s.n, s.excluded, NULL, NULL, rng()), -1);
}

/* ---- response-time ---- */

static void test_response_time_prefers_fast_probes_slow(void **state)
{
	(void)state;
	rng_state = 5;
	struct set s;
	set_make(&s, 2);
	s.c[0].ewma_ms = 50;
	s.c[1].ewma_ms = 500;
	long count[2] = {0};
	for (int p = 0; p < PICKS; p++)
		count[lb_pick(LB_RESPONSE_TIME, s.c, s.n, NULL, NULL, NULL, rng())]++;
	print_message("# response-time 50 ms vs 500 ms: %ld / %ld\n", count[0], count[1]);
	assert_true(count[0] >= PICKS * 85 / 100);
	assert_true(count[1] >= PICKS / 100);

	/* Outstanding work is penalised (peak-EWMA): 20 tasks waiting on the fast one
	 * make the idle slow one cheaper (50 * 21 > 500 * 1). */
	s.c[0].load = 20;
	memset(count, 0, sizeof count);
	for (int p = 0; p < PICKS; p++)
		count[lb_pick(LB_RESPONSE_TIME, s.c, s.n, NULL, NULL, NULL, rng())]++;
	assert_true(count[1] >= PICKS * 85 / 100);
}

static void test_response_time_probes_servers_without_data(void **state)
{
	(void)state;
	rng_state = 6;
	struct set s;
	set_make(&s, 3);
	s.c[0].ewma_ms = 20;
	s.c[1].ewma_ms = 30;
	/* s.c[2] has no data and nothing running: it is tried at once. */
	long count[3] = {0};
	for (int p = 0; p < 1000; p++)
		count[lb_pick(LB_RESPONSE_TIME, s.c, s.n, NULL, NULL, NULL, rng())]++;
	assert_true(count[2] >= 900);
	/* With a task already running there and still no result, it is priced at the
	 * fleet's median (25 ms * 2), so it is not flooded, but not starved either. */
	s.c[2].load = 1;
	memset(count, 0, sizeof count);
	for (int p = 0; p < PICKS; p++)
		count[lb_pick(LB_RESPONSE_TIME, s.c, s.n, NULL, NULL, NULL, rng())]++;
	assert_true(count[0] > PICKS / 2);
	assert_true(count[2] >= PICKS / 100);
	assert_true(count[2] < PICKS / 10);
}

/* ---- affinity ---- */

static void test_affinity_stable_when_adding_a_server(void **state)
{
	(void)state;
	enum { KEYS = 10000 };
	struct set s;
	set_make(&s, 11);
	s.excluded[10] = true; /* the 11th is "not there yet" */
	static int before[KEYS];
	char key[32];
	struct lb_task t = {0};
	t.affinity_key = key;
	for (int k = 0; k < KEYS; k++) {
		snprintf(key, sizeof key, "user-%d", k);
		/* The algorithm is irrelevant with a key. */
		before[k] = lb_pick((enum lb_algorithm)(k % LB_ALGORITHM_COUNT), s.c, s.n,
				    s.excluded, NULL, &t, rng());
		assert_true(before[k] >= 0 && before[k] < 10);
	}
	s.excluded[10] = false;
	int moved = 0;
	for (int k = 0; k < KEYS; k++) {
		snprintf(key, sizeof key, "user-%d", k);
		int now = lb_pick(LB_P2C, s.c, s.n, s.excluded, NULL, &t, rng());
		if (now != before[k]) {
			assert_int_equal(now, 10); /* a key only ever moves to the new server */
			moved++;
		}
	}
	print_message("# affinity: adding an 11th server moved %d of %d keys\n", moved, KEYS);
	assert_true(moved > KEYS * 6 / 100 && moved < KEYS * 12 / 100);

	/* Removing a server moves only its keys; the rest stay put. */
	s.excluded[4] = true;
	for (int k = 0; k < KEYS; k++) {
		snprintf(key, sizeof key, "user-%d", k);
		int with = before[k];
		int now = lb_pick(LB_ROUND_ROBIN, s.c, s.n, s.excluded, NULL, &t, rng());
		assert_true(now != 4);
		if (with != 4 && now != 10)
			assert_int_equal(now, with);
	}
	/* A full affinity server passes the key on, like an excluded one. */
	s.excluded[4] = false;
	snprintf(key, sizeof key, "user-%d", 0);
	int home = lb_affinity_pick(s.c, s.n, s.excluded, key);
	s.c[home].load = s.c[home].max;
	int other = lb_affinity_pick(s.c, s.n, s.excluded, key);
	assert_true(other >= 0 && other != home);
}

/* ---- all algorithms: never an excluded or full index ---- */

static void test_never_excluded_or_full(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 60; seed++) {
		rng_state = seed * 101;
		struct set s;
		set_make(&s, (size_t)rng_in(1, MAXN));
		for (size_t i = 0; i < s.n; i++) {
			s.excluded[i] = rng() % 3 == 0;
			s.c[i].max = rng_in(1, 4);
			s.c[i].load = rng_in(0, s.c[i].max);
			s.c[i].weight = rng_in(1, 500);
			s.c[i].factor = (double)rng_in(5, 100) / 100.0;
			s.c[i].ewma_ms = rng() % 2 ? (double)rng_in(1, 5000) : 0;
		}
		size_t room = set_usable(&s);
		struct lb_state st = {0};
		char key[16];
		for (int alg = 0; alg <= LB_ALGORITHM_COUNT; alg++) { /* COUNT: affinity */
			struct lb_task t = {0};
			for (int p = 0; p < PICKS / 5; p++) {
				if (alg == LB_ALGORITHM_COUNT) {
					snprintf(key, sizeof key, "k%d", p);
					t.affinity_key = key;
				}
				int i = lb_pick(alg == LB_ALGORITHM_COUNT ? LB_P2C
									  : (enum lb_algorithm)alg,
						s.c, s.n, s.excluded, &st, &t, rng());
				if (room == 0 ? i != -1
					      : (i < 0 || s.excluded[i] || s.c[i].load >= s.c[i].max)) {
					print_set(&s, seed);
					fail_msg("algorithm %d returned %d (%zu usable)", alg, i, room);
				}
			}
		}
	}
	/* Degenerate inputs. */
	struct set s;
	set_make(&s, 1);
	assert_int_equal(lb_pick(LB_P2C, s.c, 0, NULL, NULL, NULL, 1), -1);
	assert_int_equal(lb_pick(LB_P2C, NULL, 3, NULL, NULL, NULL, 1), -1);
}

/* ---- dynamic weights ---- */

static void test_weight_compute(void **state)
{
	(void)state;
	struct lb_weight w;
	struct lb_weight_in in = {.weight = 3, .health_score = 100, .up_for_ms = 1000000,
				  .slow_start_ms = 30000};
	lb_weight_compute(&in, &w);
	assert_int_equal(w.effective, 300);
	assert_true(w.factor == 1.0);

	/* Slow start: linear from 10% to 100% over the window. */
	int64_t at[] = {0, 7500, 15000, 22500, 29999, 30000, -5000};
	double want[] = {0.1, 0.325, 0.55, 0.775, 1.0, 1.0, 0.1};
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		in.up_for_ms = at[i];
		lb_weight_compute(&in, &w);
		assert_true(fabs(w.slow_start - want[i]) < 0.001);
	}
	in.up_for_ms = 1000000;

	/* Degraded halves; a poor health score lowers further. */
	in.degraded = true;
	lb_weight_compute(&in, &w);
	assert_int_equal(w.effective, 150);
	in.degraded = false;
	in.health_score = 60;
	lb_weight_compute(&in, &w);
	assert_int_equal(w.effective, 180);
	in.health_score = 100;

	/* Success rate counts from three outcomes on. */
	in.ok = 1;
	in.fail = 1;
	lb_weight_compute(&in, &w);
	assert_true(w.success == 1.0);
	in.ok = 3;
	in.fail = 1;
	lb_weight_compute(&in, &w);
	assert_true(fabs(w.success - 0.75) < 1e-9);
	in.ok = 0;
	in.fail = 10;
	lb_weight_compute(&in, &w);
	assert_true(w.success >= 0.1 && w.factor >= LB_FACTOR_MIN);
	in.ok = in.fail = 0;

	/* Latency: up to twice the fleet's median is normal; beyond, proportionally less,
	 * never below a quarter. */
	in.ref_ewma_ms = 100;
	in.ewma_ms = 190;
	lb_weight_compute(&in, &w);
	assert_true(w.latency == 1.0);
	in.ewma_ms = 400;
	lb_weight_compute(&in, &w);
	assert_true(fabs(w.latency - 0.5) < 1e-9);
	in.ewma_ms = 100000;
	lb_weight_compute(&in, &w);
	assert_true(fabs(w.latency - 0.25) < 1e-9);

	/* Everything bad at once still leaves a weight to earn a way back with. */
	in = (struct lb_weight_in){.weight = 1, .degraded = true, .health_score = 0,
				   .ok = 0, .fail = 50, .ewma_ms = 1e6, .ref_ewma_ms = 1,
				   .up_for_ms = 0, .slow_start_ms = 1000};
	lb_weight_compute(&in, &w);
	assert_true(w.effective >= 1);
	assert_true(fabs(w.factor - LB_FACTOR_MIN) < 1e-9);
}

static void test_helpers(void **state)
{
	(void)state;
	double v[] = {0, 5, 1, 0, 3};
	assert_true(lb_median_positive(v, 5) == 3);
	double w[] = {4, 2};
	assert_true(lb_median_positive(w, 2) == 3);
	double z[] = {0, 0};
	assert_true(lb_median_positive(z, 2) == 0);
	assert_true(lb_ewma_next(0, 40) == 40);
	assert_true(fabs(lb_ewma_next(100, 200) - 130) < 1e-9);
	for (int a = 0; a < LB_ALGORITHM_COUNT; a++)
		assert_int_equal(lb_algorithm_from_name(lb_algorithm_name(a)), a);
	assert_int_equal(lb_algorithm_from_name("random"), -1);
	assert_int_equal(lb_algorithm_from_name(NULL), -1);
	assert_true(lb_hrw_score("ab", "c") != lb_hrw_score("a", "bc"));
}

/* ---- lbstate: the state tree ---- */

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
	lb_state_reset_cache();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	lb_state_reset_cache();
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static yajl_val parse(const char *text)
{
	yajl_val v = json_parse(text, strlen(text), NULL, NULL);
	assert_non_null(v);
	return v;
}

static void test_config_validation(void **state)
{
	(void)state;
	struct lb_config c;
	struct verr e;
	static const struct {
		const char *body, *field;
	} bad[] = {
		{"{\"algorithm\":\"random\"}", "/algorithm"},
		{"{\"algorithm\":3}", "/algorithm"},
		{"{\"maxRetries\":-1}", "/maxRetries"},
		{"{\"maxRetries\":21}", "/maxRetries"},
		{"{\"maxRetries\":1.5}", "/maxRetries"},
		{"{\"stickySession\":\"yes\"}", "/stickySession"},
		{"{\"slowStartSeconds\":3601}", "/slowStartSeconds"},
		{"{\"healthCheckInterval\":0}", "/healthCheckInterval"},
		{"{\"algorithim\":\"p2c\"}", "/algorithim"},
		{"[]", "/"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		yajl_val b = parse(bad[i].body);
		lb_config_defaults(&c);
		memset(&e, 0, sizeof e);
		assert_int_equal(lb_config_apply(b, &c, &e), -1);
		assert_string_equal(e.field, bad[i].field);
		yajl_tree_free(b);
	}
	yajl_val b = parse("{\"algorithm\":\"p2c\",\"maxRetries\":0,\"stickySession\":true,"
			   "\"slowStartSeconds\":0,\"healthCheckInterval\":60}");
	lb_config_defaults(&c);
	assert_int_equal(lb_config_apply(b, &c, &e), 0);
	assert_int_equal(c.algorithm, LB_P2C);
	assert_int_equal(c.max_retries, 0);
	assert_true(c.sticky_session);
	assert_int_equal(c.slow_start_s, 0);
	assert_int_equal(c.health_check_interval_s, 60);
	yajl_tree_free(b);
}

static void test_config_update_and_cache(void **state)
{
	(void)state;
	struct lb_config c;
	struct verr e;
	lb_config_load(&c);
	assert_int_equal(c.algorithm, LB_ROUND_ROBIN); /* no file: defaults */
	assert_int_equal(c.max_retries, 3);
	yajl_val b = parse("{\"algorithm\":\"weighted\"}");
	assert_int_equal(lb_config_update(b, &c, &e), STORE_OK);
	yajl_tree_free(b);
	lb_config_load(&c);
	assert_int_equal(c.algorithm, LB_WEIGHTED);
	/* A partial update keeps the other fields. */
	b = parse("{\"maxRetries\":7}");
	assert_int_equal(lb_config_update(b, &c, &e), STORE_OK);
	yajl_tree_free(b);
	lb_config_load(&c);
	assert_int_equal(c.algorithm, LB_WEIGHTED);
	assert_int_equal(c.max_retries, 7);
	/* An invalid one changes nothing. */
	b = parse("{\"algorithm\":\"p2c\",\"maxRetries\":99}");
	assert_int_equal(lb_config_update(b, &c, &e), LB_CONFIG_INVALID);
	assert_string_equal(e.field, "/maxRetries");
	yajl_tree_free(b);
	lb_config_load(&c);
	assert_int_equal(c.algorithm, LB_WEIGHTED);
	/* Another process's write (same size, new inode) is seen at once. */
	const char *doc = "{\"algorithm\":\"p2c\"}";
	assert_int_equal(store_put(STORE_ROOT, "lb", doc, strlen(doc)), STORE_OK);
	lb_config_load(&c);
	assert_int_equal(c.algorithm, LB_P2C);
}

/* Several processes share one exact rotation through lb-state.json. */
static void test_shared_round_robin_across_processes(void **state)
{
	struct fixture *f = *state;
	enum { PROCS = 4, EACH = 250, N = 7 };
	struct set s;
	set_make(&s, N);
	char path[4096];
	snprintf(path, sizeof path, "%s/picks", f->dir);
	FILE *out = fopen(path, "w");
	assert_non_null(out);
	fclose(out);
	pid_t pids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			FILE *o = fopen(path, "a");
			if (!o)
				_exit(2);
			setvbuf(o, NULL, _IONBF, 0);
			for (int k = 0; k < EACH; k++) {
				int i = lb_select(LB_ROUND_ROBIN, s.c, s.n, NULL, NULL, 0);
				if (i < 0)
					_exit(3);
				fprintf(o, "%d\n", i);
			}
			fclose(o);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	long count[N] = {0};
	FILE *in = fopen(path, "r");
	int i;
	while (fscanf(in, "%d", &i) == 1)
		count[i]++;
	fclose(in);
	for (int k = 0; k < N; k++) {
		long want = PROCS * EACH / N;
		assert_true(labs(count[k] - want) <= 1);
	}
}

/* Smooth WRR stays exact when the picks come from different processes. */
static void test_shared_weighted_across_processes(void **state)
{
	(void)state;
	enum { PROCS = 3, EACH = 200 };
	struct set s;
	set_make(&s, 3);
	s.c[0].weight = 300;
	s.c[1].weight = 200;
	s.c[2].weight = 100;
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			close(pipefd[0]);
			for (int k = 0; k < EACH; k++) {
				struct set mine = s; /* a fresh snapshot per pick, like dispatch */
				for (size_t j = 0; j < mine.n; j++)
					mine.c[j].id = mine.ids[j];
				char b = (char)('0' + lb_select(LB_WEIGHTED, mine.c, mine.n, NULL,
								NULL, 0));
				if (write(pipefd[1], &b, 1) != 1)
					_exit(2);
			}
			_exit(0);
		}
	}
	close(pipefd[1]);
	long count[3] = {0};
	char b;
	while (read(pipefd[0], &b, 1) == 1)
		count[b - '0']++;
	close(pipefd[0]);
	for (int p = 0; p < PROCS; p++)
		waitpid(pids[p], NULL, 0);
	assert_int_equal(count[0], 300);
	assert_int_equal(count[1], 200);
	assert_int_equal(count[2], 100);
}

static double elapsed_us(struct timespec a, struct timespec b)
{
	return (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
}

static int put_counter(yajl_val old, struct jgen *g, void *arg)
{
	(void)arg;
	jg_obj(g);
	jg_kint(g, "rrCounter", json_int_or(old, "rrCounter", 0) + 1);
	jg_obj_end(g);
	return STORE_OK;
}

/* Not a pass/fail check: what one shared-cursor pick costs with and without fsync
 * (the reason lb-state is written with STORE_NO_FSYNC). */
static void test_measure_shared_cursor_cost(void **state)
{
	(void)state;
	enum { N = 200 };
	struct set s;
	set_make(&s, 10);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int k = 0; k < N; k++)
		assert_true(lb_select(LB_ROUND_ROBIN, s.c, s.n, NULL, NULL, 0) >= 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double nosync = elapsed_us(a, b) / N;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int k = 0; k < N / 4; k++)
		assert_int_equal(store_update(STORE_ROOT, "lb-fsync", STORE_UPSERT, put_counter,
					      NULL),
				 STORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double sync = elapsed_us(a, b) / (N / 4);
	print_message("# shared cursor pick: %.0f us without fsync, %.0f us with fsync\n",
		      nosync, sync);
}

static void write_events(const char *dir, int64_t now, const char *lines)
{
	char hour[16], path[4096];
	time_t t = (time_t)(now / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(hour, sizeof hour, "%Y%m%d%H", &tm);
	snprintf(path, sizeof path, "%s/stats/events/%s.jsonl", dir, hour);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs(lines, f);
	fclose(f);
}

static void test_fold_and_distribution(void **state)
{
	struct fixture *f = *state;
	int64_t now = now_ms();
	char lines[4096];
	snprintf(lines, sizeof lines,
		 "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"a\",\"model\":\"m1\",\"server\":\"fast\"}\n"
		 "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"b\",\"model\":\"m1\",\"server\":\"fast\"}\n"
		 "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"c\",\"model\":\"m2\",\"server\":\"slow\"}\n"
		 "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"d\",\"model\":\"m2\",\"server\":\"slow\"}\n"
		 "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"e\",\"model\":\"m2\",\"server\":\"slow\"}\n"
		 "{\"t\":%lld,\"type\":\"dispatched\",\"task\":\"old\",\"model\":\"m2\",\"server\":\"slow\"}\n"
		 "{\"t\":%lld,\"type\":\"completed\",\"task\":\"a\",\"model\":\"m1\",\"server\":\"fast\",\"ms\":100}\n"
		 "{\"t\":%lld,\"type\":\"completed\",\"task\":\"b\",\"model\":\"m1\",\"server\":\"fast\",\"ms\":200}\n"
		 "{\"t\":%lld,\"type\":\"completed\",\"task\":\"c\",\"model\":\"m2\",\"server\":\"slow\",\"ms\":1000}\n"
		 "{\"t\":%lld,\"type\":\"retried\",\"task\":\"d\",\"model\":\"m2\",\"server\":\"slow\"}\n"
		 "{\"t\":%lld,\"type\":\"timed_out\",\"task\":\"e\",\"model\":\"m2\",\"server\":\"slow\"}\n"
		 "{\"t\":%lld,\"type\":\"created\",\"task\":\"f\",\"model\":\"m2\"}\n"
		 "{\"t\":%lld,\"type\":\"completed\",\"task\":\"g\",\"model\":\"x\\\"server\\\":\\\"evil\",\"server\":\"fast\",\"ms\":100}\n"
		 "{\"t\":%lld,\"type\":\"comp",
		 (long long)now, (long long)now, (long long)now, (long long)now, (long long)now,
		 (long long)(now - 2 * 3600000LL), (long long)now, (long long)now, (long long)now,
		 (long long)now, (long long)now, (long long)now, (long long)now, (long long)now);
	write_events(f->dir, now, lines);

	assert_int_equal(lb_stats_fold(0, LB_FOLD_BUDGET), STORE_OK);
	const struct lb_stats *st = lb_stats_get();
	const struct lb_server_stats *fast = lb_stats_find(st, "fast");
	const struct lb_server_stats *slow = lb_stats_find(st, "slow");
	assert_non_null(fast);
	assert_non_null(slow);
	assert_true(fast->ok > 2.5 && fast->fail == 0);
	/* 100, then 0.3*200 + 0.7*100 = 130, then 0.3*100 + 0.7*130 = 121 */
	assert_true(fabs(fast->ewma_ms - 121) < 0.01);
	assert_true(fabs(lb_stats_ewma(fast, "m1") - 130) < 0.01);
	assert_true(fabs(lb_stats_ewma(fast, "unknown") - 121) < 0.01);
	assert_true(slow->ok > 0.5 && slow->fail > 1.5);
	assert_true(fabs(lb_stats_ewma(slow, "m2") - 1000) < 0.01);
	/* The half-written last line is left for the next fold. */
	long long cursor = st->cursor_offset;
	write_events(f->dir, now, "leted\",\"task\":\"h\",\"model\":\"m1\",\"server\":\"fast\",\"ms\":121}\n");
	/* Folded just now: a fold with a max age is a no-op. */
	assert_int_equal(lb_stats_fold(60000, LB_FOLD_BUDGET), STORE_UNCHANGED);
	assert_int_equal(lb_stats_fold(0, LB_FOLD_BUDGET), STORE_OK);
	st = lb_stats_get();
	assert_true(st->cursor_offset > cursor);
	fast = lb_stats_find(st, "fast");
	assert_true(fabs(fast->ewma_ms - 121) < 0.01);
	assert_true(fast->ok > 3.5);

	struct lb_distribution d;
	lb_distribution(now + 1, 3600000, &d);
	assert_int_equal(d.total, 5); /* the two-hour-old line is outside the window */
	assert_int_equal(lb_distribution_count(&d, "fast"), 2);
	assert_int_equal(lb_distribution_count(&d, "slow"), 3);
	assert_int_equal(lb_distribution_count(&d, "none"), 0);
	assert_false(d.partial);
	lb_distribution_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_robin_exact),
		cmocka_unit_test(test_round_robin_no_bias_after_gap),
		cmocka_unit_test(test_weighted_proportional_and_smooth),
		cmocka_unit_test(test_weighted_nginx_sequence),
		cmocka_unit_test(test_least_connections_minimum_and_fair_ties),
		cmocka_unit_test(test_least_connections_never_full),
		cmocka_unit_test(test_p2c_never_full),
		cmocka_unit_test(test_p2c_distribution),
		cmocka_unit_test(test_response_time_prefers_fast_probes_slow),
		cmocka_unit_test(test_response_time_probes_servers_without_data),
		cmocka_unit_test(test_affinity_stable_when_adding_a_server),
		cmocka_unit_test(test_never_excluded_or_full),
		cmocka_unit_test(test_weight_compute),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_config_validation),
		cmocka_unit_test_setup_teardown(test_config_update_and_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_round_robin_across_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shared_weighted_across_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_measure_shared_cursor_cost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_and_distribution, setup, teardown),
	};
	return cmocka_run_group_tests_name("lb", tests, NULL, NULL);
}
