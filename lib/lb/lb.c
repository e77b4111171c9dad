#include "lb/lb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The configured default stays round-robin (see lbstate.h for why p2c is only the
 * recommendation). */
static const char *const algorithm_names[LB_ALGORITHM_COUNT] = {
	"round-robin", "weighted", "least-connections", "response-time", "p2c"};

const char *lb_algorithm_name(enum lb_algorithm a)
{
	return (unsigned)a < LB_ALGORITHM_COUNT ? algorithm_names[a] : "round-robin";
}

int lb_algorithm_from_name(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < LB_ALGORITHM_COUNT; i++)
		if (strcmp(name, algorithm_names[i]) == 0)
			return i;
	return -1;
}

static const char *const verdict_texts[] = {
	"eligible", "in maintenance", "offline", "does not serve the model",
	"not in the group", "lacks a tag", "full", "starting",
};

const char *lb_verdict_text(enum lb_verdict v)
{
	return (unsigned)v < sizeof verdict_texts / sizeof verdict_texts[0] ? verdict_texts[v]
									    : "unknown";
}

enum lb_verdict lb_eligible(const struct server *s, const struct lb_task *t)
{
	if (s->maintenance)
		return LB_MAINTENANCE;
	if (s->health == HEALTH_STARTING)
		return LB_STARTING;
	if (!server_health_routable(s->health))
		return LB_OFFLINE;
	enum lb_verdict wish = lb_match(s, t);
	if (wish != LB_OK)
		return wish;
	if (s->current_load >= s->max_concurrent)
		return LB_FULL;
	return LB_OK;
}

enum lb_verdict lb_match(const struct server *s, const struct lb_task *t)
{
	if (t->model && s->models.n && !strlist_has(&s->models, t->model))
		return LB_MODEL;
	if (t->group && !strlist_has(&s->groups, t->group))
		return LB_GROUP;
	if (t->tags)
		for (size_t i = 0; i < t->tags->n; i++)
			if (!strlist_has(&s->tags, t->tags->v[i]))
				return LB_TAGS;
	return LB_OK;
}

/* ---- helpers ---- */

static bool usable(const struct lb_candidate *c, const bool *excluded, size_t i)
{
	return !(excluded && excluded[i]) && c[i].max > 0 && c[i].load < c[i].max;
}

static size_t count_usable(const struct lb_candidate *c, size_t n, const bool *excluded)
{
	size_t live = 0;
	for (size_t i = 0; i < n; i++)
		live += usable(c, excluded, i);
	return live;
}

/* The k-th usable candidate (0-based), or -1. */
static int nth_usable(const struct lb_candidate *c, size_t n, const bool *excluded, size_t k)
{
	for (size_t i = 0; i < n; i++)
		if (usable(c, excluded, i) && k-- == 0)
			return (int)i;
	return -1;
}

/* splitmix64's finaliser: turns one random word into another, independent enough for
 * the several decisions one pick makes from a single rnd. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static double factor_of(const struct lb_candidate *c)
{
	return c->factor > 0 && c->factor <= 1 ? c->factor : 1.0;
}

/* Load after this task relative to the capacity the server earns: HAProxy's leastconn
 * key ((served + 1) / effective weight), with maxConcurrent as the weight. */
static double load_score(const struct lb_candidate *c)
{
	return ((double)c->load + 1.0) / ((double)c->max * factor_of(c));
}

static bool same_score(double a, double b)
{
	return fabs(a - b) <= 1e-12 * (fabs(a) + fabs(b));
}

/* Among usable candidates, the lowest score(i); ties are broken uniformly with rnd
 * (the k-th of the tied ones), never "always the first". */
static int argmin_fair(const struct lb_candidate *c, size_t n, const bool *excluded,
		       const double *score, uint64_t rnd)
{
	int best = -1;
	for (size_t i = 0; i < n; i++)
		if (usable(c, excluded, i) && (best < 0 || score[i] < score[best]))
			best = (int)i;
	if (best < 0)
		return -1;
	size_t ties = 0;
	for (size_t i = 0; i < n; i++)
		ties += usable(c, excluded, i) && same_score(score[i], score[best]);
	size_t k = (size_t)(rnd % ties);
	for (size_t i = 0; i < n; i++)
		if (usable(c, excluded, i) && same_score(score[i], score[best]) && k-- == 0)
			return (int)i;
	return best;
}

/* ---- the algorithms ---- */

static int pick_round_robin(const struct lb_candidate *c, size_t n, const bool *excluded,
			    struct lb_state *st)
{
	/* Count from a shared counter over the candidates still in play, so an excluded
	 * server's turn passes to the next one only once (no double share for the
	 * server that follows a gap). */
	size_t live = count_usable(c, n, excluded);
	if (!live)
		return -1;
	size_t k = (size_t)(st->rr_counter++ % live);
	return nth_usable(c, n, excluded, k);
}

/* nginx's smooth weighted round-robin (ngx_http_upstream_get_peer): every usable
 * peer's current weight grows by its weight, the largest is picked and loses the
 * total. Over sum(weights) picks each peer is chosen exactly weight times, spread
 * out (5:1:1 gives a a b a c a a, not a a a a a b c). */
static int pick_weighted(struct lb_candidate *c, size_t n, const bool *excluded)
{
	int best = -1;
	int64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (!usable(c, excluded, i))
			continue;
		int64_t w = c[i].weight > 0 ? c[i].weight : 1;
		c[i].current_weight += w;
		total += w;
		if (best < 0 || c[i].current_weight > c[best].current_weight)
			best = (int)i;
	}
	if (best >= 0)
		c[best].current_weight -= total;
	return best;
}

static int pick_least_connections(const struct lb_candidate *c, size_t n,
				  const bool *excluded, uint64_t rnd)
{
	double *score = malloc((n ? n : 1) * sizeof *score);
	if (!score)
		abort();
	for (size_t i = 0; i < n; i++)
		score[i] = usable(c, excluded, i) ? load_score(&c[i]) : 0;
	int i = argmin_fair(c, n, excluded, score, rnd);
	free(score);
	return i;
}

/* Power of two random choices (Mitzenmacher): two distinct usable candidates at
 * random, the less loaded wins. Needs no shared state at all, which is why it scales:
 * no lock on lb-state, and no herd on the single least-loaded server when many
 * processes decide from slightly stale loads at once. */
static int pick_p2c(const struct lb_candidate *c, size_t n, const bool *excluded, uint64_t rnd)
{
	size_t live = count_usable(c, n, excluded);
	if (live == 0)
		return -1;
	if (live == 1)
		return nth_usable(c, n, excluded, 0);
	size_t ka = (size_t)((rnd & 0xffffffffu) % live);
	size_t kb = (size_t)((rnd >> 32) % (live - 1));
	if (kb >= ka)
		kb++;
	int a = nth_usable(c, n, excluded, ka), b = nth_usable(c, n, excluded, kb);
	double sa = load_score(&c[a]), sb = load_score(&c[b]);
	if (same_score(sa, sb))
		return (mix64(rnd) & 1) ? a : b;
	return sa < sb ? a : b;
}

#define RT_PROBE_PER_MILLE 50 /* 5% of picks explore uniformly */

/* Peak-EWMA in the manner of Finagle/Linkerd: the expected cost of a server is its
 * EWMA times the work already waiting there (load + 1), divided by its weight factor.
 * A server without data and without load costs 0, so it is tried at once; one
 * without data but with work in flight is priced at the fleet's median, so it is
 * not flooded before its first result. A small share of picks explores at random,
 * so a server that was slow once is measured again instead of starved forever. */
static int pick_response_time(const struct lb_candidate *c, size_t n, const bool *excluded,
			      uint64_t rnd)
{
	size_t live = count_usable(c, n, excluded);
	if (!live)
		return -1;
	uint64_t r2 = mix64(rnd);
	if (live > 1 && r2 % 1000 < RT_PROBE_PER_MILLE)
		return nth_usable(c, n, excluded, (size_t)((r2 >> 32) % live));

	double *score = malloc(n * sizeof *score);
	double *known = malloc(n * sizeof *known);
	if (!score || !known)
		abort();
	size_t nk = 0;
	for (size_t i = 0; i < n; i++)
		if (usable(c, excluded, i) && c[i].ewma_ms > 0)
			known[nk++] = c[i].ewma_ms;
	double prior = lb_median_positive(known, nk);
	if (prior <= 0)
		prior = 1; /* nobody has data: the load alone decides */
	for (size_t i = 0; i < n; i++) {
		score[i] = 0;
		if (!usable(c, excluded, i))
			continue;
		double cost = c[i].ewma_ms > 0 ? c[i].ewma_ms : c[i].load == 0 ? 0 : prior;
		score[i] = cost * ((double)c[i].load + 1.0) / factor_of(&c[i]);
	}
	int i = argmin_fair(c, n, excluded, score, rnd);
	free(score);
	free(known);
	return i;
}

int lb_pick(enum lb_algorithm alg, struct lb_candidate *c, size_t n, const bool *excluded,
	    struct lb_state *st, const struct lb_task *t, uint64_t rnd)
{
	if (!c || n == 0)
		return -1;
	if (t && t->affinity_key && *t->affinity_key)
		return lb_affinity_pick(c, n, excluded, t->affinity_key);
	switch (alg) {
	case LB_WEIGHTED:
		return pick_weighted(c, n, excluded);
	case LB_LEAST_CONNECTIONS:
		return pick_least_connections(c, n, excluded, rnd);
	case LB_RESPONSE_TIME:
		return pick_response_time(c, n, excluded, rnd);
	case LB_P2C:
		return pick_p2c(c, n, excluded, rnd);
	case LB_ROUND_ROBIN:
	default: {
		struct lb_state local = {rnd};
		return pick_round_robin(c, n, excluded, st ? st : &local);
	}
	}
}

/* ---- affinity ---- */

uint64_t lb_hrw_score(const char *key, const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	h = (h ^ 0xffu) * 0x100000001b3ull; /* separator: ("ab","c") != ("a","bc") */
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return mix64(h);
}

int lb_affinity_pick(const struct lb_candidate *c, size_t n, const bool *excluded,
		     const char *key)
{
	int best = -1;
	uint64_t best_score = 0;
	for (size_t i = 0; i < n; i++) {
		if (!usable(c, excluded, i))
			continue;
		uint64_t s = lb_hrw_score(key, c[i].id ? c[i].id : "");
		if (best < 0 || s > best_score ||
		    (s == best_score && strcmp(c[i].id ? c[i].id : "", c[best].id ? c[best].id : "") < 0)) {
			best = (int)i;
			best_score = s;
		}
	}
	return best;
}

/* ---- dynamic weights ---- */

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void lb_weight_compute(const struct lb_weight_in *in, struct lb_weight *out)
{
	out->health = clamp((double)in->health_score / 100.0, 0.1, 1.0);
	if (in->degraded)
		out->health *= 0.5;

	double seen = in->ok + in->fail;
	out->success = seen >= 3 ? clamp(in->ok / seen, 0.1, 1.0) : 1.0;

	out->latency = 1.0;
	if (in->ewma_ms > 0 && in->ref_ewma_ms > 0 && in->ewma_ms > 2 * in->ref_ewma_ms)
		out->latency = clamp(2 * in->ref_ewma_ms / in->ewma_ms, 0.25, 1.0);

	out->slow_start = 1.0;
	if (in->slow_start_ms > 0 && in->up_for_ms < in->slow_start_ms) {
		double up = in->up_for_ms > 0 ? (double)in->up_for_ms : 0.0;
		out->slow_start = LB_SLOW_START_FLOOR +
				  (1.0 - LB_SLOW_START_FLOOR) * up / (double)in->slow_start_ms;
	}

	out->factor = clamp(out->health * out->success * out->latency * out->slow_start,
			    LB_FACTOR_MIN, 1.0);
	int w = in->weight > 0 ? in->weight : 1;
	long e = lround((double)w * LB_WEIGHT_SCALE * out->factor);
	out->effective = e < 1 ? 1 : (int)e;
}

double lb_ewma_next(double old, double sample_ms)
{
	if (sample_ms < 0)
		sample_ms = 0;
	if (old <= 0)
		return sample_ms;
	return LB_EWMA_ALPHA * sample_ms + (1 - LB_EWMA_ALPHA) * old;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double lb_median_positive(double *v, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] > 0)
			v[m++] = v[i];
	if (!m)
		return 0;
	qsort(v, m, sizeof *v, cmp_double);
	return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}
