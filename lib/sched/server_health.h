/* server_health: health outcomes recorded against the state tree. Both the
 * dispatcher (a real dispatch's outcome, passively) and the probing job (jobs/health,
 * actively) come here, so both feed the one counter of model/health the same way.
 *
 * Every change goes through server_update (one server's lock at a time). A status
 * change is logged ("server X online -> offline (why)"), appended to the stats
 * events (events_server) and passed to the change hook, after that lock is
 * released, so the hook may take task locks. */
#ifndef TASKGATE_SERVER_HEALTH_H
#define TASKGATE_SERVER_HEALTH_H

#include <stdbool.h>

#include "model/health.h"
#include "model/server.h"

/* Defaults overlaid with config.json's "health" section as last loaded by
 * config_refresh() (the caller refreshes), and the load balancer's
 * healthCheckInterval once an operator has set it; values are clamped to sane
 * ranges. */
void health_cfg_load(struct health_cfg *c);

/* Called after a server's status changed (and its lock was released). The tasks code
 * uses it to drain queued work when a server comes back. */
typedef void health_change_fn(const char *server_id, enum server_health from, enum server_health to,
			      void *arg);
/* The process-wide hook, used by health_record_passive() and by health_record_probe()
 * when the caller names none. NULL clears. */
void health_set_change_hook(health_change_fn *fn, void *arg);

/* Feeds a real dispatch outcome into the same counter (a timeout, a refused
 * connection or a 5xx is a failure; capacity answers such as Cog's 409 are not, and
 * must not be reported). elapsed_ms is informational: a dispatch time is not a
 * health response time and does not enter the EWMA. Returns a STORE_* code. */
int health_record_passive(const char *server_id, bool success, long long elapsed_ms);

/* Records an active probe's outcome o (why: its reason, for the log) with
 * health_apply under the server's lock, then reports a status change to fn (with
 * fn_arg), or to the process-wide hook when fn is NULL. Returns a STORE_* code
 * (STORE_NOENT: unregistered meanwhile); on STORE_OK, *after holds the server as
 * written (the caller frees it with server_free) and *changed says whether its
 * status changed. */
int health_record_probe(const char *server_id, const struct health_cfg *c,
			const struct health_outcome *o, const char *why, health_change_fn *fn,
			void *fn_arg, struct server *after, bool *changed);

#endif
