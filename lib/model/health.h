/* health (model): the rules of a ServerInstance's health, HAProxy's model. Pure
 * functions over numbers and a struct server: no I/O, no clock (outcomes carry
 * their time), so they are unit-tested exhaustively. Recording an outcome against
 * the state tree is sched/server_health; the probing job is jobs/health.
 *
 * The counter. Every server has one counter in [0, top], top = rise + fall - 1; the
 * server is up iff counter >= rise. Exactly HAProxy's rules (src/check.c):
 *   pass:    below top, counter += 1; once it reaches rise it jumps to top;
 *   failure: above 0, counter -= 1; once it drops below rise it falls to 0.
 * So an up server goes down after `fall` failures in a row (with defaults 2/3: online,
 * online, degraded, offline) and a down server comes up after `rise` passes in a row;
 * a failure while coming up starts the climb again. A stored counter of -1 ("not
 * initialised", a document older than the field) counts as top.
 *
 * Status, derived after every outcome (maintenance is never touched here):
 *   starting  not through a good check since registration, or Cog answered
 *             STARTING (a restart, a setup under way): not routable, not failing;
 *   offline   counter < rise;
 *   degraded  up, but one more failure takes it down (counter == rise < top, i.e.
 *             fall-1 failures in a row) or the response-time EWMA is above degradedMs;
 *   online    otherwise.
 *
 * Starting. A registration starts a setup spell (setupSince); so does the first
 * STARTING answer after a pass. While the spell is younger than setupGraceSeconds
 * a STARTING answer leaves the counter at 0 and consecutiveFailures and
 * healthScore as they are: Cog setups of several minutes are normal. Past the
 * grace, STARTING is a failed check like any other (a setup that never ends). The
 * first pass (READY, BUSY) of a starting server takes the counter to the top at
 * once, without waiting for `rise` passes: nothing was wrong with it, it was not
 * ready yet. A real failure (no answer, SETUP_FAILED, ...) counts as always; after
 * `fall` of them in a row a starting server is offline. Starting servers are
 * checked every fastinter, so a finished setup is seen within seconds.
 *
 * Verdicts by protocol (health_classify: the health half of the protocols, kept
 * with the rules it feeds; sched/backend speaks the dispatch half):
 *   cog        GET <health> must answer 200 with a JSON object whose "status" is
 *              READY (pass) or BUSY (pass: up but every slot taken, which is capacity,
 *              not ill health). STARTING makes the server starting (above): the model
 *              cannot take work yet, Cog answers 503 to predictions, but it is not an
 *              error within the setup grace. Everything else fails:
 *              SETUP_FAILED, DEFUNCT, UNHEALTHY, unknown statuses, non-200, bad JSON,
 *              no answer.
 *   http-json  any 2xx passes, everything else fails.
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
 * Settings (struct health_cfg; sched/server_health's health_cfg_load reads them from
 * config.json, section "health", seconds unless named ...Ms):
 *   rise 2, fall 3, inter 10, fastinter 2, downinter 30, maxInter 60,
 *   timeoutMs 2000, connectTimeoutMs 1000, degradedMs 1000, setupGraceSeconds 600,
 *   registrationTimeoutMs 2000 (the one probe a registration makes before it
 *   answers, so it stays short).
 *
 * Code elsewhere that forces a server offline should set checkCounter to 0 as well
 * (health_counter_normalize copes if it does not: the counter follows the status). */
#ifndef TASKGATE_MODEL_HEALTH_H
#define TASKGATE_MODEL_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/server.h"

/* The most of a health answer we keep: the rest of a longer one is read and
 * dropped. Cog's answer starts with its status and goes on with the setup logs,
 * which can be any length. */
#define HEALTH_BODY_MAX (16 * 1024)

struct health_cfg {
	int rise, fall;
	int64_t inter_ms, fastinter_ms, downinter_ms, max_inter_ms;
	long timeout_ms, connect_timeout_ms;
	long degraded_ms;
	int64_t setup_grace_ms;	  /* STARTING is no failure for this long */
	long register_timeout_ms; /* the registration probe's total timeout */
};

void health_cfg_defaults(struct health_cfg *c);

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
	long http_status;  /* a probe's HTTP status, 0 when none arrived */
	const char *why;   /* a probe's reason on failure (not owned), or NULL */
};

/* Applies an outcome to a server's health fields: checkCounter, health, statusSince,
 * setupSince, consecutiveFailures, healthScore, responseTimeEwmaMs, lastSuccessAt, and for active
 * checks lastHealthCheck, lastCheck and nextCheckAt (a passive outcome only ever brings
 * nextCheckAt forward, so an active check confirms a change soon). Never touches
 * maintenance. Returns the status before the outcome. */
enum server_health health_apply(const struct health_cfg *c, struct server *s,
				const struct health_outcome *o);

#endif
