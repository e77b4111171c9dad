/* stats: the TaskInstanceStats arithmetic — event lines folded into aggregates.
 * Pure: no I/O, no clock (lib/rollup.c and lib/statsq.c do the reading and writing).
 *
 * An aggregate (struct stats_agg) holds one group for everything, one per model and
 * one per server. A group counts events by type, keeps two histograms (run time of
 * the attempts that ended, queue wait at dispatch), the last time it was active,
 * and, for servers, the time spent in each status.
 *
 * What is counted where (the definitions every route reports):
 *   created, dispatched, completed, failed, timed_out, cancelled, retried: events of
 *     that type. "failed" is a task that ended in FAILED (no more attempts);
 *     "timed_out" and "retried" are attempts that ended badly and were re-queued
 *     ("retried" without a server is a client's POST .../retry);
 *   run histogram: every ended attempt that names a server (completed, failed,
 *     timed_out, retried, cancelled while running), its "ms" — except attempts whose
 *     outcome is "busy" (the backend had no slot: it never ran the task);
 *   wait histogram: "waitMs" of dispatched events (time since the task was queued
 *     or became due again);
 *   server groups count only events naming that server; processed = ended
 *     attempts (as for the run histogram); errors = processed - completed -
 *     cancelled.
 * Time per status: server_status events (health: online, degraded, offline) and
 * server_maintenance events (on/off) form each server's timeline; the effective
 * status is maintenance while the switch is on, else the health. An hour's status
 * time needs the state at the hour's start: the end state of the hour before
 * (struct stats_state, carried in each hourly document), else the "from" of the
 * server's first event in the hour. */
#ifndef TASKGATE_STATS_H
#define TASKGATE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hist.h"
#include "base/json.h"

#define STATS_NAME_MAX 128 /* models are up to 128 bytes, server ids 64 */

enum stats_type {
	ST_CREATED = 0,
	ST_DISPATCHED,
	ST_COMPLETED,
	ST_FAILED,
	ST_TIMED_OUT,
	ST_CANCELLED,
	ST_RETRIED,
	ST_TYPES
};
/* The event log's names ("timed_out") and the JSON keys of our documents ("timedOut"). */
extern const char *const stats_type_event[ST_TYPES];
extern const char *const stats_type_key[ST_TYPES];

/* An attempt's outcome, when the event names it ("outcome"). */
enum stats_outcome {
	OC_NONE = -1,
	OC_SUCCEEDED = 0,
	OC_FAILED,
	OC_REJECTED,
	OC_ERROR,
	OC_TIMEOUT,
	OC_BUSY,
	OC_CANCELLED,
	OC_COUNT
};
extern const char *const stats_outcome_name[OC_COUNT];

/* Server statuses; the first three match enum server_health, starting (added
 * later) comes after maintenance so stored figures keep their places. */
enum stats_status { SS_ONLINE = 0, SS_DEGRADED, SS_OFFLINE, SS_MAINTENANCE, SS_STARTING, SS_COUNT };
extern const char *const stats_status_name[SS_COUNT];
/* "online", "degraded", "offline", "starting" -> SS_*; anything else -1. */
int stats_health_from_name(const char *s);

/* One parsed line of the event log. */
enum stats_ev_kind { EV_TASK = 0, EV_SERVER_STATUS, EV_SERVER_MAINT };
struct stats_event {
	enum stats_ev_kind kind;
	int64_t t;
	enum stats_type type;		 /* EV_TASK */
	char model[STATS_NAME_MAX + 1];	 /* "" when absent */
	char server[STATS_NAME_MAX + 1]; /* "" when absent */
	int64_t ms;			 /* run time, -1 when absent */
	int64_t wait_ms;		 /* queue wait, -1 when absent */
	enum stats_outcome outcome;
	int from, to; /* EV_SERVER_STATUS: SS_ONLINE..SS_OFFLINE, -1 unknown */
	bool on;      /* EV_SERVER_MAINT */
};
/* 0 parsed, 1 a well-formed line of a kind we do not count, -1 not an event line. */
int stats_parse_line(const char *line, size_t len, struct stats_event *ev);

struct stats_transition {
	int64_t t;
	int8_t maint;	 /* 1: maintenance switch event, 0: health event */
	int8_t from, to; /* health: SS_* or -1; maint: 0/1 */
};

struct stats_group {
	char name[STATS_NAME_MAX + 1];
	uint64_t n[ST_TYPES];
	uint64_t outcome[OC_COUNT];
	struct hist run, wait;
	int64_t last_active; /* 0: never */
	int64_t status_ms[SS_COUNT];
	uint64_t changes; /* status transitions seen */
	/* Raw timeline (only while folding raw lines; never serialised). */
	struct stats_transition *tl;
	size_t ntl, captl;
};

struct stats_agg {
	struct stats_group all;
	struct stats_group *models, *servers; /* sorted by name */
	size_t nmodels, nservers, capm, caps;
	uint64_t lines, bad; /* lines read, lines that were not events */
};

void stats_agg_init(struct stats_agg *a);
void stats_agg_free(struct stats_agg *a);
/* Finds or (create true) adds the named group; NULL when absent or the name is too long. */
struct stats_group *stats_model(struct stats_agg *a, const char *name, bool create);
struct stats_group *stats_server(struct stats_agg *a, const char *name, bool create);
const struct stats_group *stats_model_c(const struct stats_agg *a, const char *name);
const struct stats_group *stats_server_c(const struct stats_agg *a, const char *name);

/* Counts ev into a when from <= ev->t < to (counting is by event time); status
 * events go to the timeline whatever their time (needed for the state at `from`). */
void stats_fold_event(struct stats_agg *a, const struct stats_event *ev, int64_t from, int64_t to);
/* Parses and folds every complete line of text[0..len); returns the offset after the
 * last complete line ('\n'). A final fragment without '\n' is left unread unless
 * final is true (then it counts as a bad line). */
size_t stats_fold_text(struct stats_agg *a, const char *text, size_t len, bool final, int64_t from,
		       int64_t to);

/* Adds counts, histograms, last activity, status time and changes (not timelines). */
void stats_group_merge(struct stats_group *into, const struct stats_group *from);
void stats_agg_merge(struct stats_agg *into, const struct stats_agg *from);
bool stats_agg_equal(const struct stats_agg *x, const struct stats_agg *y);

/* Derived figures of a group. */
uint64_t stats_group_processed(const struct stats_group *g);
uint64_t stats_group_errors(const struct stats_group *g);

/* ---- per-server state across hours ---- */

struct stats_sstate {
	char id[STATS_NAME_MAX + 1];
	int8_t health; /* SS_ONLINE..SS_OFFLINE, -1 unknown */
	int8_t maint;  /* 0/1, -1 unknown */
};
struct stats_state {
	struct stats_sstate *v; /* sorted by id */
	size_t n, cap;
};
void stats_state_free(struct stats_state *s);
void stats_state_copy(struct stats_state *dst, const struct stats_state *src);
struct stats_sstate *stats_state_get(struct stats_state *s, const char *id, bool create);
/* SS_* of an entry, -1 when unknown. */
int stats_sstate_status(const struct stats_sstate *e);

/* Accounts status time over [seg_from, seg_to) into out's server groups, from the
 * start state (may be NULL) and the timelines of raw (may be NULL: no transitions),
 * and leaves in end (may be NULL) the state at seg_to. Servers of start without
 * transitions spend the whole segment in their state. A transition in [seg_from,
 * seg_to) counts one change. Transitions before seg_from only set the state. */
void stats_account_status(const struct stats_agg *raw, const struct stats_state *start,
			  int64_t seg_from, int64_t seg_to, struct stats_agg *out,
			  struct stats_state *end);

/* ---- documents ---- */

/* Writes a's groups as "all", "models", "servers" keys into an open object. With
 * status true, server groups include statusMs and changes. */
void stats_agg_to_json(const struct stats_agg *a, struct jgen *g, bool status);
/* Reads what stats_agg_to_json wrote (from an object holding those keys). */
void stats_agg_from_json(yajl_val doc, struct stats_agg *a);
void stats_state_to_json(const struct stats_state *s, struct jgen *g);
void stats_state_from_json(yajl_val v, struct stats_state *s);

/* Emits v rounded to `decimals` places as a JSON number ("12.5", not
 * "12.5000000000000001"); null when not finite. */
void stats_jg_num(struct jgen *g, double v, int decimals);
void stats_jg_knum(struct jgen *g, const char *key, double v, int decimals);
/* The same text into out (for Prometheus and HTML). */
void stats_fmt_num(char *out, size_t n, double v, int decimals);


#endif
