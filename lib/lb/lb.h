/* lb: the LoadBalancer's choice, as pure functions (no I/O, no clock, no global
 * state) so every algorithm can be tested exhaustively. The caller gathers
 * candidates, asks lb_pick() for one, tries to reserve a slot on it under the
 * server's lock, and on a full server excludes it and asks again (the seed's
 * "check capacity, else choose the next server" loop). Everything that persists
 * between picks (the round-robin counter, smooth-WRR current weights) is passed in
 * and out; lbstate.h keeps it in the state tree.
 *
 * Contract shared by every algorithm: lb_pick() never returns an index that is
 * excluded, nor a candidate that is full (load >= max), and returns -1 when no
 * candidate is left. */
#ifndef TASKGATE_LB_H
#define TASKGATE_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/server.h"

enum lb_algorithm {
	LB_ROUND_ROBIN = 0,
	LB_WEIGHTED,
	LB_LEAST_CONNECTIONS,
	LB_RESPONSE_TIME,
	LB_P2C,
	LB_ALGORITHM_COUNT
};

const char *lb_algorithm_name(enum lb_algorithm a);
int lb_algorithm_from_name(const char *name); /* -1 if unknown */

/* What a task asks of a server. */
struct lb_task {
	const char *model;
	const char *group;		/* NULL: any */
	const struct strlist *tags;	/* every tag must be on the server */
	const char *affinity_key;	/* NULL: none. The caller passes it only while
					 * stickySession is on. */
	const char *avoid_server;	/* prefer others (last failed attempt); the caller
					 * excludes it when another server can take the task */
};

/* Why a server cannot take a task now; LB_OK if it can. */
enum lb_verdict {
	LB_OK = 0,
	LB_MAINTENANCE,
	LB_OFFLINE,
	LB_MODEL,
	LB_GROUP,
	LB_TAGS,
	LB_FULL,
	LB_STARTING, /* not through its first good check (setup under way) */
};
const char *lb_verdict_text(enum lb_verdict v);
/* Eligibility of s for t: status, maintenance, model, group, tags, capacity. */
enum lb_verdict lb_eligible(const struct server *s, const struct lb_task *t);
/* The task's wishes alone (model, group, tags), whatever the server's status and
 * load: LB_OK, LB_MODEL, LB_GROUP or LB_TAGS. */
enum lb_verdict lb_match(const struct server *s, const struct lb_task *t);

struct lb_candidate {
	const char *id;
	int weight;		/* effective weight for `weighted` (any scale), >= 1 */
	double factor;		/* effective / configured weight in (0, 1] (health, success,
				 * slow start); scales capacity for least-connections, p2c and
				 * response-time. 0 is read as 1. */
	int load;		/* currentLoad (the task ledger) */
	int max;		/* maxConcurrent; load >= max is full */
	double ewma_ms;		/* dispatch-to-result EWMA (for the task's model when known);
				 * 0 = no data */
	int64_t current_weight; /* smooth weighted round-robin state, carried by the caller */
};

/* State the caller persists between picks. */
struct lb_state {
	uint64_t rr_counter;
};

/* Picks a candidate index among those not excluded and not full, or -1.
 * With t->affinity_key set, rendezvous hashing decides (lb_affinity_pick) and the
 * algorithm is not consulted. rnd is a uniformly random number from the caller
 * (p2c, tie breaks, probes). Updates st (round-robin) and the candidates'
 * current_weight (weighted). t may be NULL. */
int lb_pick(enum lb_algorithm alg, struct lb_candidate *c, size_t n, const bool *excluded,
	    struct lb_state *st, const struct lb_task *t, uint64_t rnd);

/* Rendezvous (highest random weight) hashing: the usable candidate with the highest
 * hash of (key, id). Adding or removing a server moves only the keys that hash
 * highest to that server, ~1/n of them. -1 if none is usable. */
int lb_affinity_pick(const struct lb_candidate *c, size_t n, const bool *excluded,
		     const char *key);
/* The stable 64-bit score behind it (FNV-1a of key, NUL, id; splitmix64 finish). */
uint64_t lb_hrw_score(const char *key, const char *id);

/* ---- dynamic weights ---- */

#define LB_WEIGHT_SCALE 100   /* effective weights are configured weight x 100 x factor */
#define LB_FACTOR_MIN 0.05    /* nothing eligible is ever weighted to zero: it must be
			       * able to earn its way back */
#define LB_SLOW_START_FLOOR 0.1
#define LB_EWMA_ALPHA 0.3
#define LB_OUTCOME_DECAY 0.95 /* ok/fail counts: each outcome ages the older ones */

struct lb_weight_in {
	int weight;		/* configured, >= 1 */
	bool degraded;
	int health_score;	/* 0-100 */
	double ok, fail;	/* recent outcomes, decayed counts */
	double ewma_ms;		/* this server's dispatch-to-result EWMA, 0 = no data */
	double ref_ewma_ms;	/* the fleet's median EWMA, 0 = none */
	int64_t up_for_ms;	/* now - statusSince (negative clock skew counts as 0) */
	int64_t slow_start_ms;	/* 0 = no slow start */
};

struct lb_weight {
	double health;	   /* healthScore/100, x0.5 when degraded */
	double success;	   /* recent success ratio (1 until there are 3 outcomes) */
	double latency;	   /* 1 up to twice the fleet's median EWMA, then 2*median/ewma */
	double slow_start; /* 0.1 -> 1 linearly over slowStartSeconds after statusSince */
	double factor;	   /* the product, clamped to [LB_FACTOR_MIN, 1] */
	int effective;	   /* weight * LB_WEIGHT_SCALE * factor, >= 1 */
};

/* Derives a server's effective weight. Each part is in (0, 1]: configured weights are
 * only ever lowered, so an operator's 3:1 stays the ceiling. */
void lb_weight_compute(const struct lb_weight_in *in, struct lb_weight *out);

/* One EWMA step (alpha LB_EWMA_ALPHA); old 0 means "no data" and takes the sample. */
double lb_ewma_next(double old, double sample_ms);
/* Median of the positive values of v[0..n) (v is reordered); 0 if none. */
double lb_median_positive(double *v, size_t n);

#endif
