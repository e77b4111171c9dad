/* lbstate: the LoadBalancer's state around the pure choice of lb.h — its
 * configuration, the cursors shared by every FastCGI process, what it learns from
 * the event log, the load distribution, and rebalancing.
 *
 * Three files at the root of the state tree (store kind STORE_ROOT), split by how
 * much a crash may cost:
 *
 *   lb.json        LoadBalancerConfig. Written only by PUT /api/v2/loadbalancer/config,
 *                  with the store's full fsync discipline: an operator's decision
 *                  must survive a crash.
 *   lb-state.json  the selection cursors: {"rrCounter": N, "wrr": {"<id>": current
 *                  weight}}. Round-robin and weighted picks update it under its lock
 *                  so that all processes (and all web nodes sharing the tree) follow
 *                  one exact rotation, but WITHOUT fsync (STORE_NO_FSYNC): on this
 *                  machine an fsynced replace costs 2-8 ms, a plain one ~0.2 ms, and
 *                  a crash that loses the cursors only restarts the rotation. Kept
 *                  apart from lb.json so that a torn unsynced write can never take
 *                  the configuration with it.
 *   lb-stats.json  what dynamic weights and response-time learn from the hourly
 *                  event log (stats/events/<YYYYMMDDHH>.jsonl): per server decayed
 *                  ok/fail counts and the dispatch-to-result EWMA, overall and per
 *                  model; the effective weights of the last rebalance; the cursor
 *                  into the log. Also unsynced: a derived cache. It is folded from
 *                  the log at most every LB_FOLD_EVERY_MS by whichever dispatch
 *                  finds it stale, and on status and rebalance. Reading the log
 *                  (rather than hooking the completion path) keeps the learning in
 *                  one place and costs the completion path nothing.
 *
 * Lock discipline: each of these is updated through store_update (its stripe lock
 * of kind STORE_ROOT), never two at once, and never while a server's lock is held. */
#ifndef TASKGATE_LBSTATE_H
#define TASKGATE_LBSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "lb/lb.h"
#include "model/server.h"
#include "fs/store.h"
#include "base/verr.h"

#define LB_FOLD_EVERY_MS 2000
#define LB_FOLD_BUDGET (1u << 20)	 /* bytes of event log read per fold */
#define LB_MODELS_PER_SERVER 16		 /* per-model EWMAs kept, least recent dropped */
#define LB_DIST_MAX_BYTES (8u << 20)	 /* per hour file read by the distribution */
#define LB_MAX_RETRIES_MAX 20

/* ---- configuration (lb.json) ---- */

/* Defaults: round-robin, maxRetries 3, stickySession off, slowStartSeconds 30,
 * healthCheckInterval 10.
 *
 * Why round-robin stays the configured default although p2c is what we recommend at
 * scale: round-robin is what an operator expects from a fresh install (and what the
 * tasks tests were written against), it is exact and easy to reason about with few
 * servers, and p2c's benefits (no shared cursor, no herding on stale loads) only
 * show with many servers and processes. Switching is one PUT. */
struct lb_config {
	enum lb_algorithm algorithm;
	int max_retries;	     /* immediate re-picks after a refused reservation, 0..20 */
	bool sticky_session;	     /* affinityKey -> rendezvous hashing */
	int slow_start_s;	     /* 0..3600; 0 = off */
	int health_check_interval_s; /* 1..3600, the seed's setting; see api docs */
};

void lb_config_defaults(struct lb_config *c);
/* lb.json over the defaults. Cached per process by (inode, mtime, size), so a
 * change by any process is seen on the next call. */
void lb_config_load(struct lb_config *c);
/* Applies a request body onto c: fields present replace, fields absent stay.
 * Returns 0, or -1 with e naming the field (unknown fields are refused too). */
int lb_config_apply(yajl_val body, struct lb_config *c, struct verr *e);
/* Validates body, then merges it into lb.json under the lock (fsynced). out
 * receives the configuration as stored. Returns STORE_OK, a STORE_* error, or
 * LB_CONFIG_INVALID with e filled. */
#define LB_CONFIG_INVALID (STORE_EDIT_BASE + 40)
int lb_config_update(yajl_val body, struct lb_config *out, struct verr *e);
void lb_config_to_json(const struct lb_config *c, struct jgen *g);

/* ---- what is learnt from the event log (lb-stats.json) ---- */

struct lb_model_stat {
	char *model;
	double ewma_ms;
	int64_t at;
};

struct lb_server_stats {
	char id[65];
	double ok, fail;  /* decayed outcome counts (LB_OUTCOME_DECAY per outcome) */
	double ewma_ms;	  /* dispatch-to-result, successful attempts; 0 = no data */
	int64_t last_at;  /* last outcome seen */
	int effective;	  /* effective weight as the last rebalance stored it; 0 = never */
	struct lb_model_stat *models;
	size_t nmodels;
};

struct lb_stats {
	struct lb_server_stats *v; /* sorted by id */
	size_t n;
	char cursor_hour[16];	   /* "YYYYMMDDHH", "" before the first fold */
	long long cursor_offset;
	int64_t folded_at;
};

/* The stats as last stored (cached by inode/mtime/size). The pointer stays valid
 * until the next lbstate call; never NULL (empty stats when there is no file). */
const struct lb_stats *lb_stats_get(void);
/* Folds new event-log lines into lb-stats.json, unless another process folded
 * less than max_age_ms ago. budget bounds the bytes read. Returns STORE_OK,
 * STORE_UNCHANGED or a STORE_* error. */
int lb_stats_fold(int64_t max_age_ms, size_t budget);
const struct lb_server_stats *lb_stats_find(const struct lb_stats *s, const char *id);
/* The EWMA for the model if known, else the server's overall one, else 0. */
double lb_stats_ewma(const struct lb_server_stats *st, const char *model);
void lb_stats_free(struct lb_stats *s);

/* ---- weights and candidates ---- */

/* A server's effective weight from its configuration, health, status_since and
 * stats (may be NULL); ref is the fleet's median EWMA (0 = none). */
void lb_server_weight(const struct server *s, const struct lb_config *cfg,
		      const struct lb_server_stats *st, double ref, int64_t now,
		      struct lb_weight *w);
/* The fleet's median of the servers' overall EWMAs. */
double lb_fleet_ewma(const struct server *v, size_t n, const struct lb_stats *stats);

/* Fills c[i] from v[i] for a task of this model: load, capacity, effective weight
 * and factor, EWMA. Loads (and, when stale, folds) the stats unless the algorithm
 * does not use them (round-robin). current_weight is left 0. */
void lb_candidates_fill(struct lb_candidate *c, const struct server *v, size_t n,
			const struct lb_config *cfg, const char *model, int64_t now);

/* lb_pick() with the shared cursors: round-robin and weighted update lb-state.json
 * under its lock (one exact rotation for every process); the other algorithms and
 * affinity picks need no shared state and take no lock. If the state cannot be
 * locked or written, falls back to a process-local counter (round-robin) or a
 * weighted random pick (weighted) rather than failing the dispatch. */
int lb_select(enum lb_algorithm alg, struct lb_candidate *c, size_t n, const bool *excluded,
	      const struct lb_task *t, uint64_t rnd);

/* ---- distribution (getLoadDistribution) ---- */

struct lb_share {
	char id[65];
	long count;
};

struct lb_distribution {
	struct lb_share *v; /* sorted by id */
	size_t n;
	long total;
	int64_t from, to;   /* the window actually covered */
	bool partial;	    /* a log file was larger than LB_DIST_MAX_BYTES: only its tail */
};

/* Counts "dispatched" events per server in [now - window_ms, now]. */
void lb_distribution(int64_t now, int64_t window_ms, struct lb_distribution *d);
long lb_distribution_count(const struct lb_distribution *d, const char *id);
void lb_distribution_free(struct lb_distribution *d);

/* ---- rebalance ---- */

struct lb_rebalance_item {
	char id[65];
	int weight;			/* configured */
	int eff_before, eff_after;	/* effective weights (x LB_WEIGHT_SCALE); before 0 = never */
	int load_before, load_after;
	struct lb_weight parts;
};

struct lb_rebalance {
	struct lb_rebalance_item *v; /* sorted by id */
	size_t n;
	int loads_corrected;	     /* servers whose currentLoad the ledger rebuild fixed */
	int weights_changed;
	int64_t took_ms;
	int64_t started_mono;
};

/* A rebalance in two halves around the ledger rebuild, which is the scheduler's
 * (sched/rebalance.h joins them). begin folds the whole unread event log (bounded)
 * and takes the registry snapshot "before" (the caller frees it through finish);
 * the caller sets r->loads_corrected; finish takes the snapshot after, recomputes
 * every effective weight and stores them in lb-stats.json (dropping stats of
 * unregistered servers). finish frees before and returns STORE_OK or a STORE_*
 * error of the stats write. */
void lb_rebalance_begin(struct lb_rebalance *r, struct server_list *before);
int lb_rebalance_finish(struct lb_rebalance *r, struct server_list *before);
void lb_rebalance_free(struct lb_rebalance *r);

/* Every registered server, sorted by id (at most 4096); the caller frees with
 * lb_servers_free. Returns how many. */
size_t lb_servers_load(struct server **out);
void lb_servers_free(struct server *v, size_t n);

/* Drops every per-process cache (tests). */
void lb_state_reset_cache(void);

#endif
