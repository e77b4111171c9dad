#include "lb/lbstate.h"
#include "base/hour.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "model/config.h"
#include "fs/statsfile.h"
#include "fs/store.h"
#include "base/util.h"

#define LB_CONFIG_ID "lb"
#define LB_STATE_ID "lb-state"
#define LB_STATS_ID "lb-stats"
#define LB_FOLD_LOCK "locks/lb-fold"
#define LB_SERVERS_MAX 4096

/* ---- per-process caches keyed by what stat() says ---- */

static void object_file(const char *id, char *out, size_t n)
{
	snprintf(out, n, "%s/%s.json", store_root(), id);
}

static struct file_cache config_key, stats_key;
static struct lb_config config_cache;
static struct lb_stats stats_cache;

void lb_state_reset_cache(void)
{
	memset(&config_key, 0, sizeof config_key);
	memset(&stats_key, 0, sizeof stats_key);
	lb_stats_free(&stats_cache);
}

/* ---- configuration ---- */

void lb_config_defaults(struct lb_config *c)
{
	c->algorithm = LB_ROUND_ROBIN;
	c->max_retries = 3;
	c->sticky_session = false;
	c->slow_start_s = 30;
	c->health_check_interval_s = 10;
}

static int int_in(yajl_val doc, const char *key, int fallback, int min, int max)
{
	long long v = json_int_or(doc, key, fallback);
	return v < min || v > max ? fallback : (int)v;
}

/* Our own file: anything out of range takes the default. */
static void config_from_doc(yajl_val doc, struct lb_config *c)
{
	lb_config_defaults(c);
	if (!doc)
		return;
	int a = lb_algorithm_from_name(json_str_or(doc, "algorithm", ""));
	if (a >= 0)
		c->algorithm = (enum lb_algorithm)a;
	c->max_retries = int_in(doc, "maxRetries", c->max_retries, 0, LB_MAX_RETRIES_MAX);
	c->sticky_session = json_bool_or(doc, "stickySession", c->sticky_session);
	c->slow_start_s = int_in(doc, "slowStartSeconds", c->slow_start_s, 0, 3600);
	c->health_check_interval_s =
		int_in(doc, "healthCheckInterval", c->health_check_interval_s, 1, 3600);
}

void lb_config_load(struct lb_config *c)
{
	struct file_stamp now;
	char path[PATH_MAX];
	object_file(LB_CONFIG_ID, path, sizeof path);
	if (!file_cache_fresh(&config_key, path, &now)) {
		yajl_val doc = NULL;
		if (!now.present || store_load(STORE_ROOT, LB_CONFIG_ID, &doc) != STORE_OK)
			doc = NULL;
		config_from_doc(doc, &config_cache);
		if (doc)
			yajl_tree_free(doc);
		file_cache_set(&config_key, path, &now);
	}
	*c = config_cache;
}

static const char *const config_fields[] = {"algorithm", "maxRetries", "stickySession",
					     "slowStartSeconds", "healthCheckInterval"};

int lb_config_apply(yajl_val body, struct lb_config *c, struct verr *e)
{
	if (!body || !YAJL_IS_OBJECT(body))
		return verr_set(e, "", "the body must be a JSON object");
	if (config_strict_bodies() &&
	    verr_known_members(body, "", config_fields,
			       sizeof config_fields / sizeof config_fields[0], e) < 0)
		return -1;
	const char *alg;
	int rc = json_get_str(body, "algorithm", &alg);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "algorithm", "algorithm must be a string");
	if (rc == JSON_OK) {
		int a = lb_algorithm_from_name(alg);
		if (a < 0)
			return verr_set(e, "algorithm",
					"unknown algorithm '%.64s'; use round-robin, weighted, "
					"least-connections, response-time or p2c",
					alg);
		c->algorithm = (enum lb_algorithm)a;
	}
	if (verr_opt_int(body, "maxRetries", NULL, 0, LB_MAX_RETRIES_MAX, &c->max_retries, e) < 0 ||
	    verr_opt_int(body, "slowStartSeconds", NULL, 0, 3600, &c->slow_start_s, e) < 0 ||
	    verr_opt_int(body, "healthCheckInterval", NULL, 1, 3600, &c->health_check_interval_s,
			 e) < 0)
		return -1;
	bool b;
	rc = json_get_bool(body, "stickySession", &b);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "stickySession", "stickySession must be true or false");
	if (rc == JSON_OK)
		c->sticky_session = b;
	return 0;
}

void lb_config_to_json(const struct lb_config *c, struct jgen *g)
{
	jg_obj(g);
	jg_kstr(g, "algorithm", lb_algorithm_name(c->algorithm));
	jg_kint(g, "maxRetries", c->max_retries);
	jg_kbool(g, "stickySession", c->sticky_session);
	jg_kint(g, "slowStartSeconds", c->slow_start_s);
	jg_kint(g, "healthCheckInterval", c->health_check_interval_s);
	jg_obj_end(g);
}

struct config_edit {
	yajl_val body;
	struct lb_config *out;
	struct verr *e;
};

static int config_edit_fn(yajl_val old, struct jgen *g, void *arg)
{
	struct config_edit *ce = arg;
	config_from_doc(old, ce->out);
	if (lb_config_apply(ce->body, ce->out, ce->e) < 0)
		return LB_CONFIG_INVALID;
	lb_config_to_json(ce->out, g);
	return STORE_OK;
}

int lb_config_update(yajl_val body, struct lb_config *out, struct verr *e)
{
	/* Validate before taking the lock: a bad request never waits for it. */
	struct lb_config probe;
	lb_config_defaults(&probe);
	if (lb_config_apply(body, &probe, e) < 0)
		return LB_CONFIG_INVALID;
	struct config_edit ce = {body, out, e};
	return store_update(STORE_ROOT, LB_CONFIG_ID, STORE_UPSERT, config_edit_fn, &ce);
}

/* ---- stats: parsing and writing lb-stats.json ---- */

void lb_stats_free(struct lb_stats *s)
{
	for (size_t i = 0; i < s->n; i++) {
		for (size_t m = 0; m < s->v[i].nmodels; m++)
			free(s->v[i].models[m].model);
		free(s->v[i].models);
	}
	free(s->v);
	memset(s, 0, sizeof *s);
}

static int cmp_stats_id(const void *a, const void *b)
{
	return strcmp(((const struct lb_server_stats *)a)->id,
		      ((const struct lb_server_stats *)b)->id);
}

const struct lb_server_stats *lb_stats_find(const struct lb_stats *s, const char *id)
{
	if (!s || !s->n || !id)
		return NULL;
	struct lb_server_stats key;
	snprintf(key.id, sizeof key.id, "%s", id);
	return bsearch(&key, s->v, s->n, sizeof *s->v, cmp_stats_id);
}

static int cmp_id_stats(const void *id, const void *e)
{
	return strcmp(id, ((const struct lb_server_stats *)e)->id);
}

/* Finds or inserts (in order) the entry of id; NULL when full. */
static struct lb_server_stats *stats_entry(struct lb_stats *s, const char *id)
{
	bool found;
	size_t at = array_search(id, s->v, s->n, sizeof *s->v, cmp_id_stats, &found);
	if (found)
		return &s->v[at];
	if (s->n >= LB_SERVERS_MAX)
		return NULL;
	struct lb_server_stats *v = realloc(s->v, (s->n + 1) * sizeof *v);
	if (!v)
		abort();
	s->v = v;
	memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof *s->v);
	memset(&s->v[at], 0, sizeof *s->v);
	snprintf(s->v[at].id, sizeof s->v[at].id, "%s", id);
	s->n++;
	return &s->v[at];
}

static struct lb_model_stat *model_entry(struct lb_server_stats *e, const char *model)
{
	for (size_t i = 0; i < e->nmodels; i++)
		if (strcmp(e->models[i].model, model) == 0)
			return &e->models[i];
	if (e->nmodels >= LB_MODELS_PER_SERVER) {
		size_t old = 0; /* the least recently seen model makes room */
		for (size_t i = 1; i < e->nmodels; i++)
			if (e->models[i].at < e->models[old].at)
				old = i;
		free(e->models[old].model);
		e->models[old] = (struct lb_model_stat){xstrdup(model), 0, 0};
		return &e->models[old];
	}
	struct lb_model_stat *m = realloc(e->models, (e->nmodels + 1) * sizeof *m);
	if (!m)
		abort();
	e->models = m;
	e->models[e->nmodels] = (struct lb_model_stat){xstrdup(model), 0, 0};
	return &e->models[e->nmodels++];
}

static bool hour_valid(const char *h)
{
	if (strlen(h) != 10)
		return false;
	for (int i = 0; i < 10; i++)
		if (h[i] < '0' || h[i] > '9')
			return false;
	return true;
}

static void stats_from_doc(yajl_val doc, struct lb_stats *s)
{
	memset(s, 0, sizeof *s);
	if (!doc)
		return;
	yajl_val cur = json_get(doc, "cursor");
	const char *h = json_str_or(cur, "hour", "");
	if (hour_valid(h)) {
		snprintf(s->cursor_hour, sizeof s->cursor_hour, "%s", h);
		s->cursor_offset = json_int_or(cur, "offset", 0);
		if (s->cursor_offset < 0)
			s->cursor_offset = 0;
	}
	s->folded_at = json_int_or(doc, "foldedAt", 0);
	yajl_val servers = json_get(doc, "servers");
	if (!servers || !YAJL_IS_OBJECT(servers))
		return;
	for (size_t i = 0; i < servers->u.object.len; i++) {
		const char *id = servers->u.object.keys[i];
		yajl_val o = servers->u.object.values[i];
		if (!store_id_valid(id) || !YAJL_IS_OBJECT(o))
			continue;
		struct lb_server_stats *e = stats_entry(s, id);
		if (!e)
			break;
		e->ok = json_num_or(o, "ok", 0);
		e->fail = json_num_or(o, "fail", 0);
		e->ewma_ms = json_num_or(o, "ewmaMs", 0);
		e->last_at = json_int_or(o, "lastAt", 0);
		e->effective = (int)json_int_or(o, "effectiveWeight", 0);
		yajl_val models = json_get(o, "models");
		if (!models || !YAJL_IS_OBJECT(models))
			continue;
		for (size_t m = 0; m < models->u.object.len && e->nmodels < LB_MODELS_PER_SERVER;
		     m++) {
			yajl_val mo = models->u.object.values[m];
			struct lb_model_stat *ms = model_entry(e, models->u.object.keys[m]);
			ms->ewma_ms = json_num_or(mo, "ewmaMs", 0);
			ms->at = json_int_or(mo, "at", 0);
		}
	}
}

/* Doubles rounded to 0.001: the file stays small and stable. */
static void knum3(struct jgen *g, const char *key, double v)
{
	jg_knum(g, key, (double)llround(v * 1000.0) / 1000.0);
}

static void stats_to_doc(const struct lb_stats *s, struct jgen *g)
{
	jg_obj(g);
	jg_key(g, "cursor");
	jg_obj(g);
	jg_kstr(g, "hour", s->cursor_hour);
	jg_kint(g, "offset", s->cursor_offset);
	jg_obj_end(g);
	jg_kint(g, "foldedAt", s->folded_at);
	jg_key(g, "servers");
	jg_obj(g);
	for (size_t i = 0; i < s->n; i++) {
		const struct lb_server_stats *e = &s->v[i];
		jg_key(g, e->id);
		jg_obj(g);
		knum3(g, "ok", e->ok);
		knum3(g, "fail", e->fail);
		knum3(g, "ewmaMs", e->ewma_ms);
		jg_kint(g, "lastAt", e->last_at);
		if (e->effective)
			jg_kint(g, "effectiveWeight", e->effective);
		jg_key(g, "models");
		jg_obj(g);
		for (size_t m = 0; m < e->nmodels; m++) {
			jg_key(g, e->models[m].model);
			jg_obj(g);
			knum3(g, "ewmaMs", e->models[m].ewma_ms);
			jg_kint(g, "at", e->models[m].at);
			jg_obj_end(g);
		}
		jg_obj_end(g);
		jg_obj_end(g);
	}
	jg_obj_end(g);
	jg_obj_end(g);
}

const struct lb_stats *lb_stats_get(void)
{
	struct file_stamp now;
	char path[PATH_MAX];
	object_file(LB_STATS_ID, path, sizeof path);
	if (!file_cache_fresh(&stats_key, path, &now)) {
		yajl_val doc = NULL;
		lb_stats_free(&stats_cache);
		if (now.present && store_load(STORE_ROOT, LB_STATS_ID, &doc) == STORE_OK)
			stats_from_doc(doc, &stats_cache);
		if (doc)
			yajl_tree_free(doc);
		file_cache_set(&stats_key, path, &now);
	}
	return &stats_cache;
}

double lb_stats_ewma(const struct lb_server_stats *st, const char *model)
{
	if (!st)
		return 0;
	if (model)
		for (size_t i = 0; i < st->nmodels; i++)
			if (strcmp(st->models[i].model, model) == 0 && st->models[i].ewma_ms > 0)
				return st->models[i].ewma_ms;
	return st->ewma_ms;
}

/* ---- folding the event log ---- */

static int64_t hour_start(const char *h)
{
	if (!hour_valid(h))
		return -1;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	char part[5];
	memcpy(part, h, 4);
	part[4] = '\0';
	tm.tm_year = atoi(part) - 1900;
	part[2] = '\0';
	memcpy(part, h + 4, 2);
	tm.tm_mon = atoi(part) - 1;
	memcpy(part, h + 6, 2);
	tm.tm_mday = atoi(part);
	memcpy(part, h + 8, 2);
	tm.tm_hour = atoi(part);
	return (int64_t)timegm(&tm) * 1000;
}

/* The size of the hour's event log; false when it cannot be read. */
static bool events_size(const char *hour, long long *size)
{
	char rel[64];
	struct file_stamp st;
	snprintf(rel, sizeof rel, STATSFILE_EVENTS "/%s.jsonl", hour);
	if (statsfile_info(rel, &st) != STORE_OK)
		return false;
	*size = (long long)st.size;
	return true;
}

/* Reads [off, off + len) of the hour's event log into a fresh buffer (NUL-terminated,
 * the caller's to free); *got bytes. */
static char *read_range(const char *hour, long long off, size_t len, size_t *got)
{
	char rel[64];
	struct buf b = BUF_INIT;
	snprintf(rel, sizeof rel, STATSFILE_EVENTS "/%s.jsonl", hour);
	statsfile_read(rel, (uint64_t)off, len, &b, NULL);
	*got = b.len;
	return buf_detach(&b);
}

static bool line_has(const char *line, size_t len, const char *needle)
{
	return memmem(line, len, needle, strlen(needle)) != NULL;
}

/* One event line. Only attempt endings teach anything: completed is a success (its
 * "ms", dispatch to result, feeds the EWMAs); failed, retried (an error, or a busy
 * answer: either way the server did not take the work) and timed_out are failures. */
static void fold_line(struct lb_stats *s, const char *line, size_t len)
{
	bool ok;
	if (line_has(line, len, "\"type\":\"completed\""))
		ok = true;
	else if (line_has(line, len, "\"type\":\"failed\"") ||
		 line_has(line, len, "\"type\":\"retried\"") ||
		 line_has(line, len, "\"type\":\"timed_out\""))
		ok = false;
	else
		return;
	yajl_val ev = json_parse(line, len, NULL, NULL);
	if (!ev)
		return;
	const char *server = json_str_or(ev, "server", NULL);
	const char *model = json_str_or(ev, "model", NULL);
	long long ms = json_int_or(ev, "ms", 0);
	int64_t t = json_int_or(ev, "t", 0);
	struct lb_server_stats *e = server && store_id_valid(server) ? stats_entry(s, server) : NULL;
	if (e) {
		e->ok *= LB_OUTCOME_DECAY;
		e->fail *= LB_OUTCOME_DECAY;
		if (ok)
			e->ok += 1;
		else
			e->fail += 1;
		if (t > e->last_at)
			e->last_at = t;
		if (ok && ms > 0) {
			e->ewma_ms = lb_ewma_next(e->ewma_ms, (double)ms);
			if (model && *model) {
				struct lb_model_stat *m = model_entry(e, model);
				m->ewma_ms = lb_ewma_next(m->ewma_ms, (double)ms);
				if (t > m->at)
					m->at = t;
			}
		}
	}
	yajl_tree_free(ev);
}

/* Folds the hour's log from *offset, reading at most *budget bytes. A log further
 * behind than four budgets is skipped forward (recent outcomes matter, old ones have
 * decayed anyway). *at_end: nothing is left in the file right now. */
static void fold_file(struct lb_stats *s, const char *hour, long long *offset, size_t *budget,
		      bool *at_end)
{
	long long size;
	*at_end = true;
	if (!events_size(hour, &size))
		return;
	if (*offset > size)
		*offset = 0; /* the file was replaced: start over */
	bool skip_partial = false;
	if (size - *offset > (long long)*budget * 4) {
		*offset = size - (long long)*budget;
		skip_partial = true;
	}
	size_t want = (size_t)(size - *offset);
	if (want > *budget)
		want = *budget;
	if (want == 0)
		return;
	size_t got;
	char *b = read_range(hour, *offset, want, &got);
	size_t pos = 0, consumed = 0;
	if (skip_partial) {
		char *nl = memchr(b, '\n', got);
		pos = consumed = nl ? (size_t)(nl - b) + 1 : got;
	}
	while (pos < got) {
		char *nl = memchr(b + pos, '\n', got - pos);
		if (!nl)
			break; /* a line being written: next time */
		size_t len = (size_t)(nl - (b + pos));
		if (len)
			fold_line(s, b + pos, len);
		pos += len + 1;
		consumed = pos;
	}
	free(b);
	*offset += (long long)consumed;
	*budget -= want < *budget ? want : *budget;
	*at_end = *offset >= size;
}

struct fold_arg {
	int64_t max_age_ms;
	size_t budget;
	int64_t now;
};

static bool fresh(const struct lb_stats *s, int64_t now, int64_t max_age_ms)
{
	return max_age_ms > 0 && s->folded_at && s->folded_at <= now + 60000 &&
	       now - s->folded_at < max_age_ms;
}

static int fold_edit(yajl_val old, struct jgen *g, void *arg)
{
	struct fold_arg *fa = arg;
	struct lb_stats s;
	stats_from_doc(old, &s);
	if (fresh(&s, fa->now, fa->max_age_ms)) {
		lb_stats_free(&s);
		return STORE_UNCHANGED;
	}
	char cur[16];
	hour_name(fa->now, cur);
	int64_t cur_start = hour_start(cur), at = hour_start(s.cursor_hour);
	/* No cursor, a cursor from the future (another host's clock) or one more than two
	 * hours behind: start with the current hour. */
	if (at < 0 || at > cur_start || cur_start - at > 2 * HOUR_MS) {
		snprintf(s.cursor_hour, sizeof s.cursor_hour, "%s", cur);
		s.cursor_offset = 0;
	}
	size_t budget = fa->budget;
	for (int i = 0; i < 4 && budget > 0; i++) {
		bool at_end;
		fold_file(&s, s.cursor_hour, &s.cursor_offset, &budget, &at_end);
		if (!at_end || strcmp(s.cursor_hour, cur) >= 0)
			break;
		hour_name(hour_start(s.cursor_hour) + HOUR_MS, s.cursor_hour);
		s.cursor_offset = 0;
	}
	s.folded_at = fa->now;
	stats_to_doc(&s, g);
	lb_stats_free(&s);
	return STORE_OK;
}

/* wait_ms 0: give up at once when another process is folding (it will be fresh). */
static int fold_locked(int64_t max_age_ms, size_t budget, unsigned wait_ms)
{
	int64_t now = now_ms();
	if (fresh(lb_stats_get(), now, max_age_ms))
		return STORE_UNCHANGED;
	int fd = store_lock_path(LB_FOLD_LOCK, wait_ms);
	if (fd < 0)
		return errno == EWOULDBLOCK ? STORE_BUSY : STORE_IO;
	struct fold_arg fa = {max_age_ms, budget, now};
	int rc = store_update(STORE_ROOT, LB_STATS_ID, STORE_UPSERT | STORE_NO_FSYNC, fold_edit,
			      &fa);
	store_unlock(fd);
	if (rc != STORE_OK && rc != STORE_UNCHANGED && rc != STORE_BUSY)
		log_warn("lb: folding the event log into lb-stats failed: %s",
			 store_strerror(rc));
	return rc;
}

int lb_stats_fold(int64_t max_age_ms, size_t budget)
{
	return fold_locked(max_age_ms, budget, 5000);
}

/* ---- weights and candidates ---- */

void lb_server_weight(const struct server *s, const struct lb_config *cfg,
		      const struct lb_server_stats *st, double ref, int64_t now,
		      struct lb_weight *w)
{
	struct lb_weight_in in = {
		.weight = s->weight,
		.degraded = s->health == HEALTH_DEGRADED,
		.health_score = s->health_score,
		.ok = st ? st->ok : 0,
		.fail = st ? st->fail : 0,
		.ewma_ms = st ? st->ewma_ms : 0,
		.ref_ewma_ms = ref,
		/* statusSince 0 (never stamped) is "up for ever": no slow start. */
		.up_for_ms = now - s->status_since,
		.slow_start_ms = (int64_t)cfg->slow_start_s * 1000,
	};
	lb_weight_compute(&in, w);
}

double lb_fleet_ewma(const struct server *v, size_t n, const struct lb_stats *stats)
{
	if (!stats || !stats->n || !n)
		return 0;
	double *e = malloc(n * sizeof *e);
	if (!e)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct lb_server_stats *st = lb_stats_find(stats, v[i].id);
		e[i] = st ? st->ewma_ms : 0;
	}
	double m = lb_median_positive(e, n);
	free(e);
	return m;
}

void lb_candidates_fill(struct lb_candidate *c, const struct server *v, size_t n,
			const struct lb_config *cfg, const char *model, int64_t now)
{
	const struct lb_stats *stats = NULL;
	if (cfg->algorithm != LB_ROUND_ROBIN) {
		stats = lb_stats_get();
		if (!fresh(stats, now, LB_FOLD_EVERY_MS)) {
			/* Whoever finds the stats stale refreshes them, once for everybody;
			 * a process that finds the fold lock taken goes on with what it has. */
			fold_locked(LB_FOLD_EVERY_MS, LB_FOLD_BUDGET, 0);
			stats = lb_stats_get();
		}
	}
	double ref = lb_fleet_ewma(v, n, stats);
	for (size_t i = 0; i < n; i++) {
		const struct lb_server_stats *st = stats ? lb_stats_find(stats, v[i].id) : NULL;
		struct lb_weight w;
		lb_server_weight(&v[i], cfg, st, ref, now, &w);
		c[i] = (struct lb_candidate){
			.id = v[i].id,
			.weight = w.effective,
			.factor = w.factor,
			.load = v[i].current_load,
			.max = v[i].max_concurrent,
			.ewma_ms = lb_stats_ewma(st, model),
			.current_weight = 0,
		};
	}
}

/* ---- picking with the shared cursors (lb-state.json) ---- */

struct select_arg {
	enum lb_algorithm alg;
	struct lb_candidate *c;
	size_t n;
	const bool *excluded;
	uint64_t rnd;
	int chosen;
};

static int select_edit(yajl_val old, struct jgen *g, void *arg)
{
	struct select_arg *a = arg;
	long long rr = json_int_or(old, "rrCounter", 0);
	struct lb_state st = {rr > 0 ? (uint64_t)rr : 0};
	yajl_val wrr = json_get(old, "wrr");
	if (wrr && !YAJL_IS_OBJECT(wrr))
		wrr = NULL;
	if (a->alg == LB_WEIGHTED)
		for (size_t i = 0; i < a->n; i++)
			a->c[i].current_weight = json_int_or(wrr, a->c[i].id, 0);
	a->chosen = lb_pick(a->alg, a->c, a->n, a->excluded, &st, NULL, a->rnd);
	if (a->chosen < 0)
		return STORE_UNCHANGED;
	jg_obj(g);
	/* Kept below 2^53 so any JSON reader gets it exactly. */
	jg_kint(g, "rrCounter", (long long)(st.rr_counter & ((1ull << 53) - 1)));
	jg_key(g, "wrr");
	if (a->alg == LB_WEIGHTED) {
		/* Servers no longer registered drop out here. */
		jg_obj(g);
		for (size_t i = 0; i < a->n; i++)
			jg_kint(g, a->c[i].id, (long long)a->c[i].current_weight);
		jg_obj_end(g);
	} else if (wrr) {
		jg_value(g, wrr);
	} else {
		jg_obj(g);
		jg_obj_end(g);
	}
	jg_obj_end(g);
	return STORE_OK;
}

/* Without the shared cursor: proportional on average, like smooth WRR over time. */
static int weighted_random(const struct lb_candidate *c, size_t n, const bool *excluded,
			   uint64_t rnd)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (!(excluded && excluded[i]) && c[i].max > 0 && c[i].load < c[i].max)
			total += (uint64_t)(c[i].weight > 0 ? c[i].weight : 1);
	if (!total)
		return -1;
	uint64_t r = rnd % total;
	for (size_t i = 0; i < n; i++) {
		if ((excluded && excluded[i]) || c[i].max <= 0 || c[i].load >= c[i].max)
			continue;
		uint64_t w = (uint64_t)(c[i].weight > 0 ? c[i].weight : 1);
		if (r < w)
			return (int)i;
		r -= w;
	}
	return -1;
}

int lb_select(enum lb_algorithm alg, struct lb_candidate *c, size_t n, const bool *excluded,
	      const struct lb_task *t, uint64_t rnd)
{
	static struct lb_state local; /* fallback only */
	bool shared = alg == LB_ROUND_ROBIN || alg == LB_WEIGHTED;
	if (!shared || (t && t->affinity_key && *t->affinity_key))
		return lb_pick(alg, c, n, excluded, &local, t, rnd);
	struct select_arg a = {alg, c, n, excluded, rnd, -1};
	int rc = store_update(STORE_ROOT, LB_STATE_ID, STORE_UPSERT | STORE_NO_FSYNC, select_edit,
			      &a);
	if (rc == STORE_OK || rc == STORE_UNCHANGED)
		return a.chosen;
	log_warn("lb: shared cursor unavailable (%s); picking with a local one",
		 store_strerror(rc));
	if (alg == LB_WEIGHTED)
		return weighted_random(c, n, excluded, rnd);
	return lb_pick(alg, c, n, excluded, &local, NULL, rnd);
}

/* ---- distribution ---- */

void lb_distribution_free(struct lb_distribution *d)
{
	free(d->v);
	memset(d, 0, sizeof *d);
}

static int cmp_share(const void *a, const void *b)
{
	return strcmp(((const struct lb_share *)a)->id, ((const struct lb_share *)b)->id);
}

long lb_distribution_count(const struct lb_distribution *d, const char *id)
{
	if (!d->n)
		return 0;
	struct lb_share key;
	snprintf(key.id, sizeof key.id, "%s", id);
	const struct lb_share *s = bsearch(&key, d->v, d->n, sizeof *d->v, cmp_share);
	return s ? s->count : 0;
}

static void dist_add(struct lb_distribution *d, const char *id, size_t len)
{
	for (size_t i = 0; i < d->n; i++)
		if (strlen(d->v[i].id) == len && memcmp(d->v[i].id, id, len) == 0) {
			d->v[i].count++;
			d->total++;
			return;
		}
	if (d->n >= LB_SERVERS_MAX)
		return;
	struct lb_share *v = realloc(d->v, (d->n + 1) * sizeof *v);
	if (!v)
		abort();
	d->v = v;
	memcpy(d->v[d->n].id, id, len);
	d->v[d->n].id[len] = '\0';
	d->v[d->n].count = 1;
	d->n++;
	d->total++;
}

/* Our own lines ({"t":...,"type":"dispatched",...,"server":"<id>",...}) are scanned
 * without a JSON parser: an hour may hold millions. The patterns cannot occur
 * inside a JSON string value, where every '"' is escaped. */
static void dist_line(struct lb_distribution *d, const char *line, size_t len, int64_t from,
		      int64_t to, int64_t *earliest)
{
	if (!line_has(line, len, "\"type\":\"dispatched\""))
		return;
	const char *tp = memmem(line, len, "\"t\":", 4);
	const char *sp = memmem(line, len, "\"server\":\"", 10);
	if (!tp || !sp)
		return;
	long long t = strtoll(tp + 4, NULL, 10);
	if (t < *earliest)
		*earliest = t;
	if (t < from || t > to)
		return;
	sp += 10;
	const char *end = memchr(sp, '"', len - (size_t)(sp - line));
	if (!end || end == sp || end - sp > STORE_ID_MAX)
		return;
	char id[STORE_ID_MAX + 1];
	memcpy(id, sp, (size_t)(end - sp));
	id[end - sp] = '\0';
	if (store_id_valid(id))
		dist_add(d, id, (size_t)(end - sp));
}

static void dist_file(struct lb_distribution *d, const char *hour, int64_t from, int64_t to,
		      int64_t *covered_from)
{
	long long size;
	if (!events_size(hour, &size) || size == 0)
		return;
	long long off = 0;
	size_t want = (size_t)size;
	if (want > LB_DIST_MAX_BYTES) {
		off = size - (long long)LB_DIST_MAX_BYTES;
		want = LB_DIST_MAX_BYTES;
	}
	size_t got;
	char *b = read_range(hour, off, want, &got);
	size_t pos = 0;
	if (off > 0) {
		char *nl = memchr(b, '\n', got);
		pos = nl ? (size_t)(nl - b) + 1 : got;
	}
	int64_t earliest = INT64_MAX;
	while (pos < got) {
		char *nl = memchr(b + pos, '\n', got - pos);
		size_t len = nl ? (size_t)(nl - (b + pos)) : got - pos;
		dist_line(d, b + pos, len, from, to, &earliest);
		pos += len + 1;
	}
	free(b);
	/* Only the tail was read: nothing before its first line is counted. */
	if (off > 0 && earliest != INT64_MAX && earliest > *covered_from) {
		*covered_from = earliest;
		d->partial = true;
	}
}

void lb_distribution(int64_t now, int64_t window_ms, struct lb_distribution *d)
{
	memset(d, 0, sizeof *d);
	d->from = now - window_ms;
	d->to = now;
	char hour[16], last[16];
	hour_name(d->from, hour);
	hour_name(now, last);
	int64_t covered = d->from;
	for (int i = 0; i < 26; i++) {
		dist_file(d, hour, d->from, now, &covered);
		if (strcmp(hour, last) >= 0)
			break;
		hour_name(hour_start(hour) + HOUR_MS, hour);
	}
	d->from = covered;
	if (d->n)
		qsort(d->v, d->n, sizeof *d->v, cmp_share);
}

/* ---- rebalance ---- */

static int cmp_server_id(const void *a, const void *b)
{
	return strcmp(((const struct server *)a)->id, ((const struct server *)b)->id);
}

size_t lb_servers_load(struct server **out)
{
	struct server_list l;
	server_list_load(&l, LB_SERVERS_MAX);
	*out = l.v;
	return l.n;
}

void lb_servers_free(struct server *v, size_t n)
{
	struct server_list l = {v, n};
	server_list_free(&l);
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct lb_rebalance_item *)a)->id,
		      ((const struct lb_rebalance_item *)b)->id);
}

struct weights_edit {
	struct lb_rebalance *r;
};

/* Stores the new effective weights, records the old ones, and forgets the stats of
 * servers that are no longer registered. */
static int weights_edit_fn(yajl_val old, struct jgen *g, void *arg)
{
	struct lb_rebalance *r = ((struct weights_edit *)arg)->r;
	struct lb_stats s;
	stats_from_doc(old, &s);
	size_t keep = 0;
	for (size_t i = 0; i < s.n; i++) {
		struct lb_rebalance_item key;
		snprintf(key.id, sizeof key.id, "%s", s.v[i].id);
		if (bsearch(&key, r->v, r->n, sizeof *r->v, cmp_item)) {
			s.v[keep++] = s.v[i];
		} else {
			for (size_t m = 0; m < s.v[i].nmodels; m++)
				free(s.v[i].models[m].model);
			free(s.v[i].models);
		}
	}
	s.n = keep;
	r->weights_changed = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct lb_server_stats *e = stats_entry(&s, r->v[i].id);
		if (!e)
			continue;
		r->v[i].eff_before = e->effective;
		if (e->effective != r->v[i].eff_after)
			r->weights_changed++;
		e->effective = r->v[i].eff_after;
	}
	stats_to_doc(&s, g);
	lb_stats_free(&s);
	return STORE_OK;
}

void lb_rebalance_begin(struct lb_rebalance *r, struct server_list *before)
{
	memset(r, 0, sizeof *r);
	r->started_mono = mono_ms();
	lb_stats_fold(0, 4 * LB_FOLD_BUDGET);
	server_list_load(before, LB_SERVERS_MAX);
}

int lb_rebalance_finish(struct lb_rebalance *r, struct server_list *before)
{
	struct server_list after;
	server_list_load(&after, LB_SERVERS_MAX);

	struct lb_config cfg;
	lb_config_load(&cfg);
	const struct lb_stats *stats = lb_stats_get();
	double ref = lb_fleet_ewma(after.v, after.n, stats);
	int64_t now = now_ms();
	r->v = calloc(after.n + 1, sizeof *r->v);
	if (!r->v)
		abort();
	for (size_t i = 0; i < after.n; i++) {
		struct lb_rebalance_item *it = &r->v[r->n++];
		const struct server *s = &after.v[i];
		snprintf(it->id, sizeof it->id, "%s", s->id);
		it->weight = s->weight;
		it->load_after = s->current_load;
		it->load_before = s->current_load;
		struct server key;
		snprintf(key.id, sizeof key.id, "%s", s->id);
		const struct server *b =
			bsearch(&key, before->v, before->n, sizeof *before->v, cmp_server_id);
		if (b)
			it->load_before = b->current_load;
		lb_server_weight(s, &cfg, lb_stats_find(stats, s->id), ref, now, &it->parts);
		it->eff_after = it->parts.effective;
	}
	server_list_free(before);
	server_list_free(&after);

	struct weights_edit we = {r};
	int rc = store_update(STORE_ROOT, LB_STATS_ID, STORE_UPSERT | STORE_NO_FSYNC,
			      weights_edit_fn, &we);
	r->took_ms = mono_ms() - r->started_mono;
	return rc;
}

void lb_rebalance_free(struct lb_rebalance *r)
{
	free(r->v);
	memset(r, 0, sizeof *r);
}
