#include "stats/alerts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_client.h"
#include "model/config.h"
#include "fs/statsfile.h"
#include "base/log.h"
#include "model/server.h"
#include "stats/failrule.h"
#include "stats/stats.h"
#include "stats/statsq.h"
#include "fs/store.h"
#include "base/util.h"

const char *const alert_kind_name[AK_COUNT] = {"failure_rate", "server_offline", "queue_depth",
					       "oldest_queued", "no_healthy_server",
					       "unservable_tasks"};
const char *const alert_state_name[4] = {"none", "pending", "firing", "resolved"};

static const double default_threshold[AK_COUNT] = {20, 0, 100, 300, 0, 0};
static const int default_window[AK_COUNT] = {15, 0, 0, 0, 0, 0};

#define WINDOW_MAX_MIN 10080 /* a week */

static const struct json_limits state_limits = {
    .max_bytes = 8u << 20, .max_depth = 8, .max_string = 4096};

/* ---- rules ---- */

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_' || c == '.'));
		if (!ok)
			return false;
	}
	return true;
}

static int kind_from_name(const char *s)
{
	for (int i = 0; s && i < AK_COUNT; i++)
		if (strcmp(s, alert_kind_name[i]) == 0)
			return i;
	return -1;
}

/* One rule; false (reason in why) when it is not usable. */
static bool rule_parse(yajl_val v, struct alert_rule *r, const char **why)
{
	const char *s;
	long long n;
	double d;
	memset(r, 0, sizeof *r);
	if (!v || !YAJL_IS_OBJECT(v))
		return *why = "is not an object", false;
	if (json_get_str(v, "name", &s) != JSON_OK || !name_ok(s))
		return *why = "name must be 1 to 64 letters, digits, '-', '_' or '.'", false;
	snprintf(r->name, sizeof r->name, "%s", s);
	int k = kind_from_name(json_str_or(v, "kind", ""));
	if (k < 0)
		return *why = "kind must be failure_rate, server_offline, queue_depth, "
			      "oldest_queued, no_healthy_server or unservable_tasks",
		       false;
	r->kind = (enum alert_kind)k;
	r->threshold = default_threshold[k];
	int rc = json_get_num(v, "threshold", &d);
	if (rc == JSON_WRONG_TYPE || (rc == JSON_OK && (!isfinite(d) || d < 0)))
		return *why = "threshold must be a number >= 0", false;
	if (rc == JSON_OK)
		r->threshold = d;
	r->window_min = default_window[k];
	rc = json_get_int(v, "windowMinutes", &n);
	if (rc == JSON_WRONG_TYPE || (rc == JSON_OK && (n < 0 || n > WINDOW_MAX_MIN)))
		return *why = "windowMinutes must be an integer from 0 to 10080", false;
	if (rc == JSON_OK)
		r->window_min = (int)n;
	if (r->kind == AK_FAILURE_RATE && r->window_min < 1)
		return *why = "a failure_rate rule needs windowMinutes >= 1", false;
	r->min_tasks = 5;
	rc = json_get_int(v, "minTasks", &n);
	if (rc == JSON_WRONG_TYPE || (rc == JSON_OK && (n < 1 || n > 1000000)))
		return *why = "minTasks must be an integer from 1 to 1000000", false;
	if (rc == JSON_OK)
		r->min_tasks = (int)n;
	rc = json_get_str(v, "model", &s);
	if (rc == JSON_WRONG_TYPE || (rc == JSON_OK && (!*s || strlen(s) > 128)))
		return *why = "model must be a string of 1 to 128 bytes", false;
	if (rc == JSON_OK)
		snprintf(r->model, sizeof r->model, "%s", s);
	rc = json_get_str(v, "server", &s);
	if (rc == JSON_WRONG_TYPE || (rc == JSON_OK && !store_id_valid(s)))
		return *why = "server must be a server id", false;
	if (rc == JSON_OK)
		snprintf(r->server, sizeof r->server, "%s", s);
	return true;
}

size_t alerts_rules_parse(yajl_val arr, struct alert_rule **out, struct buf *errors)
{
	*out = NULL;
	if (!arr)
		return 0;
	if (!YAJL_IS_ARRAY(arr)) {
		if (errors)
			buf_adds(errors, "config.json: \"alerts\" must be an array\n");
		return 0;
	}
	size_t len = arr->u.array.len, n = 0;
	if (len > ALERTS_MAX_RULES) {
		if (errors)
			buf_printf(errors, "config.json: only the first %d alert rules are used\n",
				   ALERTS_MAX_RULES);
		len = ALERTS_MAX_RULES;
	}
	struct alert_rule *v = calloc(len + 1, sizeof *v);
	if (!v)
		abort();
	for (size_t i = 0; i < len; i++) {
		const char *why = NULL;
		bool ok = rule_parse(arr->u.array.values[i], &v[n], &why);
		for (size_t j = 0; ok && j < n; j++)
			if (strcmp(v[j].name, v[n].name) == 0) {
				ok = false;
				why = "repeats the name of an earlier rule";
			}
		if (ok)
			n++;
		else if (errors)
			buf_printf(errors, "config.json: alerts[%zu]: %s\n", i, why);
	}
	*out = v;
	return n;
}

size_t alerts_rules_load(struct alert_rule **out, struct buf *errors)
{
	size_t n = alerts_rules_parse(json_get(config_doc(), "alerts"), out, errors);
	for (size_t i = 0; i < n; i++)
		if ((*out)[i].kind == AK_UNSERVABLE_TASKS ||
		    strcmp((*out)[i].name, ALERTS_BUILTIN_UNSERVABLE) == 0)
			return n;
	/* Tasks nobody can ever take are an operator's problem on every tree, alerts
	 * configured or not: the rule is built in unless the config has its own. */
	struct alert_rule *v = realloc(*out, (n + 1) * sizeof *v);
	if (!v)
		abort();
	memset(&v[n], 0, sizeof v[n]);
	snprintf(v[n].name, sizeof v[n].name, "%s", ALERTS_BUILTIN_UNSERVABLE);
	v[n].kind = AK_UNSERVABLE_TASKS;
	v[n].threshold = default_threshold[AK_UNSERVABLE_TASKS];
	v[n].min_tasks = 5;
	*out = v;
	return n + 1;
}

/* ---- state ---- */

void alerts_state_free(struct alerts_state *s)
{
	free(s->v);
	free(s->hist);
	memset(s, 0, sizeof *s);
}

struct inst_key {
	const char *name, *subject;
};

static int inst_cmp(const void *key, const void *elem)
{
	const struct inst_key *k = key;
	const struct alert_inst *x = elem;
	int c = strcmp(k->name, x->name);
	return c ? c : strcmp(k->subject, x->subject);
}

static struct alert_inst *inst_get(struct alerts_state *s, const char *name, const char *subject,
				   bool create)
{
	bool found;
	struct inst_key key = {name, subject};
	size_t at = array_search(&key, s->v, s->n, sizeof *s->v, inst_cmp, &found);
	if (found)
		return &s->v[at];
	if (!create)
		return NULL;
	s->v = array_insert(s->v, &s->n, &s->cap, sizeof *s->v, at, 8);
	struct alert_inst *a = &s->v[at];
	snprintf(a->name, sizeof a->name, "%s", name);
	snprintf(a->subject, sizeof a->subject, "%s", subject);
	return a;
}

static void inst_del(struct alerts_state *s, struct alert_inst *a)
{
	size_t i = (size_t)(a - s->v);
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
	s->n--;
}

static void history_push(struct alerts_state *s, const struct alert_inst *a, int64_t now)
{
	if (s->nhist == ALERTS_HISTORY) {
		memmove(&s->hist[0], &s->hist[1], (ALERTS_HISTORY - 1) * sizeof *s->hist);
		s->nhist--;
	}
	if (!s->hist) {
		s->hist = calloc(ALERTS_HISTORY, sizeof *s->hist);
		if (!s->hist)
			abort();
	}
	struct alert_change *c = &s->hist[s->nhist++];
	memset(c, 0, sizeof *c);
	c->at = now;
	snprintf(c->name, sizeof c->name, "%s", a->name);
	snprintf(c->subject, sizeof c->subject, "%s", a->subject);
	c->state = a->state;
	c->value = a->value;
	snprintf(c->message, sizeof c->message, "%s", a->message);
}

static void fire(struct alerts_state *s, struct alert_inst *a, const struct alert_rule *rule,
		 const struct alert_obs *o, int64_t now, struct alerts_result *r)
{
	a->state = AS_FIRING;
	a->fired_at = now;
	a->resolved_at = 0;
	a->value = o->value;
	a->threshold = rule->threshold;
	snprintf(a->message, sizeof a->message, "%s", o->message);
	a->tries = 0;
	history_push(s, a, now);
	if (r)
		r->fired++;
}

static void resolve(struct alerts_state *s, struct alert_inst *a, const struct alert_obs *o,
		    const char *why, int64_t now, struct alerts_result *r)
{
	a->state = AS_RESOLVED;
	a->resolved_at = now;
	if (o) {
		a->value = o->value;
		snprintf(a->message, sizeof a->message, "resolved: %s", o->message);
	} else {
		snprintf(a->message, sizeof a->message, "resolved: %s", why);
	}
	a->tries = 0;
	history_push(s, a, now);
	if (r)
		r->resolved++;
}

int alerts_apply(struct alerts_state *s, const struct alert_rule *rule, const struct alert_obs *obs,
		 size_t nobs, int64_t now, struct alerts_result *r)
{
	int changes = 0;
	int64_t hold = rule->kind == AK_FAILURE_RATE ? 0 : (int64_t)rule->window_min * 60000;
	for (size_t i = 0; i < nobs; i++) {
		const struct alert_obs *o = &obs[i];
		struct alert_inst *a = inst_get(s, rule->name, o->subject, o->active);
		if (!a)
			continue;
		a->kind = rule->kind;
		if (o->active) {
			if (a->state == AS_FIRING)
				continue;
			if (a->state != AS_PENDING) {
				a->since = o->since > 0 && o->since <= now ? o->since : now;
				a->state = AS_PENDING;
				a->value = o->value;
				a->threshold = rule->threshold;
				snprintf(a->message, sizeof a->message, "%s", o->message);
				changes++;
			}
			if (now - a->since >= hold) {
				fire(s, a, rule, o, now, r);
				changes++;
			}
		} else if (a->state == AS_FIRING) {
			resolve(s, a, o, NULL, now, r);
			changes++;
		} else if (a->state == AS_PENDING) {
			inst_del(s, a);
			changes++;
		}
	}
	/* Subjects the rule did not report (a server that came back is not offline). */
	for (size_t i = 0; i < s->n;) {
		struct alert_inst *a = &s->v[i];
		bool seen = strcmp(a->name, rule->name) != 0;
		for (size_t j = 0; j < nobs && !seen; j++)
			seen = strcmp(obs[j].subject, a->subject) == 0;
		if (!seen && a->state == AS_FIRING) {
			resolve(s, a, NULL, "the condition no longer holds", now, r);
			changes++;
		} else if (!seen && a->state == AS_PENDING) {
			inst_del(s, a);
			changes++;
			continue;
		}
		i++;
	}
	return changes;
}

int alerts_retire(struct alerts_state *s, const struct alert_rule *rules, size_t nrules,
		  int64_t now, struct alerts_result *r)
{
	int changes = 0;
	for (size_t i = 0; i < s->n;) {
		struct alert_inst *a = &s->v[i];
		bool known = false;
		for (size_t j = 0; j < nrules && !known; j++)
			known = strcmp(rules[j].name, a->name) == 0 && rules[j].kind == a->kind;
		if (!known && a->state == AS_FIRING) {
			resolve(s, a, NULL, "the rule was removed from config.json", now, r);
			changes++;
		} else if ((!known && a->state == AS_PENDING) ||
			   (a->state == AS_RESOLVED &&
			    now - a->resolved_at > ALERTS_KEEP_RESOLVED_MS)) {
			inst_del(s, a);
			changes++;
			continue;
		}
		i++;
	}
	return changes;
}

size_t alerts_count(const struct alerts_state *s, enum alert_state st)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += s->v[i].state == st;
	return n;
}

static int state_from_name(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, alert_state_name[i]) == 0)
			return i;
	return AS_NONE;
}

int alerts_state_load(struct alerts_state *s)
{
	struct buf text = BUF_INIT;
	memset(s, 0, sizeof *s);
	int rc = statsfile_read("alerts.json", 0, state_limits.max_bytes, &text, NULL);
	if (rc != STORE_OK) {
		buf_free(&text);
		return rc;
	}
	yajl_val doc = json_parse(text.data ? text.data : "", text.len, &state_limits, NULL);
	buf_free(&text);
	if (!doc || !YAJL_IS_OBJECT(doc)) {
		if (doc)
			yajl_tree_free(doc);
		log_error("alerts: stats/alerts.json does not parse; starting afresh");
		return STORE_CORRUPT;
	}
	yajl_val arr = json_get(doc, "alerts");
	for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
		yajl_val v = arr->u.array.values[i];
		const char *name = json_str_or(v, "name", "");
		if (!name_ok(name))
			continue;
		struct alert_inst *a = inst_get(s, name, json_str_or(v, "subject", ""), true);
		int k = kind_from_name(json_str_or(v, "kind", ""));
		a->kind = k >= 0 ? (enum alert_kind)k : AK_FAILURE_RATE;
		a->state = (enum alert_state)state_from_name(json_str_or(v, "state", ""));
		a->since = json_int_or(v, "since", 0);
		a->fired_at = json_int_or(v, "firedAt", 0);
		a->resolved_at = json_int_or(v, "resolvedAt", 0);
		a->value = json_num_or(v, "value", 0);
		a->threshold = json_num_or(v, "threshold", 0);
		snprintf(a->message, sizeof a->message, "%s", json_str_or(v, "message", ""));
		a->notified = (enum alert_state)state_from_name(json_str_or(v, "notified", "none"));
		a->tries = (int)json_int_or(v, "tries", 0);
		if (a->state == AS_NONE)
			inst_del(s, a);
	}
	yajl_val h = json_get(doc, "history");
	size_t nh = h && YAJL_IS_ARRAY(h) ? h->u.array.len : 0;
	if (nh > ALERTS_HISTORY)
		nh = ALERTS_HISTORY;
	for (size_t i = h && YAJL_IS_ARRAY(h) ? h->u.array.len - nh : 0; nh && i < h->u.array.len;
	     i++) {
		yajl_val v = h->u.array.values[i];
		struct alert_inst tmp = {0};
		snprintf(tmp.name, sizeof tmp.name, "%s", json_str_or(v, "name", ""));
		snprintf(tmp.subject, sizeof tmp.subject, "%s", json_str_or(v, "subject", ""));
		tmp.state = (enum alert_state)state_from_name(json_str_or(v, "state", ""));
		tmp.value = json_num_or(v, "value", 0);
		snprintf(tmp.message, sizeof tmp.message, "%s", json_str_or(v, "message", ""));
		history_push(s, &tmp, json_int_or(v, "at", 0));
	}
	yajl_tree_free(doc);
	return STORE_OK;
}

/* A time: ms in the stored form, RFC 3339 (null for 0) in the public one. */
static void jg_ktime(struct jgen *g, const char *key, int64_t ms, enum alert_json form)
{
	if (form == ALERT_JSON_STORED)
		jg_kint(g, key, ms);
	else
		statsq_jg_time(g, key, ms);
}

void alerts_jg_alert(struct jgen *g, const struct alert_inst *a, enum alert_json form)
{
	jg_obj(g);
	jg_kstr(g, "name", a->name);
	jg_kstr(g, "kind", alert_kind_name[a->kind]);
	jg_kstr(g, "subject", a->subject);
	jg_kstr(g, "state", alert_state_name[a->state]);
	jg_ktime(g, "since", a->since, form);
	jg_ktime(g, "firedAt", a->fired_at, form);
	jg_ktime(g, "resolvedAt", a->resolved_at, form);
	stats_jg_knum(g, "value", a->value, 3);
	stats_jg_knum(g, "threshold", a->threshold, 3);
	jg_kstr(g, "message", a->message);
	if (form == ALERT_JSON_STORED) {
		jg_kstr(g, "notified", alert_state_name[a->notified]);
		jg_kint(g, "tries", a->tries);
	} else {
		jg_kbool(g, "notified", a->notified == a->state);
	}
	jg_obj_end(g);
}

void alerts_jg_change(struct jgen *g, const struct alert_change *c, enum alert_json form)
{
	jg_obj(g);
	jg_ktime(g, "at", c->at, form);
	jg_kstr(g, "name", c->name);
	jg_kstr(g, "subject", c->subject);
	jg_kstr(g, "state", alert_state_name[c->state]);
	stats_jg_knum(g, "value", c->value, 3);
	jg_kstr(g, "message", c->message);
	jg_obj_end(g);
}

void alerts_state_to_json(const struct alerts_state *s, struct jgen *g)
{
	jg_obj(g);
	jg_kint(g, "version", 1);
	jg_key(g, "alerts");
	jg_arr(g);
	for (size_t i = 0; i < s->n; i++)
		alerts_jg_alert(g, &s->v[i], ALERT_JSON_STORED);
	jg_arr_end(g);
	jg_key(g, "history");
	jg_arr(g);
	for (size_t i = 0; i < s->nhist; i++)
		alerts_jg_change(g, &s->hist[i], ALERT_JSON_STORED);
	jg_arr_end(g);
	jg_obj_end(g);
}

static int state_save(const struct alerts_state *s)
{
	struct jgen g;
	jg_init(&g);
	alerts_state_to_json(s, &g);
	int rc = statsfile_write_json("", "alerts.json", &g);
	jg_free(&g);
	return rc;
}

/* ---- observing ---- */

#define WINDOWS 8

struct eval_ctx {
	int64_t now;
	bool live_loaded;
	struct statsq_live live;
	struct {
		int minutes;
		struct stats_agg agg;
	} win[WINDOWS];
	int nwin;
};

static const struct stats_agg *window_of(struct eval_ctx *c, int minutes)
{
	for (int i = 0; i < c->nwin; i++)
		if (c->win[i].minutes == minutes)
			return &c->win[i].agg;
	int i = c->nwin < WINDOWS ? c->nwin++ : WINDOWS - 1;
	if (i == WINDOWS - 1 && c->win[i].minutes)
		stats_agg_free(&c->win[i].agg);
	c->win[i].minutes = minutes;
	statsq_window(c->now - (int64_t)minutes * 60000, c->now + 1, c->now, &c->win[i].agg, NULL);
	return &c->win[i].agg;
}

static const struct statsq_live *live_of(struct eval_ctx *c)
{
	if (!c->live_loaded) {
		statsq_live_load(&c->live, c->now);
		c->live_loaded = true;
	}
	return &c->live;
}

static void fmt_duration(char *out, size_t n, int64_t ms)
{
	int64_t s = ms / 1000;
	if (s < 120)
		snprintf(out, n, "%lld s", (long long)s);
	else if (s < 7200)
		snprintf(out, n, "%lld min", (long long)(s / 60));
	else
		snprintf(out, n, "%.1f h", (double)s / 3600.0);
}

static struct alert_obs *obs_add(struct alert_obs **v, size_t *n, const char *subject)
{
	*v = realloc(*v, (*n + 1) * sizeof **v);
	if (!*v)
		abort();
	struct alert_obs *o = &(*v)[(*n)++];
	memset(o, 0, sizeof *o);
	snprintf(o->subject, sizeof o->subject, "%s", subject ? subject : "");
	return o;
}

/* One observer per kind: what the rule sees now, one observation per subject. */

static size_t observe_failure_rate(struct eval_ctx *c, const struct alert_rule *r,
				   struct alert_obs **out)
{
	size_t n = 0;
	char rate[32], limit[32];
	const struct stats_agg *a = window_of(c, r->window_min);
	bool by_server = r->server[0] != '\0';
	const struct stats_group *g = by_server	   ? stats_server_c(a, r->server)
				      : r->model[0] ? stats_model_c(a, r->model)
						    : &a->all;
	const struct failrule rule = {.unit = by_server ? FAILRULE_ATTEMPTS : FAILRULE_TASKS,
				      .min_finished = (uint64_t)r->min_tasks,
				      .threshold_pct = r->threshold,
				      .at_threshold = false};
	struct failrate fr;
	failrule_eval(&rule, g, &fr);
	struct alert_obs *o = obs_add(out, &n, by_server ? r->server : r->model);
	o->value = fr.pct;
	o->active = fr.breached;
	stats_fmt_num(rate, sizeof rate, o->value, 1);
	stats_fmt_num(limit, sizeof limit, r->threshold, 2);
	if (by_server)
		snprintf(o->message, sizeof o->message,
			 "server %s failed %s%% of its %llu attempts in the last %d min "
			 "(threshold %s%%)",
			 r->server, rate, (unsigned long long)fr.finished, r->window_min, limit);
	else
		snprintf(o->message, sizeof o->message,
			 "%s%s%s%s%% of the %llu tasks that finished in the last %d min "
			 "failed (threshold %s%%)",
			 r->model[0] ? "model " : "", r->model, r->model[0] ? ": " : "", rate,
			 (unsigned long long)fr.finished, r->window_min, limit);
	return n;
}

static size_t observe_server_offline(struct eval_ctx *c, const struct alert_rule *r,
				     struct alert_obs **out)
{
	size_t n = 0;
	char held[32];
	const struct statsq_live *l = live_of(c);
	for (size_t i = 0; i < l->nservers; i++) {
		const struct server *s = &l->servers[i];
		if (r->server[0] && strcmp(s->id, r->server) != 0)
			continue;
		if (s->maintenance || s->health != HEALTH_OFFLINE)
			continue;
		struct alert_obs *o = obs_add(out, &n, s->id);
		o->active = true;
		o->since = s->status_since > 0 ? s->status_since : c->now;
		o->value = (double)(c->now - o->since) / 60000.0;
		fmt_duration(held, sizeof held, c->now - o->since);
		snprintf(o->message, sizeof o->message, "server %s has been offline for %s", s->id,
			 held);
	}
	return n;
}

static size_t observe_queue_depth(struct eval_ctx *c, const struct alert_rule *r,
				  struct alert_obs **out)
{
	size_t n = 0;
	char limit[32];
	const struct statsq_live *l = live_of(c);
	struct alert_obs *o = obs_add(out, &n, "");
	o->value = (double)l->queue_depth;
	o->active = o->value > r->threshold;
	stats_fmt_num(limit, sizeof limit, r->threshold, 2);
	snprintf(o->message, sizeof o->message, "%zu tasks are queued (threshold %s)",
		 l->queue_depth, limit);
	return n;
}

static size_t observe_oldest_queued(struct eval_ctx *c, const struct alert_rule *r,
				    struct alert_obs **out)
{
	size_t n = 0;
	char waited_text[32], limit[32];
	const struct statsq_live *l = live_of(c);
	struct alert_obs *o = obs_add(out, &n, "");
	int64_t waited = l->oldest_since ? c->now - l->oldest_since : 0;
	o->value = (double)waited / 1000.0;
	o->active = l->oldest_since && o->value > r->threshold;
	fmt_duration(waited_text, sizeof waited_text, waited);
	stats_fmt_num(limit, sizeof limit, r->threshold, 2);
	if (l->oldest_since)
		snprintf(o->message, sizeof o->message,
			 "the oldest queued task (%s) has waited %s (threshold %s s)",
			 l->oldest_task, waited_text, limit);
	else
		snprintf(o->message, sizeof o->message, "no task is waiting in the queue");
	return n;
}

static size_t observe_no_healthy_server(struct eval_ctx *c, const struct alert_rule *r,
					struct alert_obs **out)
{
	size_t n = 0;
	const struct statsq_live *l = live_of(c);
	struct alert_obs *o = obs_add(out, &n, r->model);
	int healthy = 0;
	for (size_t i = 0; i < l->nservers; i++)
		healthy += statsq_server_serves(&l->servers[i], r->model);
	o->value = healthy;
	o->active = healthy == 0;
	const char *plural = healthy == 1 ? "" : "s";
	if (r->model[0] && healthy == 0)
		snprintf(o->message, sizeof o->message,
			 "no healthy server for model %s: its tasks wait in the queue", r->model);
	else if (r->model[0])
		snprintf(o->message, sizeof o->message, "%d healthy server%s for model %s",
			 healthy, plural, r->model);
	else if (healthy == 0)
		snprintf(o->message, sizeof o->message,
			 "no healthy server (of %zu registered): tasks wait in the queue",
			 l->nservers);
	else
		snprintf(o->message, sizeof o->message, "%d healthy server%s (of %zu registered)",
			 healthy, plural, l->nservers);
	return n;
}

static size_t observe_unservable(struct eval_ctx *c, const struct alert_rule *r,
				 struct alert_obs **out)
{
	size_t n = 0;
	char waited[32];
	const struct unservable *u = &live_of(c)->unservable;
	for (size_t i = 0; i < u->n; i++) {
		const struct unservable_want *w = &u->v[i];
		if (r->model[0] && strcmp(w->model, r->model) != 0)
			continue;
		/* One alert per wish: the text names what to register or fix. */
		struct alert_obs *o = obs_add(out, &n, w->text);
		o->value = w->tasks;
		o->active = o->value > r->threshold;
		o->since = w->since;
		fmt_duration(waited, sizeof waited, w->since ? c->now - w->since : 0);
		snprintf(o->message, sizeof o->message,
			 "%d task%s want%s %s (the oldest, %s, has waited %s)", w->tasks,
			 w->tasks == 1 ? "" : "s", w->tasks == 1 ? "s" : "", w->text, w->oldest,
			 waited);
	}
	return n;
}

typedef size_t (*observer)(struct eval_ctx *c, const struct alert_rule *r,
			   struct alert_obs **out);
static const observer observers[AK_COUNT] = {
    [AK_FAILURE_RATE] = observe_failure_rate,
    [AK_SERVER_OFFLINE] = observe_server_offline,
    [AK_QUEUE_DEPTH] = observe_queue_depth,
    [AK_OLDEST_QUEUED] = observe_oldest_queued,
    [AK_NO_HEALTHY_SERVER] = observe_no_healthy_server,
    [AK_UNSERVABLE_TASKS] = observe_unservable,
};

/* The rule's observations (*out the caller's to free); how many. */
static size_t observe(struct eval_ctx *c, const struct alert_rule *r, struct alert_obs **out)
{
	*out = NULL;
	return r->kind < AK_COUNT ? observers[r->kind](c, r, out) : 0;
}

/* ---- notifying ---- */

static bool notify(const char *url, const struct alert_inst *a, long timeout_ms, char *err,
		   size_t errlen)
{
	struct jgen g;
	struct buf body = BUF_INIT, auth = BUF_INIT;
	char at[32], since[32];
	format_time_ms(a->state == AS_RESOLVED ? a->resolved_at : a->fired_at, at);
	format_time_ms(a->since, since);
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "source", "taskgate");
	jg_kstr(&g, "alert", a->name);
	jg_kstr(&g, "kind", alert_kind_name[a->kind]);
	jg_kstr(&g, "subject", a->subject);
	jg_kstr(&g, "state", alert_state_name[a->state]);
	jg_kstr(&g, "message", a->message);
	stats_jg_knum(&g, "value", a->value, 3);
	stats_jg_knum(&g, "threshold", a->threshold, 3);
	jg_kstr(&g, "since", since);
	jg_kstr(&g, "at", at);
	jg_obj_end(&g);
	bool ok = false;
	if (jg_finish(&g, &body) == 0) {
		const char *token = config_str("alertWebhookToken", NULL);
		const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
		if (token && *token) {
			buf_printf(&auth, "Authorization: Bearer %s", token);
			headers[1] = auth.data;
		}
		struct http_request rq = {.method = "POST", .url = url, .headers = headers,
					  .body = body.data, .body_len = body.len,
					  .timeout_ms = timeout_ms};
		struct http_result res;
		long st = http_request_send(&rq, &res);
		ok = st >= 200 && st < 300;
		if (!ok && st)
			snprintf(err, errlen, "HTTP %ld", st);
		else if (!ok)
			snprintf(err, errlen, "%s", res.error);
		http_result_free(&res);
	}
	jg_free(&g);
	buf_free(&body);
	buf_free(&auth);
	return ok;
}

int alerts_run(const struct alerts_opts *o, struct alerts_result *r)
{
	memset(r, 0, sizeof *r);
	struct eval_ctx c;
	memset(&c, 0, sizeof c);
	c.now = o->now ? o->now : now_ms();
	struct buf errors = BUF_INIT;
	struct alert_rule *rules;
	size_t nrules = alerts_rules_load(&rules, &errors);
	r->rules = (int)nrules;
	if (errors.len) {
		for (char *line = errors.data; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			log_warn("%s", line);
			r->bad_rules++;
			line = nl ? nl + 1 : NULL;
		}
	}
	struct alerts_state s;
	alerts_state_load(&s);
	int changes = 0;
	for (size_t i = 0; i < nrules; i++) {
		struct alert_obs *obs;
		size_t nobs = observe(&c, &rules[i], &obs);
		changes += alerts_apply(&s, &rules[i], obs, nobs, c.now, r);
		free(obs);
	}
	changes += alerts_retire(&s, rules, nrules, c.now, r);
	int rc = 0;
	if (changes && state_save(&s) != STORE_OK) {
		r->errors++;
		rc = -1;
	}
	const char *url = config_str("alertWebhook", NULL);
	if (rc == 0 && url && *url) {
		const char *bad = server_url_problem(url);
		bool delivered_any = false;
		if (bad) {
			log_warn("alerts: alertWebhook %s; no notification sent", bad);
		} else {
			int sent = 0;
			for (size_t i = 0; i < s.n && sent < o->max_notify; i++) {
				struct alert_inst *a = &s.v[i];
				if ((a->state != AS_FIRING && a->state != AS_RESOLVED) ||
				    a->notified == a->state || a->tries >= ALERTS_NOTIFY_TRIES)
					continue;
				char err[256] = "";
				sent++;
				if (notify(url, a, o->timeout_ms, err, sizeof err)) {
					a->notified = a->state;
					a->tries = 0;
					r->notified++;
				} else {
					a->tries++;
					r->notify_failed++;
					log_warn("alerts: webhook for %s%s%s (%s) failed: %s%s",
						 a->name, a->subject[0] ? "/" : "", a->subject,
						 alert_state_name[a->state], err,
						 a->tries >= ALERTS_NOTIFY_TRIES ? "; giving up"
										 : "");
				}
				delivered_any = true;
			}
		}
		if (delivered_any && state_save(&s) != STORE_OK) {
			r->errors++;
			rc = -1;
		}
	}
	r->firing = (int)alerts_count(&s, AS_FIRING);
	r->pending = (int)alerts_count(&s, AS_PENDING);
	for (int i = 0; i < c.nwin; i++)
		stats_agg_free(&c.win[i].agg);
	if (c.live_loaded)
		statsq_live_free(&c.live);
	alerts_state_free(&s);
	free(rules);
	buf_free(&errors);
	return rc;
}
