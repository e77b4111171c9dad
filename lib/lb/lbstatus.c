#include "lb/lbstatus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hour.h"
#include "base/util.h"
#include "lb/lbstate.h"

static double round2(double v)
{
	return round(v * 100.0) / 100.0;
}

static void weight_parts(struct jgen *g, const struct lb_weight *w)
{
	jg_key(g, "weightFactors");
	jg_obj(g);
	jg_knum(g, "health", round2(w->health));
	jg_knum(g, "success", round2(w->success));
	jg_knum(g, "latency", round2(w->latency));
	jg_knum(g, "slowStart", round2(w->slow_start));
	jg_obj_end(g);
}

/* Why s cannot take a task like want now, for an operator. */
static void why_not(const struct server *s, enum lb_verdict v, const struct lb_task *want,
		    char *out, size_t n)
{
	char since[32];
	format_time_ms(s->status_since, since);
	switch (v) {
	case LB_MAINTENANCE:
		snprintf(out, n, "in maintenance since %s: running tasks finish, no new ones",
			 since);
		break;
	case LB_OFFLINE:
		snprintf(out, n, "offline since %s", since);
		break;
	case LB_STARTING:
		snprintf(out, n, "starting since %s: no good health check yet", since);
		break;
	case LB_MODEL:
		snprintf(out, n, "does not serve the model '%s'", want->model);
		break;
	case LB_GROUP:
		snprintf(out, n, "not in the group '%s'", want->group);
		break;
	case LB_FULL:
		snprintf(out, n, "full: %d of %d slots taken", s->current_load, s->max_concurrent);
		break;
	default:
		snprintf(out, n, "%s", lb_verdict_text(v));
		break;
	}
}

static void server_entry(struct jgen *g, const struct server *s, const struct lb_config *cfg,
			 const struct lb_stats *stats, double ref, int64_t now,
			 const struct lb_task *want, const struct lb_distribution *d, bool *eligible)
{
	const struct lb_server_stats *st = lb_stats_find(stats, s->id);
	struct lb_weight w;
	lb_server_weight(s, cfg, st, ref, now, &w);
	enum lb_verdict v = lb_eligible(s, want);
	*eligible = v == LB_OK;
	long count = lb_distribution_count(d, s->id);

	jg_obj(g);
	jg_kstr(g, "id", s->id);
	jg_kstr(g, "name", s->name);
	jg_kstr(g, "status", server_status(s));
	jg_kint(g, "statusSince", s->status_since);
	jg_kbool(g, "eligible", *eligible);
	jg_key(g, "reason");
	if (*eligible) {
		jg_null(g);
	} else {
		char why[256];
		why_not(s, v, want, why, sizeof why);
		jg_str(g, why);
	}
	jg_kint(g, "weight", s->weight);
	jg_knum(g, "effectiveWeight", round2((double)w.effective / LB_WEIGHT_SCALE));
	weight_parts(g, &w);
	jg_kint(g, "currentLoad", s->current_load);
	jg_kint(g, "maxConcurrent", s->max_concurrent);
	jg_key(g, "responseTimeEwmaMs"); /* dispatch to result, learnt from the event log */
	if (st && st->ewma_ms > 0)
		jg_num(g, round2(st->ewma_ms));
	else
		jg_null(g);
	if (st && st->nmodels) {
		jg_key(g, "modelEwmaMs");
		jg_obj(g);
		for (size_t m = 0; m < st->nmodels; m++)
			jg_knum(g, st->models[m].model, round2(st->models[m].ewma_ms));
		jg_obj_end(g);
	}
	jg_knum(g, "healthCheckEwmaMs", round2(s->ewma_ms));
	jg_kint(g, "healthScore", s->health_score);
	jg_key(g, "successRate");
	if (st && st->ok + st->fail >= 3)
		jg_num(g, round2(st->ok / (st->ok + st->fail)));
	else
		jg_null(g);
	jg_kint(g, "tasksLastHour", count);
	jg_knum(g, "share", d->total ? round2((double)count / (double)d->total) : 0);
	jg_obj_end(g);
}

static void distribution_doc(struct jgen *g, const struct lb_distribution *d)
{
	jg_key(g, "distribution");
	jg_obj(g);
	jg_kint(g, "windowSeconds", (d->to - d->from + 999) / 1000);
	jg_kint(g, "from", d->from);
	jg_kint(g, "to", d->to);
	jg_kbool(g, "partial", d->partial);
	jg_kint(g, "total", d->total);
	jg_key(g, "servers");
	jg_arr(g);
	for (size_t i = 0; i < d->n; i++) {
		jg_obj(g);
		jg_kstr(g, "id", d->v[i].id);
		jg_kint(g, "count", d->v[i].count);
		jg_knum(g, "share", round2((double)d->v[i].count / (double)d->total));
		jg_obj_end(g);
	}
	jg_arr_end(g);
	jg_obj_end(g);
}

void lb_status_doc(const struct lb_task *want, struct jgen *g)
{
	struct lb_config cfg;
	lb_config_load(&cfg);
	lb_stats_fold(LB_FOLD_EVERY_MS, LB_FOLD_BUDGET);
	const struct lb_stats *stats = lb_stats_get();
	struct server *v;
	size_t n = lb_servers_load(&v);
	int64_t now = now_ms();
	struct lb_distribution d;
	lb_distribution(now, HOUR_MS, &d);
	double ref = lb_fleet_ewma(v, n, stats);

	jg_obj(g);
	jg_kstr(g, "algorithm", lb_algorithm_name(cfg.algorithm));
	jg_key(g, "config");
	lb_config_to_json(&cfg, g);
	jg_kint(g, "generatedAt", now);
	jg_key(g, "servers");
	jg_arr(g);
	size_t eligible = 0, up = 0;
	for (size_t i = 0; i < n; i++) {
		bool ok;
		server_entry(g, &v[i], &cfg, stats, ref, now, want, &d, &ok);
		eligible += ok;
		up += !v[i].maintenance && server_health_routable(v[i].health);
	}
	jg_arr_end(g);
	jg_key(g, "summary");
	jg_obj(g);
	jg_kint(g, "servers", (long long)n);
	jg_kint(g, "routable", (long long)up);
	jg_kint(g, "eligible", (long long)eligible);
	/* The design's panic signal: say it loudly rather than queue silently. */
	jg_key(g, "warning");
	if (n == 0)
		jg_str(g, "no servers are registered: every task waits in the queue");
	else if (up == 0)
		jg_str(g, "no server is routable (all offline or in maintenance): tasks queue");
	else if (eligible == 0)
		jg_str(g, "every routable server is full or unsuitable: tasks queue");
	else
		jg_null(g);
	jg_obj_end(g);
	distribution_doc(g, &d);
	jg_obj_end(g);
	lb_distribution_free(&d);
	lb_servers_free(v, n);
}

static void from_to_weight(struct jgen *g, int from, int to)
{
	jg_key(g, "effectiveWeight");
	jg_obj(g);
	jg_key(g, "from");
	if (from)
		jg_num(g, round2((double)from / LB_WEIGHT_SCALE));
	else
		jg_null(g); /* never computed before */
	jg_knum(g, "to", round2((double)to / LB_WEIGHT_SCALE));
	jg_obj_end(g);
}

void lb_rebalance_doc(const struct lb_rebalance *r, struct jgen *g)
{
	jg_obj(g);
	jg_kint(g, "tookMs", r->took_ms);
	jg_kint(g, "loadCorrections", r->loads_corrected);
	jg_kint(g, "weightsChanged", r->weights_changed);
	jg_key(g, "changed");
	jg_arr(g);
	for (size_t i = 0; i < r->n; i++) {
		const struct lb_rebalance_item *it = &r->v[i];
		if (it->eff_before == it->eff_after && it->load_before == it->load_after)
			continue;
		jg_obj(g);
		jg_kstr(g, "id", it->id);
		if (it->eff_before != it->eff_after)
			from_to_weight(g, it->eff_before, it->eff_after);
		if (it->load_before != it->load_after) {
			jg_key(g, "currentLoad");
			jg_obj(g);
			jg_kint(g, "from", it->load_before);
			jg_kint(g, "to", it->load_after);
			jg_obj_end(g);
		}
		jg_obj_end(g);
	}
	jg_arr_end(g);
	jg_key(g, "servers");
	jg_arr(g);
	for (size_t i = 0; i < r->n; i++) {
		const struct lb_rebalance_item *it = &r->v[i];
		jg_obj(g);
		jg_kstr(g, "id", it->id);
		jg_kint(g, "weight", it->weight);
		jg_knum(g, "effectiveWeight", round2((double)it->eff_after / LB_WEIGHT_SCALE));
		weight_parts(g, &it->parts);
		jg_kint(g, "currentLoad", it->load_after);
		jg_obj_end(g);
	}
	jg_arr_end(g);
	jg_obj_end(g);
}
