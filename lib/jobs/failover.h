/* failover: a server that goes offline gives up its running tasks at once, and they
 * retry elsewhere, instead of each waiting out its deadline (timeoutSeconds, 300 s
 * by default) on a server that is gone: HAProxy's "on-marked-down
 * shutdown-sessions". Every program installs failover_on_health_change as the
 * process-wide health change hook (sched/server_health.h): the request program,
 * its workers and the cron programs (cronjob_open_state), so every change to
 * offline triggers it, whatever noticed it (the health checks' fall, failed
 * dispatches, the sweep's timeouts).
 *
 * Each attempt ends as a dispatch error ("server X went offline: why"), through
 * dispatch_end_attempt like any other end, so the retry follows the task's retry
 * policy and a late result from the old attempt is refused as for any ended
 * attempt. The backend is not told (it is deemed gone; if it is alive after all,
 * its prediction runs out and its answer is refused). Bounded in count and time;
 * whatever is left keeps its deadline, which the sweep enforces. */
#ifndef TASKGATE_FAILOVER_H
#define TASKGATE_FAILOVER_H

#include "model/server.h"

/* Ends the running attempts on server_id (at most FAILOVER_MAX_TASKS, for at most
 * FAILOVER_BUDGET_MS); returns how many it ended. */
int failover_server_down(const char *server_id);

/* The health change hook: a server gone offline gives up its running tasks; one
 * back from offline can take queued work at once (a drain is asked for). */
void failover_on_health_change(const char *server_id, enum server_health from,
			       enum server_health to, void *arg);

#define FAILOVER_MAX_TASKS 1000
#define FAILOVER_BUDGET_MS 5000

#endif
