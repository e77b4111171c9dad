/* alertsreport: the public form of the alerting (GET /api/v2/alerts): the alerts of
 * stats/alerts.json by state, their history newest first, the rules of config.json
 * as parsed and the errors of those that were skipped. */
#ifndef TASKGATE_ALERTSREPORT_H
#define TASKGATE_ALERTSREPORT_H

#include <stdint.h>

#include "base/json.h"

/* The whole answer into g. evaluated_at: when the rules last ran (0: never). */
void alerts_report(struct jgen *g, int64_t evaluated_at);

#endif
