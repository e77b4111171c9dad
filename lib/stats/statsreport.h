/* statsreport: the answers of the /api/v2/stats routes (tasks, servers, hourly),
 * built from the queries of stats/statsq.h. The routes parse the request, call one
 * of these and send what they wrote. Rates are fractions in [0, 1]; times are ms.
 * The performance report has its own file (stats/perfreport.h). */
#ifndef TASKGATE_STATSREPORT_H
#define TASKGATE_STATSREPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"
#include "stats/statsq.h"

/* A window as the request gave it: [from, to), given when from or to was in the query
 * (else all-time figures; from 0, to now + 1). */
struct stats_window {
	int64_t from, to;
	bool given;
};

/* "window": {allTime, from, to, fromMs, toMs, hoursFromDocuments, ...}. */
void stats_jg_window(struct jgen *g, const struct stats_window *w, const struct statsq_info *info,
		     bool all_time);

/* TaskStats over w, all models or only model (NULL: all). */
void stats_report_tasks(struct jgen *g, const struct stats_window *w, const char *model,
			int64_t now);
/* ServerStats of every server (one NULL) or of one; false when one is neither
 * registered nor in the statistics (g is then untouched). */
bool stats_report_servers(struct jgen *g, const struct stats_window *w, const char *one,
			  int64_t now);
/* The hours hours up to now's, oldest first. */
void stats_report_hourly(struct jgen *g, int hours, int64_t now);

#endif
