#include "stats/findings.h"
#include "base/hour.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/server.h"
#include "stats/failrule.h"
#include "base/util.h"

const char *const finding_level_name[3] = {"info", "warning", "critical"};

struct list {
	struct finding *v;
	size_t n, cap;
};

static void add(struct list *l, enum finding_level level, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(struct list *l, enum finding_level level, const char *subject, const char *fmt, ...)
{
	l->v = array_grow(l->v, l->n, &l->cap, sizeof *l->v, 8);
	struct finding *f = &l->v[l->n++];
	memset(f, 0, sizeof *f);
	f->level = level;
	snprintf(f->subject, sizeof f->subject, "%s", subject ? subject : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof f->text, fmt, ap);
	va_end(ap);
}

void findings_window_phrase(int64_t window_ms, char *out, size_t n)
{
	if (window_ms == HOUR_MS)
		snprintf(out, n, "in the last hour");
	else if (window_ms % HOUR_MS == 0)
		snprintf(out, n, "in the last %lld hours", (long long)(window_ms / HOUR_MS));
	else if (window_ms == 60000)
		snprintf(out, n, "in the last minute");
	else
		snprintf(out, n, "in the last %lld minutes", (long long)(window_ms / 60000));
}

void findings_duration(int64_t ms, char *out, size_t n)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(out, n, "%lld ms", (long long)ms);
	else if (ms < 120000)
		snprintf(out, n, "%.3g s", (double)ms / 1000.0);
	else if (ms < 2 * HOUR_MS)
		snprintf(out, n, "%lld min", (long long)(ms / 60000));
	else
		snprintf(out, n, "%.1f h", (double)ms / (double)HOUR_MS);
}

static int pct(uint64_t part, uint64_t whole)
{
	return whole ? (int)lround(100.0 * (double)part / (double)whole) : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Critical first, then warnings, then notes; stable within a level. */
static void sort_by_level(struct finding *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct finding f = v[i];
		size_t j = i;
		while (j > 0 && v[j - 1].level < f.level) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = f;
	}
}

/* What a pass over the inputs shares: the list and the window's phrase. */
struct pass {
	struct list l;
	const struct findings_input *in;
	char phrase[64];
	int min_tasks;
	double fail_pct;
};

static void find_no_servers(struct pass *p)
{
	const struct statsq_live *live = p->in->live;
	if (!live)
		return;
	int routable = 0;
	for (size_t i = 0; i < live->nservers; i++)
		routable += statsq_server_routable(&live->servers[i]);
	if (live->nservers == 0)
		add(&p->l, FINDING_WARNING, NULL, "no server is registered: tasks wait in the queue");
	else if (routable == 0)
		add(&p->l, FINDING_CRITICAL, NULL,
		    "no server is healthy (%zu registered): tasks wait in the queue",
		    live->nservers);
}

/* Queued tasks no registered server could take, as the sweep last found them. */
static void find_unservable(struct pass *p)
{
	const struct statsq_live *live = p->in->live;
	if (!live)
		return;
	const struct unservable *u = &live->unservable;
	int named = 0;
	for (size_t i = 0; i < u->n; i++) {
		const struct unservable_want *w = &u->v[i];
		add(&p->l, FINDING_WARNING, w->model, "%d task%s want%s %s", w->tasks,
		    w->tasks == 1 ? "" : "s", w->tasks == 1 ? "s" : "", w->text);
		named += w->tasks;
	}
	if (u->tasks > named)
		add(&p->l, FINDING_WARNING, NULL,
		    "%d more queued tasks want what no registered server offers", u->tasks - named);
}

/* Servers by their attempts, models by their tasks (see stats/failrule.h). */
static void find_failures(struct pass *p)
{
	const struct stats_agg *win = p->in->win;
	struct failrule rule = {.unit = FAILRULE_ATTEMPTS,
				.min_finished = (uint64_t)p->min_tasks,
				.threshold_pct = p->fail_pct,
				.at_threshold = true};
	struct failrate fr;
	for (size_t i = 0; i < win->nservers; i++) {
		const struct stats_group *g = &win->servers[i];
		failrule_eval(&rule, g, &fr);
		if (fr.breached)
			add(&p->l, fr.pct >= 50 ? FINDING_CRITICAL : FINDING_WARNING, g->name,
			    "%s failed %d%% of its tasks %s (%llu of %llu)", g->name,
			    pct(fr.failed, fr.finished), p->phrase, (unsigned long long)fr.failed,
			    (unsigned long long)fr.finished);
	}
	rule.unit = FAILRULE_TASKS;
	for (size_t i = 0; i < win->nmodels; i++) {
		const struct stats_group *g = &win->models[i];
		failrule_eval(&rule, g, &fr);
		if (fr.breached)
			add(&p->l, fr.pct >= 50 ? FINDING_CRITICAL : FINDING_WARNING, g->name,
			    "model %s: %d%% of its tasks failed %s (%llu of %llu)", g->name,
			    pct(fr.failed, fr.finished), p->phrase, (unsigned long long)fr.failed,
			    (unsigned long long)fr.finished);
	}
}

static void find_unhealthy(struct pass *p)
{
	const struct statsq_live *live = p->in->live;
	char d[32];
	for (size_t i = 0; live && i < live->nservers; i++) {
		const struct server *s = &live->servers[i];
		if (s->maintenance)
			continue;
		findings_duration(s->status_since ? p->in->now - s->status_since : 0, d, sizeof d);
		if (s->health == HEALTH_OFFLINE)
			add(&p->l, FINDING_WARNING, s->id, "%s is offline%s%s", s->id,
			    s->status_since ? " for " : "", s->status_since ? d : "");
		else if (s->health == HEALTH_DEGRADED)
			add(&p->l, FINDING_INFO, s->id, "%s is degraded (slow or erroring)%s%s",
			    s->id, s->status_since ? " for " : "", s->status_since ? d : "");
		else if (s->health == HEALTH_STARTING)
			add(&p->l, FINDING_INFO, s->id,
			    "%s is starting (no good health check yet)%s%s: it takes no tasks",
			    s->id, s->status_since ? " for " : "", s->status_since ? d : "");
	}
}

static void find_waiting(struct pass *p)
{
	const struct statsq_live *live = p->in->live;
	char d[32];
	if (live && live->oldest_since && p->in->now - live->oldest_since > 300000) {
		findings_duration(p->in->now - live->oldest_since, d, sizeof d);
		add(&p->l, FINDING_WARNING, NULL,
		    "the oldest queued task has waited %s for a server (%zu queued)", d,
		    live->queue_depth);
	}
	if (p->in->win->all.wait.count) {
		double p95 = hist_quantile(&p->in->win->all.wait, 0.95);
		if (p95 > 60000) {
			findings_duration((int64_t)p95, d, sizeof d);
			add(&p->l, FINDING_INFO, NULL, "tasks waited up to %s for a server %s (p95)",
			    d, p->phrase);
		}
	}
}

/* Slow servers: against the median of the servers' p95 run times. */
static void find_slow(struct pass *p)
{
	const struct stats_agg *win = p->in->win;
	double *p95s = calloc(win->nservers + 1, sizeof *p95s);
	if (!p95s)
		abort();
	size_t np = 0;
	for (size_t i = 0; i < win->nservers; i++)
		if (win->servers[i].run.count >= (uint64_t)p->min_tasks)
			p95s[np++] = hist_quantile(&win->servers[i].run, 0.95);
	if (np < 2)
		goto out;
	qsort(p95s, np, sizeof *p95s, cmp_double);
	double median = np % 2 ? p95s[np / 2] : (p95s[np / 2 - 1] + p95s[np / 2]) / 2;
	for (size_t i = 0; i < win->nservers; i++) {
		const struct stats_group *g = &win->servers[i];
		if (g->run.count < (uint64_t)p->min_tasks)
			continue;
		double q = hist_quantile(&g->run, 0.95);
		if (median > 0 && q > 2 * median) {
			char d1[32], d2[32];
			findings_duration((int64_t)q, d1, sizeof d1);
			findings_duration((int64_t)median, d2, sizeof d2);
			add(&p->l, FINDING_INFO, g->name,
			    "%s is slow: p95 run time %s against a median of %s across servers",
			    g->name, d1, d2);
		}
	}
out:
	free(p95s);
}

static void find_throughput_drop(struct pass *p)
{
	if (!p->in->prev)
		return;
	uint64_t before = p->in->prev->all.n[ST_COMPLETED], now = p->in->win->all.n[ST_COMPLETED];
	if (before >= 10 && now * 2 <= before)
		add(&p->l, FINDING_INFO, NULL,
		    "throughput fell %d%%: %llu tasks completed %s against %llu in the window "
		    "before",
		    pct(before - now, before), (unsigned long long)now, p->phrase,
		    (unsigned long long)before);
}

size_t findings_build(const struct findings_input *in, struct finding **out)
{
	struct pass p = {.in = in,
			 .min_tasks = in->min_tasks > 0 ? in->min_tasks : 5,
			 .fail_pct = in->failure_pct > 0 ? in->failure_pct : 20};
	findings_window_phrase(in->window_ms, p.phrase, sizeof p.phrase);
	find_no_servers(&p);
	find_unservable(&p);
	find_failures(&p);
	find_unhealthy(&p);
	find_waiting(&p);
	find_slow(&p);
	find_throughput_drop(&p);
	if (p.l.n == 0)
		add(&p.l, FINDING_INFO, NULL, "no problems found %s", p.phrase);
	sort_by_level(p.l.v, p.l.n);
	*out = p.l.v;
	return p.l.n;
}
