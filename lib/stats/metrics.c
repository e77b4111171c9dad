#include "stats/metrics.h"

#include <stdio.h>
#include <string.h>

#include "fs/reqcount.h"
#include "model/server.h"
#include "stats/alerts.h"
#include "stats/promtext.h"
#include "stats/stats.h"
#include "stats/statsq.h"

static void counters(struct buf *out, const char *family, const char *help, const char *label,
		     const struct stats_group *v, size_t n)
{
	prom_family(out, family, "counter", help);
	for (size_t i = 0; i < n; i++)
		for (int t = 0; t < ST_TYPES; t++) {
			if (t == ST_CREATED && strcmp(label, "server") == 0)
				continue; /* a task is created before it has a server */
			struct prom_label l[2] = {{label, v[i].name},
						  {"event", stats_type_event[t]}};
			prom_sample(out, family, l, 2, (double)v[i].n[t]);
		}
}

static void task_counters(struct buf *out, const struct stats_agg *a)
{
	prom_family(out, "taskgate_tasks_total", "counter",
		    "Task events since the statistics began, by kind (created, dispatched, "
		    "completed, failed, timed_out, cancelled, retried).");
	for (int t = 0; t < ST_TYPES; t++) {
		/* "event", not "status": retried and timed_out are things that happened to
		 * a task, not states it is in. */
		struct prom_label l = {"event", stats_type_event[t]};
		prom_sample(out, "taskgate_tasks_total", &l, 1, (double)a->all.n[t]);
	}
	counters(out, "taskgate_model_tasks_total", "Task events by model and kind.", "model",
		 a->models, a->nmodels);
	counters(out, "taskgate_server_tasks_total",
		 "Task events that name a server, by server and kind.", "server", a->servers,
		 a->nservers);
}

static void histograms(struct buf *out, const struct stats_agg *a)
{
	prom_family(out, "taskgate_task_duration_seconds", "histogram",
		    "Run time of ended attempts (from dispatch to the end of the attempt).");
	prom_histogram(out, "taskgate_task_duration_seconds", NULL, 0, &a->all.run);
	prom_family(out, "taskgate_queue_wait_seconds", "histogram",
		    "Time tasks waited in the queue before each dispatch.");
	prom_histogram(out, "taskgate_queue_wait_seconds", NULL, 0, &a->all.wait);
	prom_family(out, "taskgate_server_task_duration_seconds", "histogram",
		    "Run time of ended attempts, by server.");
	for (size_t i = 0; i < a->nservers; i++) {
		struct prom_label l = {"server", a->servers[i].name};
		if (a->servers[i].run.count)
			prom_histogram(out, "taskgate_server_task_duration_seconds", &l, 1,
				       &a->servers[i].run);
	}
}

static void queue_gauges(struct buf *out, const struct metrics_input *in)
{
	prom_family(out, "taskgate_queue_depth", "gauge",
		    "Tasks waiting in the queue (QUEUED and PENDING).");
	prom_sample(out, "taskgate_queue_depth", NULL, 0, (double)in->live.queue_depth);
	prom_family(out, "taskgate_queue_unservable", "gauge",
		    "Queued tasks no registered server could take, as the last sweep found.");
	prom_sample(out, "taskgate_queue_unservable", NULL, 0,
		    (double)in->live.unservable.tasks);
	prom_family(out, "taskgate_queue_due", "gauge",
		    "Queued tasks that are due now (not backing off before a retry).");
	prom_sample(out, "taskgate_queue_due", NULL, 0, (double)in->live.due);
	prom_family(out, "taskgate_queue_oldest_wait_seconds", "gauge",
		    "How long the longest-waiting due task has waited (0 when none).");
	prom_sample(out, "taskgate_queue_oldest_wait_seconds", NULL, 0,
		    in->live.oldest_since ? (double)(in->now - in->live.oldest_since) / 1000.0 : 0);
	prom_family(out, "taskgate_tasks_processing", "gauge", "Tasks running on a server now.");
	prom_sample(out, "taskgate_tasks_processing", NULL, 0, (double)in->live.processing);
}

static void server_gauges(struct buf *out, const struct statsq_live *live)
{
	prom_family(out, "taskgate_server_up", "gauge",
		    "1 when the server takes tasks (online or degraded, not in maintenance).");
	for (size_t i = 0; i < live->nservers; i++) {
		struct prom_label l = {"server", live->servers[i].id};
		prom_sample(out, "taskgate_server_up", &l, 1,
			    statsq_server_routable(&live->servers[i]) ? 1 : 0);
	}
	prom_family(out, "taskgate_server_status", "gauge",
		    "1 for the server's current status, 0 for the others.");
	for (size_t i = 0; i < live->nservers; i++)
		for (int s = 0; s < SS_COUNT; s++) {
			struct prom_label l[2] = {{"server", live->servers[i].id},
						  {"status", stats_status_name[s]}};
			prom_sample(
			    out, "taskgate_server_status", l, 2,
			    strcmp(server_status(&live->servers[i]), stats_status_name[s]) == 0);
		}
	prom_family(out, "taskgate_server_load", "gauge", "Tasks assigned to the server now.");
	for (size_t i = 0; i < live->nservers; i++) {
		struct prom_label l = {"server", live->servers[i].id};
		prom_sample(out, "taskgate_server_load", &l, 1, live->servers[i].current_load);
	}
	prom_family(out, "taskgate_server_capacity", "gauge",
		    "Tasks the server may run at once (maxConcurrent).");
	for (size_t i = 0; i < live->nservers; i++) {
		struct prom_label l = {"server", live->servers[i].id};
		prom_sample(out, "taskgate_server_capacity", &l, 1,
			    live->servers[i].max_concurrent);
	}
	prom_family(out, "taskgate_server_response_time_seconds", "gauge",
		    "The server's response time as the load balancer weighs it (an EWMA of "
		    "its dispatch answers); absent until it has answered one.");
	for (size_t i = 0; i < live->nservers; i++) {
		struct prom_label l = {"server", live->servers[i].id};
		if (live->servers[i].ewma_ms > 0)
			prom_sample(out, "taskgate_server_response_time_seconds", &l, 1,
				    live->servers[i].ewma_ms / 1000.0);
	}
	prom_family(out, "taskgate_server_health_score", "gauge", "Health score, 0 to 100.");
	for (size_t i = 0; i < live->nservers; i++) {
		struct prom_label l = {"server", live->servers[i].id};
		prom_sample(out, "taskgate_server_health_score", &l, 1,
			    live->servers[i].health_score);
	}
	prom_family(out, "taskgate_servers", "gauge", "Registered servers by status.");
	const int by_status[SS_COUNT] = {live->online, live->degraded, live->offline,
					 live->maintenance, live->starting};
	for (int s = 0; s < SS_COUNT; s++) {
		struct prom_label l = {"status", stats_status_name[s]};
		prom_sample(out, "taskgate_servers", &l, 1, by_status[s]);
	}
}

static void alert_gauges(struct buf *out)
{
	struct alerts_state as;
	alerts_state_load(&as);
	size_t firing = alerts_count(&as, AS_FIRING);
	prom_family(out, "taskgate_alerts_firing", "gauge", "Alerts firing now.");
	prom_sample(out, "taskgate_alerts_firing", NULL, 0, (double)firing);
	prom_family(out, "taskgate_alert_firing", "gauge",
		    "1 for each alert firing now (by rule name and subject).");
	for (size_t i = 0; i < as.n; i++)
		if (as.v[i].state == AS_FIRING) {
			struct prom_label l[2] = {{"alert", as.v[i].name},
						  {"subject", as.v[i].subject}};
			prom_sample(out, "taskgate_alert_firing", l, 2, 1);
		}
	alerts_state_free(&as);
}

static void stats_meta(struct buf *out, const struct metrics_input *in)
{
	prom_family(out, "taskgate_stats_rollup_last_run_timestamp_seconds", "gauge",
		    "When the rollup last ran (0: never).");
	prom_sample(out, "taskgate_stats_rollup_last_run_timestamp_seconds", NULL, 0,
		    (double)in->rollup_last_run / 1000.0);
	prom_family(out, "taskgate_stats_unfolded_hours", "gauge",
		    "Hours of events not folded yet (the current one included).");
	prom_sample(out, "taskgate_stats_unfolded_hours", NULL, 0, in->info.hours_raw);
	prom_family(out, "taskgate_stats_bad_lines_total", "counter",
		    "Event log lines that could not be read.");
	prom_sample(out, "taskgate_stats_bad_lines_total", NULL, 0, (double)in->a.bad);
	prom_family(out, "taskgate_build_info", "gauge", "The running version.");
	struct prom_label v = {"version", in->version};
	prom_sample(out, "taskgate_build_info", &v, 1, 1);
}

void metrics_text(struct buf *out, int64_t now, int64_t rollup_last_run, const char *version)
{
	struct metrics_input in = {
	    .now = now, .rollup_last_run = rollup_last_run, .version = version};
	statsq_all_time(now, &in.a, &in.info);
	statsq_live_load(&in.live, now);
	buf_reset(out);
	task_counters(out, &in.a);
	histograms(out, &in.a);
	queue_gauges(out, &in);
	server_gauges(out, &in.live);
	alert_gauges(out);
	stats_meta(out, &in);
	statsq_live_free(&in.live);
	stats_agg_free(&in.a);
}

void metrics_requests_text(struct buf *out, uint64_t table, const struct metrics_route *routes,
			   size_t n)
{
	static struct reqcount c; /* 19 KiB: not on the stack */
	reqcount_read(table, &c);
	if (n >= REQCOUNT_ROUTES)
		n = REQCOUNT_ROUTES - 1;
	prom_family(out, "taskgate_http_requests_total", "counter",
		    "Requests answered, by method, route (its pattern; \"\" when no route "
		    "matched) and status code, on every host of this state tree.");
	char code[16];
	for (size_t r = 0; r <= n; r++)
		for (int k = 0; k < REQCOUNT_CODES; k++) {
			if (!c.route[r].by_code[k])
				continue;
			if (k < REQCOUNT_CODES - 1)
				snprintf(code, sizeof code, "%d", reqcount_codes[k]);
			else
				snprintf(code, sizeof code, "other");
			struct prom_label l[3] = {{"method", r < n ? routes[r].method : ""},
						  {"route", r < n ? routes[r].pattern : ""},
						  {"code", code}};
			prom_sample(out, "taskgate_http_requests_total", l, 3,
				    (double)c.route[r].by_code[k]);
		}
	prom_family(out, "taskgate_http_request_duration_seconds", "histogram",
		    "Time from reading a request to its answer sent, by method and route.");
	for (size_t r = 0; r <= n; r++) {
		if (!c.route[r].count)
			continue;
		struct prom_label l[2] = {{"method", r < n ? routes[r].method : ""},
					  {"route", r < n ? routes[r].pattern : ""}};
		prom_histogram_parts(out, "taskgate_http_request_duration_seconds", l, 2,
				     c.route[r].b, c.route[r].count,
				     (double)c.route[r].sum_us / 1e6);
	}
}
