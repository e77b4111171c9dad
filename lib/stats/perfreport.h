/* perfreport: the performance report (GET /api/v2/stats/performance): throughput,
 * latency, the busiest and slowest servers, errors by outcome, server and model, the
 * live queue and servers, the findings (stats/findings.h) and the alerts firing, over
 * the last hours against the window before. */
#ifndef TASKGATE_PERFREPORT_H
#define TASKGATE_PERFREPORT_H

#include <stdint.h>

#include "base/json.h"

/* The whole report over [now - hours, now] into g. */
void perf_report(struct jgen *g, int hours, int64_t now);

#endif
