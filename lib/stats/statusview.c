#include "stats/statusview.h"

#include <stdlib.h>
#include <string.h>

#include "base/hour.h"

static void chart_series(struct status_view *v)
{
	for (int i = 0; i < STATUS_HOURS; i++) {
		const struct stats_group *a = &v->hours[i].all;
		v->completed[i] = (double)a->n[ST_COMPLETED];
		v->failed[i] = (double)(a->n[ST_FAILED] + a->n[ST_TIMED_OUT]);
		v->p95[i] = hist_quantile(&a->run, 0.95);
	}
}

void status_view_load(struct status_view *v, int64_t now)
{
	memset(v, 0, sizeof *v);
	v->now = now;
	statsq_live_load(&v->live, now);
	statsq_window(now - HOUR_MS, now + 1, now, &v->hour, NULL);
	v->first = hour_floor(now) - (STATUS_HOURS - 1) * HOUR_MS;
	statsq_hours(v->first, STATUS_HOURS, now, v->hours);
	chart_series(v);
	struct findings_input in = {
	    .win = &v->hour, .live = &v->live, .window_ms = HOUR_MS, .now = now};
	v->nfindings = findings_build(&in, &v->findings);
	alerts_state_load(&v->alerts);
	v->firing = alerts_count(&v->alerts, AS_FIRING);
}

void status_view_free(struct status_view *v)
{
	alerts_state_free(&v->alerts);
	free(v->findings);
	for (int i = 0; i < STATUS_HOURS; i++)
		stats_agg_free(&v->hours[i]);
	stats_agg_free(&v->hour);
	statsq_live_free(&v->live);
}
