/* GET /status: the operator's page, in the manner of HAProxy's stats page. Plain HTML
 * and inline SVG rendered here (no JavaScript at all), refreshed by the browser every
 * 30 s. The admin token is accepted as a Bearer token or as the password of HTTP Basic
 * authentication (any user name), so a browser can open the page: without it the
 * answer is 401 with `WWW-Authenticate: Basic`, which makes the browser ask. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hour.h"
#include "base/util.h"
#include "model/auth.h"
#include "model/server.h"
#include "stats/findings.h"
#include "stats/stats.h"
#include "stats/statusview.h"
#include "app.h"

#define CHART_HOURS  STATUS_HOURS
#define CHART_W	     720
#define CHART_H	     170
#define CHART_LEFT   58
#define CHART_RIGHT  8
#define CHART_TOP    10
#define CHART_BOTTOM 24

static void esc(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			buf_adds(b, "&amp;");
			break;
		case '<':
			buf_adds(b, "&lt;");
			break;
		case '>':
			buf_adds(b, "&gt;");
			break;
		case '"':
			buf_adds(b, "&quot;");
			break;
		case '\'':
			buf_adds(b, "&#39;");
			break;
		default:
			buf_addch(b, *s);
		}
	}
}

static void ago(struct buf *b, int64_t then, int64_t now)
{
	char when[32], d[32];
	if (then <= 0) {
		buf_adds(b, "<span class=\"dim\">never</span>");
		return;
	}
	format_time_ms(then, when);
	findings_duration(now - then, d, sizeof d);
	buf_printf(b, "<time datetime=\"%s\" title=\"%s\">%s ago</time>", when, when, d);
}

static void fmt_ms(char *out, size_t n, double ms)
{
	findings_duration((int64_t)llround(ms), out, n);
}

/* The smallest 1-2-5 step multiple >= v (so axes read 0, 50, 100). */
static double nice_max(double v)
{
	if (v <= 0)
		return 1;
	double p = pow(10, floor(log10(v)));
	const double steps[] = {1, 2, 2.5, 5, 10};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if (steps[i] * p >= v)
			return steps[i] * p;
	return 10 * p;
}

enum unit { U_COUNT, U_MS };

static void axis_label(char *out, size_t n, double v, enum unit u)
{
	if (u == U_MS)
		fmt_ms(out, n, v);
	else
		stats_fmt_num(out, n, v, 1);
}

/* A bar chart of CHART_HOURS values, one per hour from first. */
static void chart(struct buf *b, const char *id, const char *caption, const double *v,
		  int64_t first, enum unit u, const char *what, const char *colour)
{
	double max = 0;
	for (int i = 0; i < CHART_HOURS; i++)
		if (v[i] > max)
			max = v[i];
	max = nice_max(max);
	const double pw = CHART_W - CHART_LEFT - CHART_RIGHT,
		     ph = CHART_H - CHART_TOP - CHART_BOTTOM;
	const double slot = pw / CHART_HOURS;
	char label[32];
	buf_printf(b, "<figure><figcaption>%s</figcaption>\n", caption);
	buf_printf(b,
		   "<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
		   "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
		   "aria-label=\"%s\">\n",
		   id, CHART_W, CHART_H, CHART_W, CHART_H, caption);
	for (int k = 0; k <= 2; k++) {
		double y = CHART_TOP + ph - ph * k / 2.0;
		axis_label(label, sizeof label, max * k / 2.0, u);
		buf_printf(
		    b,
		    "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
		    "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
		    CHART_LEFT, y, CHART_W - CHART_RIGHT, y, CHART_LEFT - 6, y + 4, label);
	}
	for (int i = 0; i < CHART_HOURS; i++) {
		double h = v[i] > 0 ? ph * v[i] / max : 0;
		double x = CHART_LEFT + slot * i + 1;
		char when[32], hh[8];
		format_time_ms(first + i * HOUR_MS, when);
		memcpy(hh, when + 11, 5);
		hh[5] = '\0';
		axis_label(label, sizeof label, v[i], u);
		buf_printf(
		    b,
		    "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		    "fill=\"%s\"><title>%s UTC: %s %s</title></rect>\n",
		    x, CHART_TOP + ph - h, slot - 2, h, colour, hh, label, what);
		if (i % 6 == 0 || i == CHART_HOURS - 1)
			buf_printf(
			    b,
			    "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">"
			    "%s</text>\n",
			    x + (slot - 2) / 2, CHART_H - 6, i == CHART_HOURS - 1 ? "now" : hh);
	}
	buf_adds(b, "</svg></figure>\n");
}

static const char *const page_style =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2329;"
    "background:#f4f6f8}"
    "header{background:#1d2329;color:#fff;padding:12px 24px}"
    "header h1{margin:0;font-size:20px}header .meta{margin:2px 0 0;color:#b8c2cc;font-size:12px}"
    "main{padding:16px 24px}h2{font-size:16px;margin:20px 0 8px}"
    ".tiles{display:flex;flex-wrap:wrap;gap:10px}"
    ".tile{background:#fff;border:1px solid #dde3e8;border-radius:6px;padding:8px 14px;"
    "min-width:110px}.tile .n{display:block;font-size:22px;font-weight:600}"
    ".tile .l{color:#5b6670;font-size:12px}"
    "table{border-collapse:collapse;background:#fff;border:1px solid #dde3e8;width:100%}"
    "th,td{padding:6px 10px;border-bottom:1px solid #e8edf1;text-align:left;"
    "white-space:nowrap}th{background:#eef2f5;font-weight:600;font-size:12px}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.server td:first-child{border-left:4px solid #999}"
    "tr.st-online td:first-child{border-left-color:#2e7d32}"
    "tr.st-degraded td:first-child{border-left-color:#f9a825}"
    "tr.st-offline td:first-child{border-left-color:#c62828}"
    "tr.st-starting td:first-child{border-left-color:#1565c0}"
    "tr.st-maintenance td:first-child{border-left-color:#546e7a}"
    ".st{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}"
    ".st-online .st{background:#2e7d32}.st-degraded .st{background:#f9a825;color:#1d2329}"
    ".st-offline .st{background:#c62828}.st-maintenance .st{background:#546e7a}"
    ".st-starting .st{background:#1565c0}"
    ".load{display:inline-block;width:70px;height:8px;background:#e8edf1;border-radius:4px;"
    "margin-right:6px;vertical-align:middle}.load span{display:block;height:8px;"
    "border-radius:4px;background:#1565c0}"
    ".dim{color:#8a959e}small{color:#5b6670}"
    "ul.findings{background:#fff;border:1px solid #dde3e8;border-radius:6px;margin:0;"
    "padding:8px 12px 8px 28px}"
    ".sev-critical{color:#b71c1c;font-weight:600}.sev-warning{color:#8a5a00}"
    "figure{display:inline-block;margin:0 16px 16px 0;background:#fff;border:1px solid #dde3e8;"
    "border-radius:6px;padding:8px}figcaption{font-weight:600;font-size:13px;margin:0 0 4px}"
    ".grid{stroke:#e1e6ea}.axis{font-size:10px;fill:#5b6670}"
    "footer{padding:8px 24px 24px;color:#5b6670;font-size:12px}a{color:#1565c0}";

static void tile(struct buf *b, const char *id, const char *value, const char *label)
{
	buf_printf(b, "<div class=\"tile\" id=\"%s\"><span class=\"n\">", id);
	esc(b, value);
	buf_printf(b, "</span><span class=\"l\">%s</span></div>\n", label);
}

static void server_row(struct buf *b, const struct server *s, const struct stats_group *g,
		       int64_t now)
{
	const char *st = server_status(s);
	uint64_t done = g ? stats_group_processed(g) : 0, bad = g ? stats_group_errors(g) : 0;
	char p95[32] = "–";
	if (g && g->run.count)
		fmt_ms(p95, sizeof p95, hist_quantile(&g->run, 0.95));
	int pct = s->max_concurrent > 0 ? 100 * s->current_load / s->max_concurrent : 0;
	if (pct > 100)
		pct = 100;
	buf_printf(b, "<tr class=\"server st-%s\" data-server=\"", st);
	esc(b, s->id);
	buf_printf(b, "\" data-status=\"%s\"><td><strong>", st);
	esc(b, s->id);
	buf_adds(b, "</strong>");
	if (s->name && *s->name && strcmp(s->name, s->id) != 0) {
		buf_adds(b, "<br><small>");
		esc(b, s->name);
		buf_adds(b, "</small>");
	}
	buf_printf(b, "</td><td><span class=\"st\">%s</span></td>", st);
	buf_printf(b, "<td class=\"num\">%d</td>", s->weight);
	buf_printf(b,
		   "<td><span class=\"load\"><span style=\"width:%d%%\"></span></span>%d / %d</td>",
		   pct, s->current_load, s->max_concurrent);
	buf_printf(b, "<td class=\"num\">%d</td><td>", s->health_score);
	ago(b, s->last_health_check, now);
	if (s->last_check.at && !s->last_check.ok && s->last_check.error[0]) {
		buf_adds(b, "<br><small class=\"why\">");
		esc(b, s->last_check.error);
		buf_adds(b, "</small>");
	}
	buf_adds(b, "</td><td>");
	ago(b, s->status_since, now);
	buf_printf(b,
		   "</td><td class=\"num tasks\">%llu</td><td class=\"num errors\">%llu</td>"
		   "<td class=\"num\">%s</td></tr>\n",
		   (unsigned long long)done, (unsigned long long)bad, p95);
}

static void page_head(struct buf *b, int64_t now)
{
	char when[32];
	format_time_ms(now, when);
	buf_printf(b,
		   "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<meta http-equiv=\"refresh\" content=\"30\">"
		   "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
		   "<title>taskgate status</title><style>%s</style></head>\n<body>\n"
		   "<header><h1>taskgate status</h1><p class=\"meta\">%.19s UTC &middot; version "
		   "%s &middot; refreshes every 30 s</p></header>\n<main>\n",
		   page_style, when, TASKGATE_VERSION);
}

static void tiles(struct buf *b, const struct status_view *sv)
{
	const struct statsq_live *live = &sv->live;
	char v[48];
	buf_adds(b, "<section class=\"tiles\" id=\"summary\">\n");
	snprintf(v, sizeof v, "%d", live->online);
	tile(b, "servers-online", v, "servers online");
	snprintf(v, sizeof v, "%d", live->degraded);
	tile(b, "servers-degraded", v, "degraded");
	snprintf(v, sizeof v, "%d", live->starting);
	tile(b, "servers-starting", v, "starting");
	snprintf(v, sizeof v, "%d", live->offline);
	tile(b, "servers-offline", v, "offline");
	snprintf(v, sizeof v, "%d", live->maintenance);
	tile(b, "servers-maintenance", v, "in maintenance");
	snprintf(v, sizeof v, "%zu", live->queue_depth);
	tile(b, "queue-depth", v, "queued tasks");
	if (live->oldest_since)
		findings_duration(sv->now - live->oldest_since, v, sizeof v);
	else
		snprintf(v, sizeof v, "–");
	tile(b, "oldest-wait", v, "oldest wait");
	snprintf(v, sizeof v, "%zu", live->processing);
	tile(b, "processing", v, "processing");
	snprintf(v, sizeof v, "%llu", (unsigned long long)sv->hour.all.n[ST_COMPLETED]);
	tile(b, "completed-1h", v, "completed, last hour");
	snprintf(v, sizeof v, "%llu", (unsigned long long)sv->hour.all.n[ST_FAILED]);
	tile(b, "failed-1h", v, "failed, last hour");
	snprintf(v, sizeof v, "%zu", sv->firing);
	tile(b, "alerts-firing", v, "alerts firing");
	buf_adds(b, "</section>\n");
}

static void findings_list(struct buf *b, const struct status_view *sv)
{
	buf_adds(b, "<h2>Findings, last hour</h2>\n<ul class=\"findings\" id=\"findings\">\n");
	for (size_t i = 0; i < sv->nfindings; i++) {
		buf_printf(b, "<li class=\"sev-%s\">", finding_level_name[sv->findings[i].level]);
		esc(b, sv->findings[i].text);
		buf_adds(b, "</li>\n");
	}
	for (size_t i = 0; i < sv->alerts.n; i++)
		if (sv->alerts.v[i].state == AS_FIRING) {
			buf_adds(b, "<li class=\"sev-warning alert\">alert <strong>");
			esc(b, sv->alerts.v[i].name);
			buf_adds(b, "</strong>: ");
			esc(b, sv->alerts.v[i].message);
			buf_adds(b, "</li>\n");
		}
	buf_adds(b, "</ul>\n");
}

static void servers_table(struct buf *b, const struct status_view *sv)
{
	const struct statsq_live *live = &sv->live;
	buf_adds(b, "<h2>Servers</h2>\n<table id=\"servers\"><thead><tr><th>Server</th>"
		    "<th>Status</th><th>Weight</th><th>Load / capacity</th><th>Health score</th>"
		    "<th>Last check</th><th>Last change</th><th>Tasks, 1 h</th>"
		    "<th>Errors, 1 h</th><th>p95, 1 h</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < live->nservers; i++)
		server_row(b, &live->servers[i], stats_server_c(&sv->hour, live->servers[i].id),
			   sv->now);
	if (live->nservers == 0)
		buf_adds(
		    b, "<tr><td colspan=\"10\" class=\"dim\">no server is registered</td></tr>\n");
	buf_adds(b, "</tbody></table>\n");
}

static void charts(struct buf *b, const struct status_view *sv)
{
	buf_adds(b, "<h2>Last 24 hours</h2>\n<section id=\"charts\">\n");
	chart(b, "chart-throughput", "Throughput: tasks completed per hour", sv->completed,
	      sv->first, U_COUNT, "completed", "#2e7d32");
	chart(b, "chart-failures", "Failures: failed tasks and timed-out attempts per hour",
	      sv->failed, sv->first, U_COUNT, "failed or timed out", "#c62828");
	chart(b, "chart-p95", "p95 processing time per hour", sv->p95, sv->first, U_MS, "p95",
	      "#1565c0");
	buf_adds(b, "</section>\n</main>\n<footer>Figures combine the rolled-up hours with the "
		    "current hour's events. Machine-readable: <a href=\"/metrics\">/metrics</a>, "
		    "<a href=\"/api/v2/stats/performance\">/api/v2/stats/performance</a>, "
		    "<a href=\"/api/v2/alerts\">/api/v2/alerts</a>.</footer>\n</body></html>\n");
}

/* 0 for the admin, else the status of the problem answered. */
static int refuse_unless_admin(struct http_req *rq, struct http_resp *rs)
{
	if (rq->auth == AUTH_ADMIN)
		return 0;
	if (rq->auth == AUTH_CLIENT)
		return http_problem(rs, 403, "Authorization", "the status page needs the admin token");
	return app_unauthorized(rq, rs, "Basic realm=\"taskgate\", charset=\"UTF-8\"",
				"the status page needs the admin token, as 'Authorization: "
				"Bearer <token>' or as the password of HTTP Basic authentication");
}

int api_status_page(struct http_req *rq, struct http_resp *rs)
{
	int st = refuse_unless_admin(rq, rs);
	if (st)
		return st;
	struct status_view sv;
	status_view_load(&sv, now_ms());
	struct buf *b = &rs->body;
	buf_reset(b);
	page_head(b, sv.now);
	tiles(b, &sv);
	findings_list(b, &sv);
	servers_table(b, &sv);
	charts(b, &sv);
	status_view_free(&sv);

	rs->status = 200;
	rs->content_type = "text/html; charset=utf-8";
	http_header(rs, "Cache-Control", "no-store");
	http_header(rs, "X-Frame-Options", "DENY");
	http_header(rs, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
	return 200;
}
