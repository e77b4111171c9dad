/* health (job): the active health checks of the ServerInstances. One bounded run
 * chooses the servers that are due (most overdue first), probes them all at once
 * through net/http_client's batch (so a run with many hanging servers takes about
 * one timeout), judges each answer with model/health's rules and records it with
 * sched/server_health. Run by cron/taskgate-health and piggy-backed on requests.
 *
 * A probe is the health half of the backends' protocols: GET <health endpoint>, no
 * body, on a fresh connection (a check must see the server as a new client would),
 * with health's own timeouts (timeoutMs, connectTimeoutMs); the first
 * HEALTH_BODY_MAX bytes of the answer are kept and the rest read and dropped, so a
 * long answer (Cog repeats its setup logs in every one) is judged like a short one;
 * what the answer means per protocol is health_classify's (model/health.h). Each
 * check's outcome is recorded as the server's lastCheck. */
#ifndef TASKGATE_HEALTH_JOB_H
#define TASKGATE_HEALTH_JOB_H

#include <stdbool.h>

#include "base/buf.h"
#include "model/health.h"
#include "sched/server_health.h"

#define HEALTH_MAX_PARALLEL 256
/* A check due within this much is done now rather than one cron tick later: the
 * ticks of a --every loop drift by the few milliseconds a run takes. */
#define HEALTH_DUE_SLACK_MS 1000

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
	int starting; /* in their setup: neither up nor down */
	int checked; /* probed in this run */
	int changed; /* status changes in this run */
	int errors;  /* servers that could not be read or updated */
	long long elapsed_ms;
};

/* One bounded run: probes the due servers concurrently, then updates each with
 * server_update. The caller has called http_client_init() (or accepts libcurl's
 * lazy, thread-unsafe one), store_init() and config_refresh().
 * Returns 0 (servers that cannot be read or updated are logged and counted in
 * sum->errors; whether the state tree is usable at all is the caller's check). */
int health_run(const struct health_opts *o, struct health_summary *sum);

/* The one probe of a server being registered (not stored yet): the same request
 * and judgement as a run's, with health.registrationTimeoutMs as its timeout, so
 * the registration answer waits at most that long. o->why points into why. */
void health_probe_one(const struct server *s, const struct health_cfg *c,
		      struct health_outcome *o, char *why, size_t whylen);

/* Nagios: 0 OK, 1 WARNING (something degraded or down, or a server file that could
 * not be read or updated, something up; or every server starting), 2 CRITICAL
 * (servers exist, none is up, and not all of them are starting).
 * No servers at all is OK. */
int health_summary_exit(const struct health_summary *s);
/* "TASKGATE HEALTH OK - 3 up, 0 degraded, 0 down | up=3 degraded=0 down=0" */
void health_summary_line(const struct health_summary *s, struct buf *out);

#endif
