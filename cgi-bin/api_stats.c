/* /api/v2/stats/...: the TaskInstanceStats over HTTP. The handlers parse the query and
 * answer what stats/statsreport.c and stats/perfreport.c build.
 *
 * Windows: ?from=&to= take ms since the epoch or RFC 3339; `to` is exclusive and
 * defaults to now, `from` to the beginning of the statistics. Without either, task and
 * server figures are all-time (folded totals plus the hours not folded yet). Rates are
 * fractions in [0, 1]; times are milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "fs/store.h"
#include "stats/perfreport.h"
#include "stats/stats.h"
#include "stats/statsq.h"
#include "stats/statsreport.h"
#include "app.h"

#define HOURLY_MAX	720 /* 30 days of hours in one answer */
#define PERFORMANCE_MAX 168 /* a week */

/* 0, or the status of the problem answered. */
static int parse_window(struct http_req *rq, struct http_resp *rs, int64_t now, struct stats_window *w)
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

/* Sends the document g holds and frees it; the rollup may piggy-back afterwards. */
static int answer(struct http_resp *rs, struct jgen *g)
{
	int st = http_json(rs, 200, g);
	jg_free(g);
	return st;
}

int api_stats_tasks(struct http_req *rq, struct http_resp *rs)
{
	int64_t now = now_ms();
	struct stats_window w;
	int st = parse_window(rq, rs, now, &w);
	if (st)
		return st;
	char model[160] = "";
	bool has_model = http_query(rq, "model", model, sizeof model);
	if (has_model && (!*model || strlen(model) > STATS_NAME_MAX))
		return http_problem(rs, 400, "model", "model must be 1 to 128 bytes");
	struct jgen g;
	jg_init(&g);
	stats_report_tasks(&g, &w, has_model ? model : NULL, now);
	return answer(rs, &g);
}

/* one: a server id, or NULL for all of them. */
static int answer_servers(struct http_req *rq, struct http_resp *rs, const char *one)
{
	int64_t now = now_ms();
	struct stats_window w;
	int st = parse_window(rq, rs, now, &w);
	if (st)
		return st;
	if (one && !store_id_valid(one))
		return app_store_problem(rs, STORE_INVALID, "server", one);
	struct jgen g;
	jg_init(&g);
	if (!stats_report_servers(&g, &w, one, now)) {
		jg_free(&g);
		return http_problem(rs, 404, NULL,
				    "no server '%s' is registered or appears in the statistics",
				    one);
	}
	return answer(rs, &g);
}

int api_stats_servers(struct http_req *rq, struct http_resp *rs)
{
	return answer_servers(rq, rs, NULL);
}

int api_stats_server(struct http_req *rq, struct http_resp *rs)
{
	return answer_servers(rq, rs, rq->param[0]);
}

int api_stats_hourly(struct http_req *rq, struct http_resp *rs)
{
	long hours;
	int st = parse_count(rq, rs, "hours", 24, 1, HOURLY_MAX, &hours);
	if (st)
		return st;
	struct jgen g;
	jg_init(&g);
	stats_report_hourly(&g, (int)hours, now_ms());
	return answer(rs, &g);
}

int api_stats_performance(struct http_req *rq, struct http_resp *rs)
{
	long hours;
	int st = parse_count(rq, rs, "hours", 1, 1, PERFORMANCE_MAX, &hours);
	if (st)
		return st;
	struct jgen g;
	jg_init(&g);
	perf_report(&g, (int)hours, now_ms());
	return answer(rs, &g);
}
