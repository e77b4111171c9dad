/* health: active and passive health of the ServerInstances (HAProxy's model).
 *
 * The counter. Every server has one counter in [0, top], top = rise + fall - 1; the
 * server is up iff counter >= rise. Exactly HAProxy's rules (src/check.c):
 *   pass:    below top, counter += 1; once it reaches rise it jumps to top;
 *   failure: above 0, counter -= 1; once it drops below rise it falls to 0.
 * So an up server goes down after `fall` failures in a row (with defaults 2/3: online,
 * online, degraded, offline) and a down server comes up after `rise` passes in a row;
 * a failure while coming up starts the climb again. A stored counter of -1 ("not
 * initialised", a fresh registration) counts as top: a new server is up.
 *
 * Status, derived after every outcome (maintenance is never touched here):
 *   offline   counter < rise;
 *   degraded  up, but one more failure takes it down (counter == rise < top, i.e.
 *             fall-1 failures in a row) or the response-time EWMA is above degradedMs;
 *   online    otherwise.
 *
 * Verdicts by protocol:
 *   cog        GET <health> must answer 200 with a JSON object whose "status" is
 *              READY (pass) or BUSY (pass: up but every slot taken, which is capacity,
 *              not ill health). STARTING is a failed check for the counter (the model
 *              cannot take work yet, Cog answers 503 to predictions) but it is not an
 *              error: consecutiveFailures is left as it is. Everything else fails:
 *              SETUP_FAILED, DEFUNCT, UNHEALTHY, unknown statuses, non-200, bad JSON,
 *              no answer.
 *   http-json  any 2xx passes, everything else fails.
 * Probes: connect and total timeouts, the answer capped at HEALTH_BODY_MAX (a longer one
 * is aborted and fails), no redirects, http and https only, no signals.
 *
 * Intervals (when the server is next due, stored as nextCheckAt):
 *   counter == top (stable up): inter, lengthened x1.5 per stable check up to maxInter
 *     (the seed's adaptive frequency); any failure resets it;
 *   0 < counter < top (changing): fastinter;
 *   counter == 0 (down): downinter.
 * The previous interval is not stored separately: it is nextCheckAt - lastHealthCheck.
 *
 * healthScore 0-100: an exponentially weighted (alpha 0.3) ratio of good checks, where
 * a pass counts 100 when it answered within degradedMs and down to 50 as it gets
 * slower (a slow pass is worth half), and a failure or STARTING counts 0.
 * responseTimeEwmaMs: alpha 0.3 over checks that got an HTTP answer (timeouts and
 * refused connections have no response time; they show in the score instead).
 *
 * Settings come from config.json, section "health" (seconds unless named ...Ms):
 *   rise 2, fall 3, inter 10, fastinter 2, downinter 30, maxInter 60,
 *   timeoutMs 2000, connectTimeoutMs 1000, degradedMs 1000.
 *
 * A status change is logged ("server X online -> offline (why)"), appended to the
 * stats events (events_server) and passed to the change hook.
 *
 * Locking: every change goes through server_update (one server's lock at a time);
 * the change hook runs after that lock is released, so it may take task locks.
 * Code elsewhere that forces a server offline should set checkCounter to 0 as well
 * (health_counter_normalize copes if it does not: the counter follows the status). */
#ifndef TASKGATE_HEALTH_H
#define TASKGATE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/server.h"

#define HEALTH_BODY_MAX	    (16 * 1024)
#define HEALTH_MAX_PARALLEL 256
/* A check due within this much is done now rather than one cron tick later: the
 * ticks of a --every loop drift by the few milliseconds a run takes. */
#define HEALTH_DUE_SLACK_MS 1000

struct health_cfg {
	int rise, fall;
	int64_t inter_ms, fastinter_ms, downinter_ms, max_inter_ms;
	long timeout_ms, connect_timeout_ms;
	long degraded_ms;
};

void health_cfg_defaults(struct health_cfg *c);
/* Defaults overlaid with config.json's "health" section as last loaded by
 * config_refresh() (the caller refreshes); values are clamped to sane ranges. */
void health_cfg_load(struct health_cfg *c);

/* ---- pure rules (no I/O; unit-tested exhaustively) ---- */

int health_counter_top(int rise, int fall);
bool health_counter_up(int counter, int rise);
/* The stored counter made valid: -1 (or anything outside [0, top]) becomes top if the
 * stored status says up and 0 if it says offline; a counter that disagrees with the
 * stored status (rise/fall changed, or other code forced the status) follows the
 * status the same way. */
int health_counter_normalize(int stored, bool stored_up, int rise, int fall);
/* One outcome applied to a valid counter. */
int health_counter_step(int counter, bool pass, int rise, int fall);

enum health_verdict {
	HV_PASS,     /* up */
	HV_BUSY,     /* up, slots full (cog BUSY) */
	HV_STARTING, /* not routable yet, not an error (cog STARTING) */
	HV_FAIL,
};
const char *health_verdict_name(enum health_verdict v);
/* Judges an HTTP answer (status, body). why receives a short reason on failure
 * (a static string or a copy into whybuf). */
enum health_verdict health_classify(enum server_protocol p, long http_status, const char *body,
				    size_t len, char *why, size_t whylen);

enum server_health health_status_of(const struct health_cfg *c, int counter, double ewma_ms);
/* Milliseconds until the next check after a check moved the counter from before to
 * after; prev_ms is the last planned interval (0 = unknown). */
int64_t health_interval_ms(const struct health_cfg *c, int before, int after, int64_t prev_ms);
int health_score_next(int old, enum health_verdict v, double elapsed_ms, long degraded_ms);
double health_ewma_next(double old, double sample_ms);

/* One outcome, active or passive. */
struct health_outcome {
	enum health_verdict verdict;
	bool answered;	   /* an HTTP answer arrived: elapsed_ms is a response time */
	double elapsed_ms; /* how long the check (or dispatch) took */
	int64_t at_ms;	   /* wall clock of the outcome */
	bool passive;	   /* from a real dispatch, not a probe */
};

/* Applies an outcome to a server's health fields: checkCounter, health, statusSince,
 * consecutiveFailures, healthScore, responseTimeEwmaMs, lastSuccessAt, and for active
 * checks lastHealthCheck and nextCheckAt (a passive outcome only ever brings
 * nextCheckAt forward, so an active check confirms a change soon). Never touches
 * maintenance. Returns the status before the outcome. */
enum server_health health_apply(const struct health_cfg *c, struct server *s,
				const struct health_outcome *o);

/* ---- runs against the state tree ---- */

/* Called after a server's status changed (and its lock was released). The tasks code
 * uses it to drain queued work when a server comes back. */
typedef void health_change_fn(const char *server_id, enum server_health from, enum server_health to,
			      void *arg);
/* The process-wide hook, used by health_record_passive() and by health_run() when
 * its options name none. NULL clears. */
void health_set_change_hook(health_change_fn *fn, void *arg);

struct health_opts {
	bool all;		      /* check every server, not only those due */
	int max_checks;		      /* 0: no limit; else the most overdue first (piggy-backing) */
	int max_parallel;	      /* probes in flight; 0: HEALTH_MAX_PARALLEL */
	const struct health_cfg *cfg; /* NULL: health_cfg_load() */
	health_change_fn *on_change;  /* NULL: the process-wide hook (may be none) */
	void *on_change_arg;
};

/* Counts by health after the run (maintenance servers are counted by their health,
 * and in maintenance as well). */
struct health_summary {
	int servers, up, degraded, down, maintenance;
	int checked; /* probed in this run */
	int changed; /* status changes in this run */
	int errors;  /* servers that could not be read or updated */
	long long elapsed_ms;
};

/* One bounded run: probes the due servers concurrently (libcurl multi), then updates
 * each with server_update. The caller has called curl_global_init() (or accepts
 * libcurl's lazy, thread-unsafe one), store_init() and config_refresh().
 * Returns 0 (servers that cannot be read or updated are logged and counted in
 * sum->errors; whether the state tree is usable at all is the caller's check). */
int health_run(const struct health_opts *o, struct health_summary *sum);

/* Feeds a real dispatch outcome into the same counter (a timeout, a refused
 * connection or a 5xx is a failure; capacity answers such as Cog's 409 are not, and
 * must not be reported). elapsed_ms is informational: a dispatch time is not a
 * health response time and does not enter the EWMA. Returns a STORE_* code. */
int health_record_passive(const char *server_id, bool success, long long elapsed_ms);

/* Nagios: 0 OK, 1 WARNING (something degraded or down, or a server file that could
 * not be read or updated, something up), 2 CRITICAL (servers exist and none is up).
 * No servers at all is OK. */
int health_summary_exit(const struct health_summary *s);
/* "TASKGATE HEALTH OK - 3 up, 0 degraded, 0 down | up=3 degraded=0 down=0" */
void health_summary_line(const struct health_summary *s, struct buf *out);

#endif
