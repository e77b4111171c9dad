/* /api/v2/stats/...: the TaskInstanceStats over HTTP (lib/statsq.c does the reading).
 *
 * Windows: ?from=&to= take ms since the epoch or RFC 3339; `to` is exclusive and
 * defaults to now, `from` to the beginning of the statistics. Without either, task and
 * server figures are all-time (folded totals plus the hours not folded yet). Rates are
 * fractions in [0, 1]; times are milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hour.h"
#include "stats/alerts.h"
#include "stats/findings.h"
#include "jobs/rollup.h"
#include "model/server.h"
#include "stats/stats.h"
#include "stats/statsq.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "base/util.h"
#include "app.h"

#define HOURLY_MAX	720 /* 30 days of hours in one answer */
#define PERFORMANCE_MAX 168 /* a week */

struct window {
	int64_t from, to;
	bool given; /* from or to was in the query */
};

static void after_piggyback(void *arg)
{
	(void)arg;
	rollup_piggyback();
}

/* 0, or the status of the problem answered. */
static int parse_window(struct http_req *rq, struct http_resp *rs, int64_t now, struct window *w)
{
	char from[64] = "", to[64] = "";
	bool has_from = http_query(rq, "from", from, sizeof from);
	bool has_to = http_query(rq, "to", to, sizeof to);
	w->from = 0;
	w->to = now + 1;
	w->given = has_from || has_to;
	if (has_from && !statsq_parse_time(from, &w->from))
		return http_problem(
		    rs, 400, "from",
		    "from must be milliseconds since the epoch or an RFC 3339 time");
	if (has_to && !statsq_parse_time(to, &w->to))
		return http_problem(rs, 400, "to",
				    "to must be milliseconds since the epoch or an RFC 3339 time");
	if (w->to <= w->from)
		return http_problem(rs, 400, "to", "to must be later than from");
	return 0;
}

/* ?name=N within [min, max]; 0 or the status of the problem answered. */
static int parse_count(struct http_req *rq, struct http_resp *rs, const char *name, long def,
		       long min, long max, long *out)
{
	char text[24] = "";
	*out = def;
	if (!http_query(rq, name, text, sizeof text))
		return 0;
	char *end;
	long v = strtol(text, &end, 10);
	if (!*text || *end || v < min || v > max)
		return http_problem(rs, 400, name, "%s must be an integer from %ld to %ld", name,
				    min, max);
	*out = v;
	return 0;
}

static int count_one(const char *id, void *arg)
{
	(void)id;
	(*(size_t *)arg)++;
	return 0;
}

static void jg_window(struct jgen *g, const struct window *w, const struct statsq_info *info,
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

int api_stats_tasks(struct http_req *rq, struct http_resp *rs)
{
	int64_t now = now_ms();
	struct window w;
	int st = parse_window(rq, rs, now, &w);
	if (st)
		return st;
	char model[160] = "";
	bool has_model = http_query(rq, "model", model, sizeof model);
	if (has_model && (!*model || strlen(model) > STATS_NAME_MAX))
		return http_problem(rs, 400, "model", "model must be 1 to 128 bytes");

	struct stats_agg a;
	struct statsq_info info;
	if (w.given)
		statsq_window(w.from, w.to, now, &a, &info);
	else
		statsq_all_time(now, &a, &info);
	size_t processing = 0;
	tindex_active_each(count_one, &processing);

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_window(&g, &w, &info, !w.given);
	jg_task_group(&g, &a.all);
	jg_kint(&g, "pendingTasks", (long long)tindex_queue_depth());
	jg_kint(&g, "processingTasks", (long long)processing);
	jg_key(&g, "models");
	jg_obj(&g);
	for (size_t i = 0; i < a.nmodels; i++) {
		if (has_model && strcmp(a.models[i].name, model) != 0)
			continue;
		jg_key(&g, a.models[i].name);
		jg_obj(&g);
		jg_task_group(&g, &a.models[i]);
		jg_obj_end(&g);
	}
	jg_obj_end(&g);
	statsq_jg_time(&g, "generatedAt", now);
	jg_obj_end(&g);
	st = http_json(rs, 200, &g);
	jg_free(&g);
	stats_agg_free(&a);
	app_after(after_piggyback, NULL);
	return st;
}

/* ---- servers ---- */

struct server_view {
	char id[STATS_NAME_MAX + 1];
	const struct server *s;		  /* NULL: not registered (any more) */
	const struct stats_group *counts; /* may be NULL */
	const struct stats_group *status; /* may be NULL */
	const struct stats_group *ever;	  /* all time, for lastActiveTime; may be NULL */
};

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
		int cur = v->s->maintenance ? SS_MAINTENANCE : (int)v->s->health;
		if (to > from && cur >= 0 && cur < SS_COUNT)
			ms[cur] = to - from;
	}
	jg_key(g, "statusTime");
	jg_obj(g);
	for (int i = 0; i < SS_COUNT; i++)
		jg_kint(g, stats_status_name[i], ms[i]);
	jg_obj_end(g);
	jg_kint(g, "statusChanges", (long long)changes);
	jg_obj_end(g);
}

static int cmp_view(const void *a, const void *b)
{
	return strcmp(((const struct server_view *)a)->id, ((const struct server_view *)b)->id);
}

/* one: a server id, or NULL for all of them. */
static int answer_servers(struct http_req *rq, struct http_resp *rs, const char *one)
{
	int64_t now = now_ms();
	struct window w;
	int st = parse_window(rq, rs, now, &w);
	if (st)
		return st;
	if (one && !store_id_valid(one))
		return app_store_problem(rs, STORE_INVALID, "server", one);

	struct stats_agg ever, win, *counts = &ever;
	struct statsq_info info, winfo;
	statsq_all_time(now, &ever, &info);
	/* Time per status: over the window, else over the last 24 hours. */
	int64_t sw_from = w.given ? w.from : now - 24 * HOUR_MS;
	int64_t sw_to = w.given ? w.to : now + 1;
	statsq_window(sw_from, sw_to, now, &win, &winfo);
	if (w.given)
		counts = &win;

	struct statsq_live live;
	statsq_live_load(&live, now);
	size_t cap = live.nservers + ever.nservers + win.nservers + 1, n = 0;
	struct server_view *v = calloc(cap, sizeof *v);
	if (!v)
		abort();
	for (size_t i = 0; i < live.nservers; i++) {
		snprintf(v[n].id, sizeof v[n].id, "%s", live.servers[i].id);
		v[n++].s = &live.servers[i];
	}
	const struct stats_agg *sources[2] = {&ever, &win};
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < sources[k]->nservers; i++) {
			const char *id = sources[k]->servers[i].name;
			bool seen = false;
			for (size_t j = 0; j < n && !seen; j++)
				seen = strcmp(v[j].id, id) == 0;
			if (!seen)
				snprintf(v[n++].id, sizeof v[0].id, "%s", id);
		}
	qsort(v, n, sizeof *v, cmp_view);
	for (size_t i = 0; i < n; i++) {
		v[i].counts = stats_server_c(counts, v[i].id);
		v[i].status = stats_server_c(&win, v[i].id);
		v[i].ever = stats_server_c(&ever, v[i].id);
	}

	struct jgen g;
	jg_init(&g);
	if (one) {
		const struct server_view *found = NULL;
		for (size_t i = 0; i < n && !found; i++)
			if (strcmp(v[i].id, one) == 0)
				found = &v[i];
		if (!found) {
			st = http_problem(
			    rs, 404, NULL,
			    "no server '%s' is registered or appears in the statistics", one);
			goto out;
		}
		jg_server_stats(&g, found, sw_from, sw_to, now);
	} else {
		jg_obj(&g);
		jg_window(&g, &w, w.given ? &winfo : &info, !w.given);
		jg_key(&g, "statusWindow");
		jg_obj(&g);
		statsq_jg_time(&g, "from", sw_from);
		statsq_jg_time(&g, "to", sw_to);
		jg_obj_end(&g);
		jg_key(&g, "items");
		jg_arr(&g);
		for (size_t i = 0; i < n; i++)
			jg_server_stats(&g, &v[i], sw_from, sw_to, now);
		jg_arr_end(&g);
		jg_kint(&g, "count", (long long)n);
		statsq_jg_time(&g, "generatedAt", now);
		jg_obj_end(&g);
	}
	st = http_json(rs, 200, &g);
	app_after(after_piggyback, NULL);
out:
	jg_free(&g);
	free(v);
	statsq_live_free(&live);
	stats_agg_free(&ever);
	stats_agg_free(&win);
	return st;
}

int api_stats_servers(struct http_req *rq, struct http_resp *rs)
{
	return answer_servers(rq, rs, NULL);
}

int api_stats_server(struct http_req *rq, struct http_resp *rs)
{
	return answer_servers(rq, rs, rq->param[0]);
}

/* ---- hourly ---- */

int api_stats_hourly(struct http_req *rq, struct http_resp *rs)
{
	long hours;
	int st = parse_count(rq, rs, "hours", 24, 1, HOURLY_MAX, &hours);
	if (st)
		return st;
	int64_t now = now_ms();
	int64_t first = hour_floor(now) - (hours - 1) * HOUR_MS;
	struct stats_agg *h = calloc((size_t)hours, sizeof *h);
	if (!h)
		abort();
	statsq_hours(first, (int)hours, now, h);

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kint(&g, "hours", hours);
	jg_key(&g, "items");
	jg_arr(&g);
	for (long i = 0; i < hours; i++) {
		const struct stats_group *a = &h[i].all;
		jg_obj(&g);
		statsq_jg_time(&g, "hour", first + i * HOUR_MS);
		jg_kint(&g, "hourMs", first + i * HOUR_MS);
		jg_kint(&g, "tasks", (long long)a->n[ST_CREATED]);
		jg_kint(&g, "successes", (long long)a->n[ST_COMPLETED]);
		jg_kint(&g, "failures", (long long)a->n[ST_FAILED]);
		jg_kint(&g, "cancelled", (long long)a->n[ST_CANCELLED]);
		jg_kint(&g, "timedOut", (long long)a->n[ST_TIMED_OUT]);
		jg_kint(&g, "retried", (long long)a->n[ST_RETRIED]);
		jg_kint(&g, "dispatched", (long long)a->n[ST_DISPATCHED]);
		stats_jg_knum(&g, "averageTime", hist_mean(&a->run), 1);
		stats_jg_knum(&g, "p95Time", hist_quantile(&a->run, 0.95), 1);
		stats_jg_knum(&g, "p95Wait", hist_quantile(&a->wait, 0.95), 1);
		jg_key(&g, "servers");
		jg_obj(&g);
		for (size_t k = 0; k < h[i].nservers; k++) {
			const struct stats_group *s = &h[i].servers[k];
			uint64_t done = stats_group_processed(s);
			if (done == 0 && s->n[ST_DISPATCHED] == 0)
				continue;
			jg_key(&g, s->name);
			jg_obj(&g);
			jg_kint(&g, "dispatched", (long long)s->n[ST_DISPATCHED]);
			jg_kint(&g, "processed", (long long)done);
			jg_kint(&g, "successes", (long long)s->n[ST_COMPLETED]);
			jg_kint(&g, "errors", (long long)stats_group_errors(s));
			stats_jg_knum(&g, "averageTime", hist_mean(&s->run), 1);
			jg_obj_end(&g);
		}
		jg_obj_end(&g);
		jg_obj_end(&g);
	}
	jg_arr_end(&g);
	statsq_jg_time(&g, "generatedAt", now);
	jg_obj_end(&g);
	st = http_json(rs, 200, &g);
	jg_free(&g);
	for (long i = 0; i < hours; i++)
		stats_agg_free(&h[i]);
	free(h);
	app_after(after_piggyback, NULL);
	return st;
}

/* ---- performance ---- */

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

#define TOP_N 5

int api_stats_performance(struct http_req *rq, struct http_resp *rs)
{
	long hours;
	int st = parse_count(rq, rs, "hours", 1, 1, PERFORMANCE_MAX, &hours);
	if (st)
		return st;
	int64_t now = now_ms(), span = hours * HOUR_MS;
	struct stats_agg win, prev;
	struct statsq_info info, pinfo;
	statsq_window(now - span, now + 1, now, &win, &info);
	statsq_window(now - 2 * span, now - span, now, &prev, &pinfo);
	struct statsq_live live;
	statsq_live_load(&live, now);
	struct finding *f;
	struct findings_input in = {
	    .win = &win, .prev = &prev, .live = &live, .window_ms = span, .now = now};
	size_t nf = findings_build(&in, &f);
	const struct stats_group *all = &win.all;
	uint64_t done = all->n[ST_COMPLETED] + all->n[ST_FAILED];

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	struct window w = {now - span, now + 1, true};
	jg_window(&g, &w, &info, false);
	jg_key(&g, "throughput");
	jg_obj(&g);
	jg_kint(&g, "created", (long long)all->n[ST_CREATED]);
	jg_kint(&g, "completed", (long long)all->n[ST_COMPLETED]);
	jg_kint(&g, "failed", (long long)all->n[ST_FAILED]);
	jg_kint(&g, "dispatched", (long long)all->n[ST_DISPATCHED]);
	stats_jg_knum(&g, "completedPerHour", (double)all->n[ST_COMPLETED] / (double)hours, 2);
	stats_jg_knum(&g, "finishedPerHour", (double)done / (double)hours, 2);
	stats_jg_knum(&g, "successRate", statsq_ratio(all->n[ST_COMPLETED], done), 4);
	jg_kint(&g, "previousCompleted", (long long)prev.all.n[ST_COMPLETED]);
	jg_obj_end(&g);

	jg_key(&g, "latency");
	jg_obj(&g);
	jg_key(&g, "processingTime");
	statsq_jg_dist(&g, &all->run);
	jg_key(&g, "queueWait");
	statsq_jg_dist(&g, &all->wait);
	jg_obj_end(&g);

	struct rank *r = calloc(win.nservers + 1, sizeof *r);
	if (!r)
		abort();
	uint64_t processed_all = 0;
	for (size_t i = 0; i < win.nservers; i++) {
		r[i].g = &win.servers[i];
		r[i].key = (double)stats_group_processed(&win.servers[i]);
		processed_all += stats_group_processed(&win.servers[i]);
	}
	qsort(r, win.nservers, sizeof *r, cmp_rank);
	jg_key(&g, "busiestServers");
	jg_arr(&g);
	for (size_t i = 0; i < win.nservers && i < TOP_N && r[i].key > 0; i++) {
		jg_obj(&g);
		jg_kstr(&g, "serverId", r[i].g->name);
		jg_kint(&g, "tasksProcessed", (long long)r[i].key);
		stats_jg_knum(&g, "share", statsq_ratio((uint64_t)r[i].key, processed_all), 4);
		jg_obj_end(&g);
	}
	jg_arr_end(&g);
	size_t nr = 0;
	for (size_t i = 0; i < win.nservers; i++)
		if (win.servers[i].run.count) {
			r[nr].g = &win.servers[i];
			r[nr++].key = hist_quantile(&win.servers[i].run, 0.95);
		}
	qsort(r, nr, sizeof *r, cmp_rank);
	jg_key(&g, "slowestServers");
	jg_arr(&g);
	for (size_t i = 0; i < nr && i < TOP_N; i++) {
		jg_obj(&g);
		jg_kstr(&g, "serverId", r[i].g->name);
		stats_jg_knum(&g, "p95ResponseTime", r[i].key, 1);
		stats_jg_knum(&g, "averageResponseTime", hist_mean(&r[i].g->run), 1);
		jg_kint(&g, "tasksProcessed", (long long)stats_group_processed(r[i].g));
		jg_obj_end(&g);
	}
	jg_arr_end(&g);

	jg_key(&g, "errors");
	jg_obj(&g);
	jg_kint(&g, "failedTasks", (long long)all->n[ST_FAILED]);
	jg_kint(&g, "timedOutAttempts", (long long)all->n[ST_TIMED_OUT]);
	jg_kint(&g, "retriedAttempts", (long long)all->n[ST_RETRIED]);
	jg_kint(&g, "cancelledTasks", (long long)all->n[ST_CANCELLED]);
	jg_key(&g, "byOutcome");
	jg_obj(&g);
	for (int i = 0; i < OC_COUNT; i++)
		if (all->outcome[i])
			jg_kint(&g, stats_outcome_name[i], (long long)all->outcome[i]);
	jg_obj_end(&g);
	jg_key(&g, "byServer");
	jg_obj(&g);
	for (size_t i = 0; i < win.nservers; i++) {
		const struct stats_group *s = &win.servers[i];
		uint64_t p = stats_group_processed(s), e = stats_group_errors(s);
		if (!e)
			continue;
		jg_key(&g, s->name);
		jg_obj(&g);
		jg_kint(&g, "errors", (long long)e);
		jg_kint(&g, "tasksProcessed", (long long)p);
		stats_jg_knum(&g, "failureRate", statsq_ratio(e, p), 4);
		jg_obj_end(&g);
	}
	jg_obj_end(&g);
	jg_key(&g, "byModel");
	jg_obj(&g);
	for (size_t i = 0; i < win.nmodels; i++) {
		const struct stats_group *m = &win.models[i];
		uint64_t fin = m->n[ST_COMPLETED] + m->n[ST_FAILED];
		if (!m->n[ST_FAILED])
			continue;
		jg_key(&g, m->name);
		jg_obj(&g);
		jg_kint(&g, "failedTasks", (long long)m->n[ST_FAILED]);
		jg_kint(&g, "finishedTasks", (long long)fin);
		stats_jg_knum(&g, "failureRate", statsq_ratio(m->n[ST_FAILED], fin), 4);
		jg_obj_end(&g);
	}
	jg_obj_end(&g);
	jg_obj_end(&g);

	jg_key(&g, "queue");
	jg_obj(&g);
	jg_kint(&g, "depth", (long long)live.queue_depth);
	jg_kint(&g, "due", (long long)live.due);
	jg_kint(&g, "processing", (long long)live.processing);
	stats_jg_knum(&g, "oldestWaitSeconds",
		      live.oldest_since ? (double)(now - live.oldest_since) / 1000.0 : 0, 1);
	jg_obj_end(&g);
	jg_key(&g, "servers");
	jg_obj(&g);
	jg_kint(&g, "registered", (long long)live.nservers);
	jg_kint(&g, "online", live.online);
	jg_kint(&g, "degraded", live.degraded);
	jg_kint(&g, "offline", live.offline);
	jg_kint(&g, "maintenance", live.maintenance);
	jg_obj_end(&g);

	jg_key(&g, "findings");
	jg_arr(&g);
	for (size_t i = 0; i < nf; i++) {
		jg_obj(&g);
		jg_kstr(&g, "severity", finding_level_name[f[i].level]);
		jg_kstr(&g, "subject", f[i].subject);
		jg_kstr(&g, "text", f[i].text);
		jg_obj_end(&g);
	}
	jg_arr_end(&g);
	struct alerts_state as;
	alerts_state_load(&as);
	jg_key(&g, "alertsFiring");
	jg_arr(&g);
	for (size_t i = 0; i < as.n; i++)
		if (as.v[i].state == AS_FIRING) {
			jg_obj(&g);
			jg_kstr(&g, "name", as.v[i].name);
			jg_kstr(&g, "subject", as.v[i].subject);
			jg_kstr(&g, "message", as.v[i].message);
			jg_obj_end(&g);
		}
	jg_arr_end(&g);
	alerts_state_free(&as);
	statsq_jg_time(&g, "generatedAt", now);
	jg_obj_end(&g);
	st = http_json(rs, 200, &g);
	jg_free(&g);
	free(r);
	free(f);
	statsq_live_free(&live);
	stats_agg_free(&win);
	stats_agg_free(&prev);
	app_after(after_piggyback, NULL);
	return st;
}
