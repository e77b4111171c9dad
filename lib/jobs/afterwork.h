/* afterwork: what a worker (jobs/worker.h) does for the requests, found in the
 * tree rather than handed over in memory: the attempts owed a send (sending/), the
 * backends owed a cancel (cancelling/), a drain of the queue when one was asked for
 * (run/drain-wanted), and the periodic work that is overdue (one bounded step of
 * the sweep, health checks and rollup, each under its run lock: the way wp-cron
 * rides on page views, so a host whose cron runs rarely still times out tasks,
 * checks servers and folds statistics). */
#ifndef TASKGATE_AFTERWORK_H
#define TASKGATE_AFTERWORK_H

#include <stdbool.h>

#include "jobs/worker.h"

/* The rounds and the pending check a worker runs. */
extern const struct worker_work afterwork;

/* Whether periodic work is overdue (a request process checks it after answering,
 * reading three stamps, and wakes a worker when it is). */
bool afterwork_periodic_due(void);

#endif
