#include "stats/perfreport.h"

#include <stdlib.h>
#include <string.h>

#include "base/hour.h"
#include "stats/alerts.h"
#include "stats/findings.h"
#include "stats/stats.h"
#include "stats/statsq.h"
#include "stats/statsreport.h"

#define TOP_N 5

/* What the report reads: the window, the one before it, the live figures. */
struct perf_input {
	int hours;
	int64_t now;
	struct stats_agg win, prev;
	struct statsq_info info, pinfo;
	struct statsq_live live;
};

static void input_load(struct perf_input *in, int hours, int64_t now)
{
	int64_t span = hours * HOUR_MS;
	in->hours = hours;
	in->now = now;
	statsq_window(now - span, now + 1, now, &in->win, &in->info);
	statsq_window(now - 2 * span, now - span, now, &in->prev, &in->pinfo);
	statsq_live_load(&in->live, now);
}

static void input_free(struct perf_input *in)
{
	statsq_live_free(&in->live);
	stats_agg_free(&in->win);
	stats_agg_free(&in->prev);
}

static void jg_throughput(struct jgen *g, const struct perf_input *in)
{
	const struct stats_group *all = &in->win.all;
	uint64_t done = all->n[ST_COMPLETED] + all->n[ST_FAILED];
	jg_key(g, "throughput");
	jg_obj(g);
	jg_kint(g, "created", (long long)all->n[ST_CREATED]);
	jg_kint(g, "completed", (long long)all->n[ST_COMPLETED]);
	jg_kint(g, "failed", (long long)all->n[ST_FAILED]);
	jg_kint(g, "dispatched", (long long)all->n[ST_DISPATCHED]);
	stats_jg_knum(g, "completedPerHour", (double)all->n[ST_COMPLETED] / (double)in->hours, 2);
	stats_jg_knum(g, "finishedPerHour", (double)done / (double)in->hours, 2);
	stats_jg_knum(g, "successRate", statsq_ratio(all->n[ST_COMPLETED], done), 4);
	jg_kint(g, "previousCompleted", (long long)in->prev.all.n[ST_COMPLETED]);
	jg_obj_end(g);

	jg_key(g, "latency");
	jg_obj(g);
	jg_key(g, "processingTime");
	statsq_jg_dist(g, &all->run);
	jg_key(g, "queueWait");
	statsq_jg_dist(g, &all->wait);
	jg_obj_end(g);
}

/* ---- server rankings ---- */

struct rank {
	const struct stats_group *g;
	double key;
};

static int cmp_rank(const void *a, const void *b)
{
	const struct rank *x = a, *y = b;
	if (x->key != y->key)
		return x->key > y->key ? -1 : 1;
	return strcmp(x->g->name, y->g->name);
}

/* r: room for every server of the window. */
static void jg_busiest(struct jgen *g, const struct stats_agg *win, struct rank *r)
{
	uint64_t processed_all = 0;
	for (size_t i = 0; i < win->nservers; i++) {
		r[i].g = &win->servers[i];
		r[i].key = (double)stats_group_processed(&win->servers[i]);
		processed_all += stats_group_processed(&win->servers[i]);
	}
	qsort(r, win->nservers, sizeof *r, cmp_rank);
	jg_key(g, "busiestServers");
	jg_arr(g);
	for (size_t i = 0; i < win->nservers && i < TOP_N && r[i].key > 0; i++) {
		jg_obj(g);
		jg_kstr(g, "serverId", r[i].g->name);
		jg_kint(g, "tasksProcessed", (long long)r[i].key);
		stats_jg_knum(g, "share", statsq_ratio((uint64_t)r[i].key, processed_all), 4);
		jg_obj_end(g);
	}
	jg_arr_end(g);
}

static void jg_slowest(struct jgen *g, const struct stats_agg *win, struct rank *r)
{
	size_t nr = 0;
	for (size_t i = 0; i < win->nservers; i++)
		if (win->servers[i].run.count) {
			r[nr].g = &win->servers[i];
			r[nr++].key = hist_quantile(&win->servers[i].run, 0.95);
		}
	qsort(r, nr, sizeof *r, cmp_rank);
	jg_key(g, "slowestServers");
	jg_arr(g);
	for (size_t i = 0; i < nr && i < TOP_N; i++) {
		jg_obj(g);
		jg_kstr(g, "serverId", r[i].g->name);
		stats_jg_knum(g, "p95ResponseTime", r[i].key, 1);
		stats_jg_knum(g, "averageResponseTime", hist_mean(&r[i].g->run), 1);
		jg_kint(g, "tasksProcessed", (long long)stats_group_processed(r[i].g));
		jg_obj_end(g);
	}
	jg_arr_end(g);
}

static void jg_rankings(struct jgen *g, const struct stats_agg *win)
{
	struct rank *r = calloc(win->nservers + 1, sizeof *r);
	if (!r)
		abort();
	jg_busiest(g, win, r);
	jg_slowest(g, win, r);
	free(r);
}

/* ---- errors ---- */

static void jg_errors_by_server(struct jgen *g, const struct stats_agg *win)
{
	jg_key(g, "byServer");
	jg_obj(g);
	for (size_t i = 0; i < win->nservers; i++) {
		const struct stats_group *s = &win->servers[i];
		uint64_t p = stats_group_processed(s), e = stats_group_errors(s);
		if (!e)
			continue;
		jg_key(g, s->name);
		jg_obj(g);
		jg_kint(g, "errors", (long long)e);
		jg_kint(g, "tasksProcessed", (long long)p);
		stats_jg_knum(g, "failureRate", statsq_ratio(e, p), 4);
		jg_obj_end(g);
	}
	jg_obj_end(g);
}

static void jg_errors_by_model(struct jgen *g, const struct stats_agg *win)
{
	jg_key(g, "byModel");
	jg_obj(g);
	for (size_t i = 0; i < win->nmodels; i++) {
		const struct stats_group *m = &win->models[i];
		uint64_t fin = m->n[ST_COMPLETED] + m->n[ST_FAILED];
		if (!m->n[ST_FAILED])
			continue;
		jg_key(g, m->name);
		jg_obj(g);
		jg_kint(g, "failedTasks", (long long)m->n[ST_FAILED]);
		jg_kint(g, "finishedTasks", (long long)fin);
		stats_jg_knum(g, "failureRate", statsq_ratio(m->n[ST_FAILED], fin), 4);
		jg_obj_end(g);
	}
	jg_obj_end(g);
}

static void jg_errors(struct jgen *g, const struct stats_agg *win)
{
	const struct stats_group *all = &win->all;
	jg_key(g, "errors");
	jg_obj(g);
	jg_kint(g, "failedTasks", (long long)all->n[ST_FAILED]);
	jg_kint(g, "timedOutAttempts", (long long)all->n[ST_TIMED_OUT]);
	jg_kint(g, "retriedAttempts", (long long)all->n[ST_RETRIED]);
	jg_kint(g, "cancelledTasks", (long long)all->n[ST_CANCELLED]);
	jg_key(g, "byOutcome");
	jg_obj(g);
	for (int i = 0; i < OC_COUNT; i++)
		if (all->outcome[i])
			jg_kint(g, stats_outcome_name[i], (long long)all->outcome[i]);
	jg_obj_end(g);
	jg_errors_by_server(g, win);
	jg_errors_by_model(g, win);
	jg_obj_end(g);
}

/* ---- now ---- */

static void jg_live(struct jgen *g, const struct statsq_live *live, int64_t now)
{
	jg_key(g, "queue");
	jg_obj(g);
	jg_kint(g, "depth", (long long)live->queue_depth);
	jg_kint(g, "due", (long long)live->due);
	jg_kint(g, "processing", (long long)live->processing);
	stats_jg_knum(g, "oldestWaitSeconds",
		      live->oldest_since ? (double)(now - live->oldest_since) / 1000.0 : 0, 1);
	jg_obj_end(g);
	jg_key(g, "servers");
	jg_obj(g);
	jg_kint(g, "registered", (long long)live->nservers);
	jg_kint(g, "online", live->online);
	jg_kint(g, "degraded", live->degraded);
	jg_kint(g, "offline", live->offline);
	jg_kint(g, "starting", live->starting);
	jg_kint(g, "maintenance", live->maintenance);
	jg_obj_end(g);
}

static void jg_findings(struct jgen *g, const struct perf_input *in)
{
	struct finding *f;
	struct findings_input fin = {.win = &in->win,
				     .prev = &in->prev,
				     .live = &in->live,
				     .window_ms = in->hours * HOUR_MS,
				     .now = in->now};
	size_t nf = findings_build(&fin, &f);
	jg_key(g, "findings");
	jg_arr(g);
	for (size_t i = 0; i < nf; i++) {
		jg_obj(g);
		jg_kstr(g, "severity", finding_level_name[f[i].level]);
		jg_kstr(g, "subject", f[i].subject);
		jg_kstr(g, "text", f[i].text);
		jg_obj_end(g);
	}
	jg_arr_end(g);
	free(f);
}

/* The alerts firing, in brief (name, subject, message). */
static void jg_alerts_firing(struct jgen *g)
{
	struct alerts_state as;
	alerts_state_load(&as);
	jg_key(g, "alertsFiring");
	jg_arr(g);
	for (size_t i = 0; i < as.n; i++)
		if (as.v[i].state == AS_FIRING) {
			jg_obj(g);
			jg_kstr(g, "name", as.v[i].name);
			jg_kstr(g, "subject", as.v[i].subject);
			jg_kstr(g, "message", as.v[i].message);
			jg_obj_end(g);
		}
	jg_arr_end(g);
	alerts_state_free(&as);
}

void perf_report(struct jgen *g, int hours, int64_t now)
{
	struct perf_input in;
	input_load(&in, hours, now);
	struct stats_window w = {now - hours * HOUR_MS, now + 1, true};
	jg_obj(g);
	stats_jg_window(g, &w, &in.info, false);
	jg_throughput(g, &in);
	jg_rankings(g, &in.win);
	jg_errors(g, &in.win);
	jg_live(g, &in.live, now);
	jg_findings(g, &in);
	jg_alerts_firing(g);
	statsq_jg_time(g, "generatedAt", now);
	jg_obj_end(g);
	input_free(&in);
}
