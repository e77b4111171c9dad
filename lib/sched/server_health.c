#include "sched/server_health.h"

#include <math.h>
#include <stdio.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "model/config.h"
#include "stats/events.h"

/* ---- settings ---- */

static int64_t sect_seconds_ms(const char *key, int64_t fallback_ms, double min_s, double max_s)
{
	double s = config_sect_num("health", key, (double)fallback_ms / 1000.0, min_s, max_s);
	return (int64_t)llround(s * 1000.0);
}

void health_cfg_load(struct health_cfg *c)
{
	health_cfg_defaults(c);
	c->rise = (int)config_sect_int("health", "rise", c->rise, 1, 100);
	c->fall = (int)config_sect_int("health", "fall", c->fall, 1, 100);
	c->inter_ms = sect_seconds_ms("inter", c->inter_ms, 0.1, 86400);
	/* The seed's LoadBalancerConfig.healthCheckInterval, once an operator has set
	 * the load balancer's config (PUT /api/v2/loadbalancer/config), is the base
	 * interval; until then config.json's health.inter is. */
	yajl_val lb = NULL;
	long long every_s;
	if (store_load(STORE_ROOT, "lb", &lb) == STORE_OK &&
	    json_get_int(lb, "healthCheckInterval", &every_s) == JSON_OK && every_s >= 1 &&
	    every_s <= 3600)
		c->inter_ms = (int64_t)every_s * 1000;
	if (lb)
		yajl_tree_free(lb);
	c->fastinter_ms = sect_seconds_ms("fastinter", c->fastinter_ms, 0.1, 86400);
	c->downinter_ms = sect_seconds_ms("downinter", c->downinter_ms, 0.1, 86400);
	c->max_inter_ms = sect_seconds_ms("maxInter", c->max_inter_ms, 0.1, 86400);
	if (c->max_inter_ms < c->inter_ms)
		c->max_inter_ms = c->inter_ms;
	c->timeout_ms = (long)config_sect_int("health", "timeoutMs", c->timeout_ms, 100, 60000);
	c->connect_timeout_ms =
	    (long)config_sect_int("health", "connectTimeoutMs", c->connect_timeout_ms, 50, 60000);
	if (c->connect_timeout_ms > c->timeout_ms)
		c->connect_timeout_ms = c->timeout_ms;
	c->degraded_ms = (long)config_sect_int("health", "degradedMs", c->degraded_ms, 1, 600000);
	c->setup_grace_ms = sect_seconds_ms("setupGraceSeconds", c->setup_grace_ms, 0, 86400);
	/* The registration answer waits for its probe: keep it well inside the
	 * front ends' patience (mod_fcgid's 40 s). */
	c->register_timeout_ms = (long)config_sect_int("health", "registrationTimeoutMs",
						       c->register_timeout_ms, 100, 10000);
}

/* ---- the change hook ---- */

static health_change_fn *global_hook;
static void *global_hook_arg;

void health_set_change_hook(health_change_fn *fn, void *arg)
{
	global_hook = fn;
	global_hook_arg = arg;
}

static void report_change(const char *id, enum server_health from, enum server_health to,
			  const char *why, health_change_fn *fn, void *arg)
{
	if (why && *why)
		log_info("server %s %s -> %s (%s)", id, server_health_name(from),
			 server_health_name(to), why);
	else
		log_info("server %s %s -> %s", id, server_health_name(from),
			 server_health_name(to));
	events_server(id, server_health_name(from), server_health_name(to));
	if (fn)
		fn(id, from, to, arg);
}

/* ---- updating one server ---- */

struct apply_ctx {
	const struct health_cfg *cfg;
	struct health_outcome out;
	enum server_health from, to;
};

static int apply_edit(struct server *s, void *arg)
{
	struct apply_ctx *a = arg;
	/* Snapshot of what a passive pass could leave unchanged. */
	int counter = health_counter_normalize(s->check_counter, server_health_routable(s->health),
					       a->cfg->rise, a->cfg->fall);
	int failures = s->consecutive_failures;
	int score = s->health_score;
	int64_t next = s->next_check_at;
	enum server_health health = s->health;

	a->from = health_apply(a->cfg, s, &a->out);
	a->to = s->health;
	/* Dispatch success is the common case; do not rewrite the file for nothing.
	 * (lastSuccessAt is a health-check fact: a passive pass alone does not need
	 * to be written.) */
	if (a->out.passive && counter == s->check_counter && failures == s->consecutive_failures &&
	    score == s->health_score && next == s->next_check_at && health == s->health)
		return STORE_UNCHANGED;
	return STORE_OK;
}

int health_record_passive(const char *server_id, bool success, long long elapsed_ms)
{
	struct health_cfg cfg;
	health_cfg_load(&cfg);
	struct apply_ctx a = {
	    .cfg = &cfg,
	    .out = {.verdict = success ? HV_PASS : HV_FAIL,
		    .answered = false,
		    .elapsed_ms = (double)elapsed_ms,
		    .at_ms = now_ms(),
		    .passive = true},
	};
	int rc = server_update(server_id, apply_edit, &a, NULL);
	if (rc == STORE_UNCHANGED)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (a.from != a.to)
		report_change(server_id, a.from, a.to,
			      success ? "dispatch succeeded" : "dispatch failed", global_hook,
			      global_hook_arg);
	return STORE_OK;
}

int health_record_probe(const char *server_id, const struct health_cfg *c,
			const struct health_outcome *o, const char *why, health_change_fn *fn,
			void *fn_arg, struct server *after, bool *changed)
{
	struct apply_ctx a = {.cfg = c, .out = *o};
	a.out.why = why;
	*changed = false;
	int rc = server_update(server_id, apply_edit, &a, after);
	if (rc != STORE_OK)
		return rc;
	if (a.from != a.to) {
		*changed = true;
		report_change(server_id, a.from, a.to, why, fn ? fn : global_hook,
			      fn ? fn_arg : global_hook_arg);
	}
	return STORE_OK;
}
