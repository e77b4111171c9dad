/* lb: the LoadBalancer's choice, as pure functions (no I/O, no clock, no global
 * state) so every algorithm can be tested exhaustively. The caller gathers
 * candidates, asks lb_pick() for one, tries to reserve a slot on it under the
 * server's lock, and on a full server excludes it and asks again (the seed's
 * "check capacity, else choose the next server" loop). */
#ifndef TASKGATE_LB_H
#define TASKGATE_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

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
	const char *affinity_key;	/* NULL: none */
	const char *avoid_server;	/* prefer others (last failed attempt) */
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
};
const char *lb_verdict_text(enum lb_verdict v);
/* Eligibility of s for t: status, maintenance, model, group, tags, capacity. */
enum lb_verdict lb_eligible(const struct server *s, const struct lb_task *t);

struct lb_candidate {
	const char *id;
	int weight;	     /* effective weight, >= 1 */
	int load;	     /* currentLoad */
	int max;	     /* maxConcurrent */
	double ewma_ms;	     /* 0 = no data */
	int current_weight;  /* smooth weighted round-robin state, carried by the caller */
};

/* State the caller persists between picks (lb.json). */
struct lb_state {
	uint64_t rr_counter;
};

/* Picks a candidate index among those not excluded, or -1. rnd is a random
 * number from the caller (p2c). Updates st and candidates' current_weight. */
int lb_pick(enum lb_algorithm alg, struct lb_candidate *c, size_t n, const bool *excluded,
	    struct lb_state *st, const struct lb_task *t, uint64_t rnd);

#endif
