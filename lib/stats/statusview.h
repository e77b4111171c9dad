/* statusview: what the operator's status page (GET /status) shows, gathered in one
 * place: the live figures, the last hour, the last 24 hours one by one with the
 * series the charts draw, the findings of the last hour and the alerts. The page
 * itself (HTML and SVG) is cgi-bin/api_status.c's. */
#ifndef TASKGATE_STATUSVIEW_H
#define TASKGATE_STATUSVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "stats/alerts.h"
#include "stats/findings.h"
#include "stats/stats.h"
#include "stats/statsq.h"

#define STATUS_HOURS 24

struct status_view {
	int64_t now;
	struct statsq_live live;
	struct stats_agg hour;		      /* the last hour */
	int64_t first;			      /* start of the first of the hours */
	struct stats_agg hours[STATUS_HOURS]; /* oldest first, the current one last */
	double completed[STATUS_HOURS];	      /* tasks completed per hour */
	double failed[STATUS_HOURS];	      /* failed tasks and timed-out attempts */
	double p95[STATUS_HOURS];	      /* p95 processing time (ms) */
	struct finding *findings;	      /* of the last hour */
	size_t nfindings;
	struct alerts_state alerts;
	size_t firing;
};

void status_view_load(struct status_view *v, int64_t now);
void status_view_free(struct status_view *v);

#endif
