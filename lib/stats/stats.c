#include "stats/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"

const char *const stats_type_event[ST_TYPES] = {"created",   "dispatched", "completed", "failed",
						"timed_out", "cancelled",  "retried"};
const char *const stats_type_key[ST_TYPES] = {"created",  "dispatched", "completed", "failed",
					      "timedOut", "cancelled",	"retried"};
const char *const stats_outcome_name[OC_COUNT] = {"succeeded", "failed", "rejected", "error",
						  "timeout",   "busy",	 "cancelled"};
const char *const stats_status_name[SS_COUNT] = {"online", "degraded", "offline", "maintenance",
						 "starting"};

/* Event lines are small; anything bigger or deeper is not ours. */
static const struct json_limits line_limits = {
    .max_bytes = 4096, .max_depth = 4, .max_string = 1024};

int stats_health_from_name(const char *s)
{
	for (int i = 0; s && i < SS_COUNT; i++)
		if (i != SS_MAINTENANCE && strcmp(s, stats_status_name[i]) == 0)
			return i;
	return -1;
}

static int type_from_name(const char *s)
{
	for (int i = 0; i < ST_TYPES; i++)
		if (strcmp(s, stats_type_event[i]) == 0)
			return i;
	return -1;
}

static int outcome_from_name(const char *s)
{
	for (int i = 0; s && i < OC_COUNT; i++)
		if (strcmp(s, stats_outcome_name[i]) == 0)
			return i;
	return OC_NONE;
}

static void copy_name(char *dst, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n > STATS_NAME_MAX)
		n = 0; /* too long to be ours: treat as absent */
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

int stats_parse_line(const char *line, size_t len, struct stats_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->ms = ev->wait_ms = -1;
	ev->outcome = OC_NONE;
	ev->from = ev->to = -1;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len == 0)
		return -1;
	yajl_val doc = json_parse(line, len, &line_limits, NULL);
	if (!doc)
		return -1;
	int rc = -1;
	const char *type;
	long long t;
	if (!YAJL_IS_OBJECT(doc) || json_get_str(doc, "type", &type) != JSON_OK ||
	    json_get_int(doc, "t", &t) != JSON_OK || t < 0)
		goto out;
	ev->t = t;
	copy_name(ev->server, json_str_or(doc, "server", ""));
	if (strcmp(type, "server_status") == 0) {
		ev->kind = EV_SERVER_STATUS;
		ev->from = stats_health_from_name(json_str_or(doc, "from", ""));
		ev->to = stats_health_from_name(json_str_or(doc, "to", ""));
		rc = ev->server[0] && ev->to >= 0 ? 0 : 1;
		goto out;
	}
	if (strcmp(type, "server_maintenance") == 0) {
		bool on;
		ev->kind = EV_SERVER_MAINT;
		rc = ev->server[0] && json_get_bool(doc, "on", &on) == JSON_OK ? 0 : 1;
		ev->on = rc == 0 && on;
		goto out;
	}
	int ty = type_from_name(type);
	if (ty < 0) {
		rc = 1; /* a kind of event we do not count (newer writer) */
		goto out;
	}
	ev->kind = EV_TASK;
	ev->type = (enum stats_type)ty;
	copy_name(ev->model, json_str_or(doc, "model", ""));
	ev->ms = json_int_or(doc, "ms", -1);
	ev->wait_ms = json_int_or(doc, "waitMs", -1);
	ev->outcome = (enum stats_outcome)outcome_from_name(json_str_or(doc, "outcome", NULL));
	rc = 0;
out:
	yajl_tree_free(doc);
	return rc;
}

/* ---- aggregates ---- */

static void group_init(struct stats_group *g, const char *name)
{
	memset(g, 0, sizeof *g);
	snprintf(g->name, sizeof g->name, "%s", name ? name : "");
}

static void group_free(struct stats_group *g)
{
	free(g->tl);
	g->tl = NULL;
	g->ntl = g->captl = 0;
}

void stats_agg_init(struct stats_agg *a)
{
	memset(a, 0, sizeof *a);
}

void stats_agg_free(struct stats_agg *a)
{
	group_free(&a->all);
	for (size_t i = 0; i < a->nmodels; i++)
		group_free(&a->models[i]);
	for (size_t i = 0; i < a->nservers; i++)
		group_free(&a->servers[i]);
	free(a->models);
	free(a->servers);
	memset(a, 0, sizeof *a);
}

static int cmp_group_name(const void *name, const void *g)
{
	return strcmp(name, ((const struct stats_group *)g)->name);
}

/* Binary search in a sorted group array; *at receives the insertion point. */
static struct stats_group *find_group(struct stats_group *v, size_t n, const char *name, size_t *at)
{
	bool found;
	*at = array_search(name, v, n, sizeof *v, cmp_group_name, &found);
	return found ? &v[*at] : NULL;
}

static struct stats_group *group_in(struct stats_group **v, size_t *n, size_t *cap,
				    const char *name, bool create)
{
	size_t at;
	if (!name || !*name || strlen(name) > STATS_NAME_MAX)
		return NULL;
	struct stats_group *g = find_group(*v, *n, name, &at);
	if (g || !create)
		return g;
	*v = array_insert(*v, n, cap, sizeof **v, at, 8);
	group_init(&(*v)[at], name);
	return &(*v)[at];
}

struct stats_group *stats_model(struct stats_agg *a, const char *name, bool create)
{
	return group_in(&a->models, &a->nmodels, &a->capm, name, create);
}

struct stats_group *stats_server(struct stats_agg *a, const char *name, bool create)
{
	return group_in(&a->servers, &a->nservers, &a->caps, name, create);
}

const struct stats_group *stats_model_c(const struct stats_agg *a, const char *name)
{
	size_t at;
	return name ? find_group(a->models, a->nmodels, name, &at) : NULL;
}

const struct stats_group *stats_server_c(const struct stats_agg *a, const char *name)
{
	size_t at;
	return name ? find_group(a->servers, a->nservers, name, &at) : NULL;
}

static bool is_end_type(enum stats_type t)
{
	return t == ST_COMPLETED || t == ST_FAILED || t == ST_TIMED_OUT || t == ST_CANCELLED ||
	       t == ST_RETRIED;
}

static void count_task(struct stats_group *g, const struct stats_event *ev, bool ran)
{
	if (!g)
		return;
	g->n[ev->type]++;
	if (ev->outcome != OC_NONE)
		g->outcome[ev->outcome]++;
	if (ran)
		hist_add(&g->run, ev->ms > 0 ? ev->ms : 0);
	if (ev->type == ST_DISPATCHED && ev->wait_ms >= 0)
		hist_add(&g->wait, ev->wait_ms);
	if (ev->t > g->last_active)
		g->last_active = ev->t;
}

/* Keeps the timeline ordered by time (lines of concurrent writers may be slightly
 * out of order; an insertion from the end is cheap for nearly sorted input). */
static void add_transition(struct stats_group *g, const struct stats_transition *tr)
{
	g->tl = array_grow(g->tl, g->ntl, &g->captl, sizeof *g->tl, 8);
	size_t i = g->ntl++;
	while (i > 0 && g->tl[i - 1].t > tr->t) {
		g->tl[i] = g->tl[i - 1];
		i--;
	}
	g->tl[i] = *tr;
}

void stats_fold_event(struct stats_agg *a, const struct stats_event *ev, int64_t from, int64_t to)
{
	if (ev->kind == EV_SERVER_STATUS || ev->kind == EV_SERVER_MAINT) {
		struct stats_group *s = stats_server(a, ev->server, true);
		if (!s)
			return;
		struct stats_transition tr = {.t = ev->t};
		if (ev->kind == EV_SERVER_STATUS) {
			tr.from = (int8_t)ev->from;
			tr.to = (int8_t)ev->to;
		} else {
			tr.maint = 1;
			tr.from = ev->on ? 0 : 1;
			tr.to = ev->on ? 1 : 0;
		}
		add_transition(s, &tr);
		return;
	}
	if (ev->t < from || ev->t >= to)
		return;
	bool ran = is_end_type(ev->type) && ev->server[0] && ev->outcome != OC_BUSY;
	count_task(&a->all, ev, ran);
	count_task(stats_model(a, ev->model, true), ev, ran);
	count_task(stats_server(a, ev->server, true), ev, ran);
}

size_t stats_fold_text(struct stats_agg *a, const char *text, size_t len, bool final, int64_t from,
		       int64_t to)
{
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		if (!nl && !final)
			break; /* a writer may be half way through this line */
		struct stats_event ev;
		if (end > pos) {
			a->lines++;
			int rc = stats_parse_line(text + pos, end - pos, &ev);
			if (rc == 0)
				stats_fold_event(a, &ev, from, to);
			else if (rc < 0)
				a->bad++;
		}
		pos = nl ? end + 1 : len;
	}
	return pos;
}

void stats_group_merge(struct stats_group *into, const struct stats_group *from)
{
	for (int i = 0; i < ST_TYPES; i++)
		into->n[i] += from->n[i];
	for (int i = 0; i < OC_COUNT; i++)
		into->outcome[i] += from->outcome[i];
	hist_merge(&into->run, &from->run);
	hist_merge(&into->wait, &from->wait);
	if (from->last_active > into->last_active)
		into->last_active = from->last_active;
	for (int i = 0; i < SS_COUNT; i++)
		into->status_ms[i] += from->status_ms[i];
	into->changes += from->changes;
}

void stats_agg_merge(struct stats_agg *into, const struct stats_agg *from)
{
	stats_group_merge(&into->all, &from->all);
	for (size_t i = 0; i < from->nmodels; i++)
		stats_group_merge(stats_model(into, from->models[i].name, true), &from->models[i]);
	for (size_t i = 0; i < from->nservers; i++)
		stats_group_merge(stats_server(into, from->servers[i].name, true),
				  &from->servers[i]);
	into->lines += from->lines;
	into->bad += from->bad;
}

static bool group_equal(const struct stats_group *x, const struct stats_group *y)
{
	return strcmp(x->name, y->name) == 0 && memcmp(x->n, y->n, sizeof x->n) == 0 &&
	       memcmp(x->outcome, y->outcome, sizeof x->outcome) == 0 &&
	       hist_equal(&x->run, &y->run) && hist_equal(&x->wait, &y->wait) &&
	       x->last_active == y->last_active &&
	       memcmp(x->status_ms, y->status_ms, sizeof x->status_ms) == 0 &&
	       x->changes == y->changes;
}

bool stats_agg_equal(const struct stats_agg *x, const struct stats_agg *y)
{
	if (!group_equal(&x->all, &y->all) || x->nmodels != y->nmodels ||
	    x->nservers != y->nservers)
		return false;
	for (size_t i = 0; i < x->nmodels; i++)
		if (!group_equal(&x->models[i], &y->models[i]))
			return false;
	for (size_t i = 0; i < x->nservers; i++)
		if (!group_equal(&x->servers[i], &y->servers[i]))
			return false;
	return true;
}

uint64_t stats_group_processed(const struct stats_group *g)
{
	uint64_t n = g->n[ST_COMPLETED] + g->n[ST_FAILED] + g->n[ST_TIMED_OUT] +
		     g->n[ST_CANCELLED] + g->n[ST_RETRIED];
	uint64_t busy = g->outcome[OC_BUSY];
	return n > busy ? n - busy : 0;
}

uint64_t stats_group_errors(const struct stats_group *g)
{
	uint64_t p = stats_group_processed(g), ok = g->n[ST_COMPLETED] + g->n[ST_CANCELLED];
	return p > ok ? p - ok : 0;
}

/* ---- server state ---- */

void stats_state_free(struct stats_state *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

void stats_state_copy(struct stats_state *dst, const struct stats_state *src)
{
	stats_state_free(dst);
	if (!src || src->n == 0)
		return;
	dst->v = malloc(src->n * sizeof *dst->v);
	if (!dst->v)
		abort();
	memcpy(dst->v, src->v, src->n * sizeof *dst->v);
	dst->n = dst->cap = src->n;
}

static int cmp_sstate_id(const void *id, const void *e)
{
	return strcmp(id, ((const struct stats_sstate *)e)->id);
}

struct stats_sstate *stats_state_get(struct stats_state *s, const char *id, bool create)
{
	bool found;
	if (!id || !*id || strlen(id) > STATS_NAME_MAX)
		return NULL;
	size_t at = array_search(id, s->v, s->n, sizeof *s->v, cmp_sstate_id, &found);
	if (found)
		return &s->v[at];
	if (!create)
		return NULL;
	s->v = array_insert(s->v, &s->n, &s->cap, sizeof *s->v, at, 8);
	struct stats_sstate *e = &s->v[at];
	snprintf(e->id, sizeof e->id, "%s", id);
	e->health = -1;
	e->maint = -1;
	return e;
}

int stats_sstate_status(const struct stats_sstate *e)
{
	if (e->maint == 1)
		return SS_MAINTENANCE;
	return e->health >= 0 && e->health < SS_COUNT && e->health != SS_MAINTENANCE ? e->health
										    : -1;
}

static void apply_transition(struct stats_sstate *st, const struct stats_transition *tr)
{
	if (tr->maint)
		st->maint = tr->to;
	else if (tr->to >= 0)
		st->health = tr->to;
}

static void account(struct stats_group *g, const struct stats_sstate *st, int64_t from, int64_t to)
{
	int s = stats_sstate_status(st);
	if (s >= 0 && to > from)
		g->status_ms[s] += to - from;
}

/* One server: its start state (may be NULL) and timeline (may be NULL). */
static void account_one(const char *id, const struct stats_sstate *start,
			const struct stats_group *raw, int64_t seg_from, int64_t seg_to,
			struct stats_agg *out, struct stats_state *end)
{
	struct stats_sstate st = {.health = -1, .maint = -1};
	if (start)
		st = *start;
	size_t ntl = raw ? raw->ntl : 0;
	/* Unknown at the start: the first event of each kind says what it was before. */
	for (size_t i = 0; i < ntl && (st.health < 0 || st.maint < 0); i++) {
		const struct stats_transition *tr = &raw->tl[i];
		if (tr->maint && st.maint < 0)
			st.maint = tr->from;
		else if (!tr->maint && st.health < 0 && tr->from >= 0)
			st.health = tr->from;
	}
	if (st.maint < 0)
		st.maint = 0;
	struct stats_group *g = stats_server(out, id, true);
	if (!g)
		return;
	int64_t cur = seg_from;
	for (size_t i = 0; i < ntl; i++) {
		const struct stats_transition *tr = &raw->tl[i];
		if (tr->t >= seg_to)
			break;
		if (tr->t >= seg_from) {
			account(g, &st, cur, tr->t);
			cur = tr->t;
			g->changes++;
		}
		apply_transition(&st, tr);
	}
	account(g, &st, cur, seg_to);
	if (end) {
		struct stats_sstate *e = stats_state_get(end, id, true);
		if (e) {
			e->health = st.health;
			e->maint = st.maint;
		}
	}
}

void stats_account_status(const struct stats_agg *raw, const struct stats_state *start,
			  int64_t seg_from, int64_t seg_to, struct stats_agg *out,
			  struct stats_state *end)
{
	/* Servers of the start state, in order, then servers only the timelines know. */
	size_t ns = start ? start->n : 0;
	for (size_t i = 0; i < ns; i++) {
		const struct stats_sstate *s = &start->v[i];
		account_one(s->id, s, raw ? stats_server_c(raw, s->id) : NULL, seg_from, seg_to,
			    out, end);
	}
	for (size_t i = 0; raw && i < raw->nservers; i++) {
		const struct stats_group *g = &raw->servers[i];
		if (g->ntl == 0)
			continue;
		bool seen = false;
		for (size_t j = 0; j < ns && !seen; j++)
			seen = strcmp(start->v[j].id, g->name) == 0;
		if (!seen)
			account_one(g->name, NULL, g, seg_from, seg_to, out, end);
	}
}

/* ---- documents ---- */

static void group_to_json(const struct stats_group *gr, struct jgen *g, bool status)
{
	jg_obj(g);
	for (int i = 0; i < ST_TYPES; i++)
		jg_kint(g, stats_type_key[i], (long long)gr->n[i]);
	bool any = false;
	for (int i = 0; i < OC_COUNT; i++)
		any |= gr->outcome[i] != 0;
	if (any) {
		jg_key(g, "outcomes");
		jg_obj(g);
		for (int i = 0; i < OC_COUNT; i++)
			if (gr->outcome[i])
				jg_kint(g, stats_outcome_name[i], (long long)gr->outcome[i]);
		jg_obj_end(g);
	}
	jg_key(g, "run");
	hist_to_json(&gr->run, g);
	jg_key(g, "wait");
	hist_to_json(&gr->wait, g);
	jg_kint(g, "lastActive", (long long)gr->last_active);
	if (status) {
		jg_key(g, "statusMs");
		jg_obj(g);
		for (int i = 0; i < SS_COUNT; i++)
			jg_kint(g, stats_status_name[i], (long long)gr->status_ms[i]);
		jg_obj_end(g);
		jg_kint(g, "changes", (long long)gr->changes);
	}
	jg_obj_end(g);
}

static void group_from_json(yajl_val v, struct stats_group *gr)
{
	for (int i = 0; i < ST_TYPES; i++) {
		long long n = json_int_or(v, stats_type_key[i], 0);
		gr->n[i] = n > 0 ? (uint64_t)n : 0;
	}
	yajl_val oc = json_get(v, "outcomes");
	for (int i = 0; i < OC_COUNT; i++) {
		long long n = json_int_or(oc, stats_outcome_name[i], 0);
		gr->outcome[i] = n > 0 ? (uint64_t)n : 0;
	}
	hist_from_json(json_get(v, "run"), &gr->run);
	hist_from_json(json_get(v, "wait"), &gr->wait);
	gr->last_active = json_int_or(v, "lastActive", 0);
	yajl_val sm = json_get(v, "statusMs");
	for (int i = 0; i < SS_COUNT; i++)
		gr->status_ms[i] = json_int_or(sm, stats_status_name[i], 0);
	long long ch = json_int_or(v, "changes", 0);
	gr->changes = ch > 0 ? (uint64_t)ch : 0;
}

static void groups_to_json(const struct stats_group *v, size_t n, struct jgen *g, bool status)
{
	jg_obj(g);
	for (size_t i = 0; i < n; i++) {
		jg_key(g, v[i].name);
		group_to_json(&v[i], g, status);
	}
	jg_obj_end(g);
}

void stats_agg_to_json(const struct stats_agg *a, struct jgen *g, bool status)
{
	jg_key(g, "all");
	group_to_json(&a->all, g, false);
	jg_key(g, "models");
	groups_to_json(a->models, a->nmodels, g, false);
	jg_key(g, "servers");
	groups_to_json(a->servers, a->nservers, g, status);
}

void stats_agg_from_json(yajl_val doc, struct stats_agg *a)
{
	stats_agg_init(a);
	group_from_json(json_get(doc, "all"), &a->all);
	yajl_val m = json_get(doc, "models");
	for (size_t i = 0; m && YAJL_IS_OBJECT(m) && i < m->u.object.len; i++) {
		struct stats_group *g = stats_model(a, m->u.object.keys[i], true);
		if (g)
			group_from_json(m->u.object.values[i], g);
	}
	yajl_val s = json_get(doc, "servers");
	for (size_t i = 0; s && YAJL_IS_OBJECT(s) && i < s->u.object.len; i++) {
		struct stats_group *g = stats_server(a, s->u.object.keys[i], true);
		if (g)
			group_from_json(s->u.object.values[i], g);
	}
}

void stats_state_to_json(const struct stats_state *s, struct jgen *g)
{
	jg_obj(g);
	for (size_t i = 0; i < s->n; i++) {
		const struct stats_sstate *e = &s->v[i];
		jg_key(g, e->id);
		jg_obj(g);
		jg_kstr(g, "health", e->health >= 0 ? stats_status_name[e->health] : NULL);
		jg_kbool(g, "maintenance", e->maint == 1);
		jg_obj_end(g);
	}
	jg_obj_end(g);
}

void stats_state_from_json(yajl_val v, struct stats_state *s)
{
	stats_state_free(s);
	for (size_t i = 0; v && YAJL_IS_OBJECT(v) && i < v->u.object.len; i++) {
		struct stats_sstate *e = stats_state_get(s, v->u.object.keys[i], true);
		if (!e)
			continue;
		yajl_val x = v->u.object.values[i];
		e->health = (int8_t)stats_health_from_name(json_str_or(x, "health", ""));
		e->maint = json_bool_or(x, "maintenance", false) ? 1 : 0;
	}
}

void stats_fmt_num(char *out, size_t n, double v, int decimals)
{
	if (!isfinite(v)) {
		snprintf(out, n, "NaN");
		return;
	}
	snprintf(out, n, "%.*f", decimals, v);
	if (strchr(out, '.')) {
		size_t len = strlen(out);
		while (len > 0 && out[len - 1] == '0')
			out[--len] = '\0';
		if (len > 0 && out[len - 1] == '.')
			out[--len] = '\0';
	}
	if (strcmp(out, "-0") == 0)
		snprintf(out, n, "0");
}

void stats_jg_num(struct jgen *g, double v, int decimals)
{
	char text[64];
	if (!isfinite(v)) {
		jg_null(g);
		return;
	}
	stats_fmt_num(text, sizeof text, v, decimals);
	if (!g->err && yajl_gen_number(g->g, text, strlen(text)) != yajl_gen_status_ok)
		g->err = 1;
}

void stats_jg_knum(struct jgen *g, const char *key, double v, int decimals)
{
	jg_key(g, key);
	stats_jg_num(g, v, decimals);
}

