#include "stats/statsreport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hour.h"
#include "fs/taskindex.h"
#include "model/server.h"
#include "stats/stats.h"

void stats_jg_window(struct jgen *g, const struct stats_window *w, const struct statsq_info *info,
		     bool all_time)
{
	jg_key(g, "window");
	jg_obj(g);
	jg_kbool(g, "allTime", all_time);
	statsq_jg_time(g, "from", all_time ? info->from : w->from);
	statsq_jg_time(g, "to", w->to);
	jg_kint(g, "fromMs", all_time ? info->from : w->from);
	jg_kint(g, "toMs", w->to);
	jg_kint(g, "hoursFromDocuments", info->hours_doc);
	jg_kint(g, "hoursFromEvents", info->hours_raw);
	jg_kbool(g, "approximate", info->approximate);
	jg_obj_end(g);
}

/* ---- tasks ---- */

static int count_one(const char *id, int attempt, void *arg)
{
	(void)id;
	(void)attempt;
	(*(size_t *)arg)++;
	return 0;
}

/* The TaskStats fields of one group (everything, or one model). */
static void jg_task_group(struct jgen *g, const struct stats_group *gr)
{
	uint64_t ok = gr->n[ST_COMPLETED], bad = gr->n[ST_FAILED];
	jg_kint(g, "totalTasks", (long long)gr->n[ST_CREATED]);
	jg_kint(g, "successfulTasks", (long long)ok);
	jg_kint(g, "failedTasks", (long long)bad);
	jg_kint(g, "cancelledTasks", (long long)gr->n[ST_CANCELLED]);
	jg_kint(g, "dispatchedAttempts", (long long)gr->n[ST_DISPATCHED]);
	jg_kint(g, "retriedAttempts", (long long)gr->n[ST_RETRIED]);
	jg_kint(g, "timedOutAttempts", (long long)gr->n[ST_TIMED_OUT]);
	stats_jg_knum(g, "successRate", statsq_ratio(ok, ok + bad), 4);
	stats_jg_knum(g, "failureRate", statsq_ratio(bad, ok + bad), 4);
	stats_jg_knum(g, "averageProcessingTime", hist_mean(&gr->run), 1);
	jg_key(g, "processingTime");
	statsq_jg_dist(g, &gr->run);
	jg_key(g, "queueWait");
	statsq_jg_dist(g, &gr->wait);
	statsq_jg_time(g, "lastActiveTime", gr->last_active);
}

void stats_report_tasks(struct jgen *g, const struct stats_window *w, const char *model,
			int64_t now)
{
	struct stats_agg a;
	struct statsq_info info;
	if (w->given)
		statsq_window(w->from, w->to, now, &a, &info);
	else
		statsq_all_time(now, &a, &info);
	size_t processing = 0;
	tindex_active_each(count_one, &processing);

	jg_obj(g);
	stats_jg_window(g, w, &info, !w->given);
	jg_task_group(g, &a.all);
	jg_kint(g, "pendingTasks", (long long)tindex_queue_depth());
	jg_kint(g, "processingTasks", (long long)processing);
	jg_key(g, "models");
	jg_obj(g);
	for (size_t i = 0; i < a.nmodels; i++) {
		if (model && strcmp(a.models[i].name, model) != 0)
			continue;
		jg_key(g, a.models[i].name);
		jg_obj(g);
		jg_task_group(g, &a.models[i]);
		jg_obj_end(g);
	}
	jg_obj_end(g);
	statsq_jg_time(g, "generatedAt", now);
	jg_obj_end(g);
	stats_agg_free(&a);
}

/* ---- servers ---- */

struct server_view {
	char id[STATS_NAME_MAX + 1];
	const struct server *s;		  /* NULL: not registered (any more) */
	const struct stats_group *counts; /* may be NULL */
	const struct stats_group *status; /* may be NULL */
	const struct stats_group *ever;	  /* all time, for lastActiveTime; may be NULL */
};

/* What a server report reads: counts over the window (or all time), status time over
 * the window (or the last 24 hours), the registry. */
struct server_sources {
	struct stats_agg ever, win;
	const struct stats_agg *counts;
	struct statsq_info info, winfo;
	int64_t sw_from, sw_to; /* the status window */
	struct statsq_live live;
};

static void sources_load(struct server_sources *src, const struct stats_window *w, int64_t now)
{
	statsq_all_time(now, &src->ever, &src->info);
	src->sw_from = w->given ? w->from : now - 24 * HOUR_MS;
	src->sw_to = w->given ? w->to : now + 1;
	statsq_window(src->sw_from, src->sw_to, now, &src->win, &src->winfo);
	src->counts = w->given ? &src->win : &src->ever;
	statsq_live_load(&src->live, now);
}

static void sources_free(struct server_sources *src)
{
	statsq_live_free(&src->live);
	stats_agg_free(&src->ever);
	stats_agg_free(&src->win);
}

static int cmp_view(const void *a, const void *b)
{
	return strcmp(((const struct server_view *)a)->id, ((const struct server_view *)b)->id);
}

/* Every server registered or in the statistics, by id; *n of them (caller frees). */
static struct server_view *views_of(const struct server_sources *src, size_t *count)
{
	const struct statsq_live *live = &src->live;
	size_t cap = live->nservers + src->ever.nservers + src->win.nservers + 1, n = 0;
	struct server_view *v = calloc(cap, sizeof *v);
	if (!v)
		abort();
	for (size_t i = 0; i < live->nservers; i++) {
		snprintf(v[n].id, sizeof v[n].id, "%s", live->servers[i].id);
		v[n++].s = &live->servers[i];
	}
	const struct stats_agg *aggs[2] = {&src->ever, &src->win};
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < aggs[k]->nservers; i++) {
			const char *id = aggs[k]->servers[i].name;
			bool seen = false;
			for (size_t j = 0; j < n && !seen; j++)
				seen = strcmp(v[j].id, id) == 0;
			if (!seen)
				snprintf(v[n++].id, sizeof v[0].id, "%s", id);
		}
	qsort(v, n, sizeof *v, cmp_view);
	for (size_t i = 0; i < n; i++) {
		v[i].counts = stats_server_c(src->counts, v[i].id);
		v[i].status = stats_server_c(&src->win, v[i].id);
		v[i].ever = stats_server_c(&src->ever, v[i].id);
	}
	*count = n;
	return v;
}

/* Time per status over the status window. */
static void jg_status_time(struct jgen *g, const struct server_view *v, int64_t sw_from,
			   int64_t sw_to, int64_t now)
{
	int64_t ms[SS_COUNT] = {0}, sum = 0;
	uint64_t changes = v->status ? v->status->changes : 0;
	for (int i = 0; i < SS_COUNT; i++) {
		ms[i] = v->status ? v->status->status_ms[i] : 0;
		sum += ms[i];
	}
	if (sum == 0 && v->s) {
		/* No status event ever: it has been in its current status since it was
		 * registered (as far as the log knows). */
		int64_t from = v->s->registered_at > sw_from ? v->s->registered_at : sw_from;
		int64_t to = sw_to < now ? sw_to : now;
		int cur = v->s->maintenance		    ? SS_MAINTENANCE
			  : v->s->health == HEALTH_STARTING ? SS_STARTING
							    : (int)v->s->health;
		if (to > from && cur >= 0 && cur < SS_COUNT)
			ms[cur] = to - from;
	}
	jg_key(g, "statusTime");
	jg_obj(g);
	for (int i = 0; i < SS_COUNT; i++)
		jg_kint(g, stats_status_name[i], ms[i]);
	jg_obj_end(g);
	jg_kint(g, "statusChanges", (long long)changes);
}

static void jg_server_stats(struct jgen *g, const struct server_view *v, int64_t sw_from,
			    int64_t sw_to, int64_t now)
{
	static const struct stats_group none;
	const struct stats_group *c = v->counts ? v->counts : &none;
	uint64_t done = stats_group_processed(c), bad = stats_group_errors(c);
	jg_obj(g);
	jg_kstr(g, "serverId", v->id);
	jg_kbool(g, "registered", v->s != NULL);
	if (v->s) {
		jg_kstr(g, "name", v->s->name);
		jg_kstr(g, "status", server_status(v->s));
		jg_kint(g, "currentLoad", v->s->current_load);
		jg_kint(g, "maxConcurrent", v->s->max_concurrent);
		jg_kint(g, "healthScore", v->s->health_score);
	} else {
		jg_key(g, "status");
		jg_null(g);
	}
	jg_kint(g, "tasksProcessed", (long long)done);
	jg_kint(g, "successfulTasks", (long long)c->n[ST_COMPLETED]);
	jg_kint(g, "failedTasks", (long long)bad);
	jg_kint(g, "cancelledTasks", (long long)c->n[ST_CANCELLED]);
	jg_kint(g, "dispatchedAttempts", (long long)c->n[ST_DISPATCHED]);
	stats_jg_knum(g, "successRate", statsq_ratio(c->n[ST_COMPLETED], done), 4);
	stats_jg_knum(g, "failureRate", statsq_ratio(bad, done), 4);
	stats_jg_knum(g, "averageResponseTime", hist_mean(&c->run), 1);
	jg_key(g, "responseTime");
	statsq_jg_dist(g, &c->run);
	jg_key(g, "queueWait");
	statsq_jg_dist(g, &c->wait);
	int64_t last = v->ever ? v->ever->last_active : c->last_active;
	statsq_jg_time(g, "lastActiveTime", last);
	jg_kint(g, "lastActiveTimeMs", last);
	jg_status_time(g, v, sw_from, sw_to, now);
	jg_obj_end(g);
}

static void jg_server_list(struct jgen *g, const struct stats_window *w,
			   const struct server_sources *src, const struct server_view *v, size_t n,
			   int64_t now)
{
	jg_obj(g);
	stats_jg_window(g, w, w->given ? &src->winfo : &src->info, !w->given);
	jg_key(g, "statusWindow");
	jg_obj(g);
	statsq_jg_time(g, "from", src->sw_from);
	statsq_jg_time(g, "to", src->sw_to);
	jg_obj_end(g);
	jg_key(g, "items");
	jg_arr(g);
	for (size_t i = 0; i < n; i++)
		jg_server_stats(g, &v[i], src->sw_from, src->sw_to, now);
	jg_arr_end(g);
	jg_kint(g, "count", (long long)n);
	statsq_jg_time(g, "generatedAt", now);
	jg_obj_end(g);
}

bool stats_report_servers(struct jgen *g, const struct stats_window *w, const char *one,
			  int64_t now)
{
	struct server_sources src;
	sources_load(&src, w, now);
	size_t n;
	struct server_view *v = views_of(&src, &n);
	bool found = !one;
	if (one) {
		for (size_t i = 0; i < n && !found; i++)
			if (strcmp(v[i].id, one) == 0) {
				jg_server_stats(g, &v[i], src.sw_from, src.sw_to, now);
				found = true;
			}
	} else {
		jg_server_list(g, w, &src, v, n, now);
	}
	free(v);
	sources_free(&src);
	return found;
}

/* ---- hourly ---- */

static void jg_hour_servers(struct jgen *g, const struct stats_agg *h)
{
	jg_key(g, "servers");
	jg_obj(g);
	for (size_t k = 0; k < h->nservers; k++) {
		const struct stats_group *s = &h->servers[k];
		uint64_t done = stats_group_processed(s);
		if (done == 0 && s->n[ST_DISPATCHED] == 0)
			continue;
		jg_key(g, s->name);
		jg_obj(g);
		jg_kint(g, "dispatched", (long long)s->n[ST_DISPATCHED]);
		jg_kint(g, "processed", (long long)done);
		jg_kint(g, "successes", (long long)s->n[ST_COMPLETED]);
		jg_kint(g, "errors", (long long)stats_group_errors(s));
		stats_jg_knum(g, "averageTime", hist_mean(&s->run), 1);
		jg_obj_end(g);
	}
	jg_obj_end(g);
}

static void jg_hour(struct jgen *g, const struct stats_agg *h, int64_t start)
{
	const struct stats_group *a = &h->all;
	jg_obj(g);
	statsq_jg_time(g, "hour", start);
	jg_kint(g, "hourMs", start);
	jg_kint(g, "tasks", (long long)a->n[ST_CREATED]);
	jg_kint(g, "successes", (long long)a->n[ST_COMPLETED]);
	jg_kint(g, "failures", (long long)a->n[ST_FAILED]);
	jg_kint(g, "cancelled", (long long)a->n[ST_CANCELLED]);
	jg_kint(g, "timedOut", (long long)a->n[ST_TIMED_OUT]);
	jg_kint(g, "retried", (long long)a->n[ST_RETRIED]);
	jg_kint(g, "dispatched", (long long)a->n[ST_DISPATCHED]);
	stats_jg_knum(g, "averageTime", hist_mean(&a->run), 1);
	stats_jg_knum(g, "p95Time", hist_quantile(&a->run, 0.95), 1);
	stats_jg_knum(g, "p95Wait", hist_quantile(&a->wait, 0.95), 1);
	jg_hour_servers(g, h);
	jg_obj_end(g);
}

void stats_report_hourly(struct jgen *g, int hours, int64_t now)
{
	int64_t first = hour_floor(now) - (int64_t)(hours - 1) * HOUR_MS;
	struct stats_agg *h = calloc((size_t)hours, sizeof *h);
	if (!h)
		abort();
	statsq_hours(first, hours, now, h);
	jg_obj(g);
	jg_kint(g, "hours", hours);
	jg_key(g, "items");
	jg_arr(g);
	for (int i = 0; i < hours; i++)
		jg_hour(g, &h[i], first + i * HOUR_MS);
	jg_arr_end(g);
	statsq_jg_time(g, "generatedAt", now);
	jg_obj_end(g);
	for (int i = 0; i < hours; i++)
		stats_agg_free(&h[i]);
	free(h);
}
