/* alerts: rules from config.json, evaluated by the rollup program (and its
 * piggy-backed runs); state in stats/alerts.json; each state change POSTed once to
 * the optional "alertWebhook".
 *
 * config.json:
 *   "alerts": [
 *     {"name": "failures", "kind": "failure_rate", "threshold": 20, "windowMinutes": 15,
 *      "model": "sdxl", "minTasks": 5},
 *     {"name": "gpu-down", "kind": "server_offline", "windowMinutes": 5, "server": "gpu-1"},
 *     {"name": "backlog", "kind": "queue_depth", "threshold": 100},
 *     {"name": "stuck", "kind": "oldest_queued", "threshold": 300},
 *     {"name": "sdxl-dead", "kind": "no_healthy_server", "model": "sdxl"},
 *     {"name": "nobody", "kind": "unservable_tasks", "model": "sdxl"}
 *   ],
 *   "alertWebhook": "https://hooks.example/taskgate", "alertWebhookToken": "..." (optional)
 *
 * Kinds (threshold default in brackets):
 *   failure_rate       failed / (completed + failed) of the tasks that finished in the
 *                      last windowMinutes [15], in percent, above threshold [20], once
 *                      at least minTasks [5] finished; "model" narrows it to a model;
 *                      "server" uses that server's attempts (errors / processed);
 *   server_offline     a server (every one, or "server") offline — not maintenance —
 *                      for windowMinutes [0]; one alert per server (its "subject");
 *   queue_depth        queued tasks above threshold [100];
 *   oldest_queued      the longest-waiting due task waited more than threshold [300]
 *                      seconds;
 *   no_healthy_server  no routable server (online or degraded, not in maintenance) for
 *                      "model" (or at all);
 *   unservable_tasks   more than threshold [0] queued tasks (of "model", or any) want
 *                      what no registered server offers (model/unservable.h, as the
 *                      sweep last found); one alert per wish, its text the subject
 *                      ("group 'cpu' that no server has"). Built in, as
 *                      "unservable-tasks", unless the config has a rule of the kind.
 * For the last three (and server_offline), windowMinutes is how long the condition
 * must hold before the alert fires (state "pending" until then).
 *
 * States: pending -> firing -> resolved. A resolved alert stays listed for a day.
 * Notifications: one POST per change to firing or resolved, retried on later runs
 * until delivered (at most ALERTS_NOTIFY_TRIES times); alerts.json is written only
 * when something changed, so an idle run leaves the stats tree byte for byte alone. */
#ifndef TASKGATE_ALERTS_H
#define TASKGATE_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/json.h"

#define ALERTS_MAX_RULES	100
#define ALERTS_HISTORY		200
#define ALERTS_NOTIFY_TRIES	24
#define ALERTS_KEEP_RESOLVED_MS (24LL * 3600 * 1000)

enum alert_kind {
	AK_FAILURE_RATE = 0,
	AK_SERVER_OFFLINE,
	AK_QUEUE_DEPTH,
	AK_OLDEST_QUEUED,
	AK_NO_HEALTHY_SERVER,
	AK_UNSERVABLE_TASKS,
	AK_COUNT
};
extern const char *const alert_kind_name[AK_COUNT];

struct alert_rule {
	char name[65];
	enum alert_kind kind;
	double threshold;
	int window_min;
	int min_tasks;
	char model[129]; /* "" any */
	char server[65]; /* "" any */
};

/* Validates config.json's "alerts" array (NULL: none). Bad rules are skipped and
 * described in errors (one line each). Returns how many rules are in *out (caller
 * frees). */
size_t alerts_rules_parse(yajl_val arr, struct alert_rule **out, struct buf *errors);
/* The rules in force: config.json's, then the built-in ones it does not replace. */
#define ALERTS_BUILTIN_UNSERVABLE "unservable-tasks"
size_t alerts_rules_load(struct alert_rule **out, struct buf *errors);

enum alert_state { AS_NONE = 0, AS_PENDING, AS_FIRING, AS_RESOLVED };
extern const char *const alert_state_name[4];

struct alert_inst {
	char name[65];
	enum alert_kind kind;
	char subject[130]; /* server id or model the alert is about, "" for none */
	enum alert_state state;
	int64_t since; /* when the condition began (pending or firing) */
	int64_t fired_at, resolved_at;
	double value, threshold; /* at the last change */
	char message[320];
	enum alert_state notified; /* last state delivered to the webhook (AS_NONE: none) */
	int tries;		   /* failed deliveries of the current state */
};

struct alert_change {
	int64_t at;
	char name[65];
	char subject[130];
	enum alert_state state;
	double value;
	char message[320];
};

struct alerts_state {
	struct alert_inst *v; /* sorted by (name, subject) */
	size_t n, cap;
	struct alert_change *hist; /* oldest first, at most ALERTS_HISTORY */
	size_t nhist;
};

void alerts_state_free(struct alerts_state *s);
int alerts_state_load(struct alerts_state *s); /* STORE_OK, STORE_NOENT (empty), ... */
void alerts_state_to_json(const struct alerts_state *s, struct jgen *g);
/* How many of s's alerts are in state st. */
size_t alerts_count(const struct alerts_state *s, enum alert_state st);

/* The one encoder of an alert and of a recorded change: the stored form (alerts.json:
 * times in ms, the notified state and the tries) or the public one (GET /api/v2/alerts:
 * RFC 3339 times, notified as whether the current state was delivered). */
enum alert_json { ALERT_JSON_STORED, ALERT_JSON_PUBLIC };
void alerts_jg_alert(struct jgen *g, const struct alert_inst *a, enum alert_json form);
void alerts_jg_change(struct jgen *g, const struct alert_change *c, enum alert_json form);

/* What one rule sees for one subject now. */
struct alert_obs {
	char subject[130];
	bool active;
	double value;
	int64_t since; /* when the condition began if known, else 0 */
	char message[320];
};

struct alerts_result;
/* Applies one rule's observations (subjects the rule no longer reports count as
 * inactive). Pure. Returns how many alerts changed (pending included); fired and
 * resolved ones are also counted in r (may be NULL). */
int alerts_apply(struct alerts_state *s, const struct alert_rule *rule, const struct alert_obs *obs,
		 size_t nobs, int64_t now, struct alerts_result *r);
/* Resolves alerts of rules that no longer exist and forgets resolved ones older
 * than ALERTS_KEEP_RESOLVED_MS. Pure. Returns how many changed. */
int alerts_retire(struct alerts_state *s, const struct alert_rule *rules, size_t nrules,
		  int64_t now, struct alerts_result *r);

struct alerts_opts {
	int64_t now;	 /* 0: the clock */
	int max_notify;	 /* webhook POSTs per run */
	long timeout_ms; /* per POST */
};
#define ALERTS_OPTS_DEFAULT                                                                        \
	{                                                                                          \
		0, 10, 5000                                                                        \
	}

struct alerts_result {
	int rules, bad_rules;
	int firing, pending;
	int fired, resolved; /* changes in this run */
	int notified, notify_failed;
	int errors;
};

/* Evaluates every rule, records changes, notifies. 0, or -1 when alerts.json could
 * not be written. */
int alerts_run(const struct alerts_opts *o, struct alerts_result *r);

#endif
