#include "jobs/health.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "stats/events.h"
#include "base/json.h"
#include "base/log.h"
#include "fs/store.h"
#include "base/util.h"

#define EWMA_ALPHA   0.3
#define SCORE_ALPHA  0.3
#define ADAPT_FACTOR 1.5

/* ---- settings ---- */

void health_cfg_defaults(struct health_cfg *c)
{
	c->rise = 2;
	c->fall = 3;
	c->inter_ms = 10000;
	c->fastinter_ms = 2000;
	c->downinter_ms = 30000;
	c->max_inter_ms = 60000;
	c->timeout_ms = 2000;
	c->connect_timeout_ms = 1000;
	c->degraded_ms = 1000;
}

/* Seconds in the file (fractions allowed, so tests can use short intervals). */
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
}

/* ---- the counter ---- */

int health_counter_top(int rise, int fall)
{
	return rise + fall - 1;
}

bool health_counter_up(int counter, int rise)
{
	return counter >= rise;
}

int health_counter_normalize(int stored, bool stored_up, int rise, int fall)
{
	int top = health_counter_top(rise, fall);
	if (stored < 0 || stored > top)
		return stored_up ? top : 0;
	if (stored_up != health_counter_up(stored, rise))
		return stored_up ? top : 0;
	return stored;
}

int health_counter_step(int counter, bool pass, int rise, int fall)
{
	int top = health_counter_top(rise, fall);
	if (pass) {
		if (counter < top) {
			counter++;
			if (counter >= rise)
				counter = top;
		}
	} else if (counter > 0) {
		counter--;
		if (counter < rise)
			counter = 0;
	}
	return counter;
}

/* ---- verdicts ---- */

const char *health_verdict_name(enum health_verdict v)
{
	static const char *const names[] = {"pass", "busy", "starting", "fail"};
	return names[v];
}

static const struct json_limits answer_limits = {
    .max_bytes = HEALTH_BODY_MAX, .max_depth = 16, .max_string = HEALTH_BODY_MAX};

enum health_verdict health_classify(enum server_protocol p, long http_status, const char *body,
				    size_t len, char *why, size_t whylen)
{
	if (whylen)
		why[0] = '\0';
	if (http_status <= 0) {
		snprintf(why, whylen, "no answer");
		return HV_FAIL;
	}
	if (p == PROTO_HTTP_JSON) {
		if (http_status >= 200 && http_status <= 299)
			return HV_PASS;
		snprintf(why, whylen, "HTTP %ld", http_status);
		return HV_FAIL;
	}
	/* Cog answers 200 in every state; anything else is not a working Cog. */
	if (http_status != 200) {
		snprintf(why, whylen, "HTTP %ld", http_status);
		return HV_FAIL;
	}
	yajl_val doc = json_parse(body ? body : "", body ? len : 0, &answer_limits, NULL);
	const char *status;
	enum health_verdict v = HV_FAIL;
	if (!doc || !YAJL_IS_OBJECT(doc))
		snprintf(why, whylen, "answer is not a JSON object");
	else if (json_get_str(doc, "status", &status) != JSON_OK)
		snprintf(why, whylen, "answer has no \"status\" string");
	else if (strcmp(status, "READY") == 0)
		v = HV_PASS;
	else if (strcmp(status, "BUSY") == 0)
		v = HV_BUSY;
	else if (strcmp(status, "STARTING") == 0) {
		v = HV_STARTING;
		snprintf(why, whylen, "status STARTING");
	} else
		snprintf(why, whylen, "status %.40s", status);
	if (doc)
		yajl_tree_free(doc);
	return v;
}

/* ---- derived values ---- */

enum server_health health_status_of(const struct health_cfg *c, int counter, double ewma_ms)
{
	int top = health_counter_top(c->rise, c->fall);
	if (!health_counter_up(counter, c->rise))
		return HEALTH_OFFLINE;
	if ((counter == c->rise && counter < top) || ewma_ms > (double)c->degraded_ms)
		return HEALTH_DEGRADED;
	return HEALTH_ONLINE;
}

int64_t health_interval_ms(const struct health_cfg *c, int before, int after, int64_t prev_ms)
{
	int top = health_counter_top(c->rise, c->fall);
	if (after <= 0)
		return c->downinter_ms;
	if (after < top)
		return c->fastinter_ms;
	if (before < top || prev_ms <= 0)
		return c->inter_ms; /* just came back (or first check): start over */
	double next = (double)prev_ms * ADAPT_FACTOR;
	if (next < (double)c->inter_ms)
		return c->inter_ms;
	if (next > (double)c->max_inter_ms)
		return c->max_inter_ms;
	return (int64_t)next;
}

int health_score_next(int old, enum health_verdict v, double elapsed_ms, long degraded_ms)
{
	double sample = 0;
	if (v == HV_PASS || v == HV_BUSY) {
		sample = 100;
		if (degraded_ms > 0 && elapsed_ms > (double)degraded_ms) {
			double over = (elapsed_ms - (double)degraded_ms) / (double)degraded_ms;
			sample = 100 - 50 * (over > 1 ? 1 : over);
		}
	}
	if (old < 0)
		old = 0;
	if (old > 100)
		old = 100;
	double next = (1 - SCORE_ALPHA) * old + SCORE_ALPHA * sample;
	/* Round towards the sample, or the average never reaches 0 or 100. */
	int r = next > old ? (int)ceil(next) : (int)floor(next);
	return r < 0 ? 0 : r > 100 ? 100 : r;
}

double health_ewma_next(double old, double sample_ms)
{
	if (old <= 0)
		return sample_ms;
	return (1 - EWMA_ALPHA) * old + EWMA_ALPHA * sample_ms;
}

enum server_health health_apply(const struct health_cfg *c, struct server *s,
				const struct health_outcome *o)
{
	enum server_health from = s->health;
	int before =
	    health_counter_normalize(s->check_counter, from != HEALTH_OFFLINE, c->rise, c->fall);
	bool pass = o->verdict == HV_PASS || o->verdict == HV_BUSY;
	int after = health_counter_step(before, pass, c->rise, c->fall);

	if (o->answered && !o->passive)
		s->ewma_ms = health_ewma_next(s->ewma_ms, o->elapsed_ms);
	if (pass) {
		s->consecutive_failures = 0;
		s->last_success_at = o->at_ms;
	} else if (o->verdict == HV_FAIL) {
		s->consecutive_failures++;
	} /* HV_STARTING: not routable, but not an error either */
	/* A dispatch time is inference time, not a health response time. */
	s->health_score = health_score_next(s->health_score, o->verdict,
					    o->passive ? 0 : o->elapsed_ms, c->degraded_ms);
	s->check_counter = after;
	s->health = health_status_of(c, after, s->ewma_ms);
	if (s->health != from)
		s->status_since = o->at_ms;

	if (!o->passive) {
		int64_t prev = 0;
		if (s->last_health_check > 0 && s->next_check_at > s->last_health_check)
			prev = s->next_check_at - s->last_health_check;
		s->last_health_check = o->at_ms;
		s->next_check_at = o->at_ms + health_interval_ms(c, before, after, prev);
	} else if (after != before) {
		int64_t soon = o->at_ms + health_interval_ms(c, before, after, 0);
		if (s->next_check_at <= 0 || soon < s->next_check_at)
			s->next_check_at = soon;
	}
	return from;
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
	int counter = health_counter_normalize(s->check_counter, s->health != HEALTH_OFFLINE,
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

/* ---- the run ---- */

struct target {
	char id[STORE_ID_MAX + 1];
	char *url;
	enum server_protocol proto;
	enum server_health health;
	bool maintenance;
	int64_t next_check_at;
	bool due;

	/* the probe */
	CURL *h;
	struct buf body;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct health_outcome out;
	char why[160];
};

struct target_list {
	struct target *v;
	size_t n, cap;
	int errors;
};

static int collect_target(const char *id, void *arg)
{
	struct target_list *l = arg;
	struct server s;
	int rc = server_load(id, &s);
	if (rc == STORE_NOENT)
		return 0; /* removed meanwhile */
	if (rc != STORE_OK) {
		log_warn("health: cannot read server %s: %s", id, store_strerror(rc));
		l->errors++;
		return 0;
	}
	l->v = array_grow(l->v, l->n, &l->cap, sizeof *l->v, 32);
	struct target *t = &l->v[l->n++];
	memset(t, 0, sizeof *t);
	snprintf(t->id, sizeof t->id, "%s", s.id[0] ? s.id : id);
	t->url = s.health_url; /* ownership moves to the target */
	s.health_url = NULL;
	t->proto = s.protocol;
	t->health = s.health;
	t->maintenance = s.maintenance;
	t->next_check_at = s.next_check_at;
	server_free(&s);
	return 0;
}

static void free_targets(struct target_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].url);
		buf_free(&l->v[i].body);
		if (l->v[i].h)
			curl_easy_cleanup(l->v[i].h);
	}
	free(l->v);
}

static int cmp_due(const void *a, const void *b)
{
	const struct target *x = *(const struct target *const *)a;
	const struct target *y = *(const struct target *const *)b;
	return x->next_check_at < y->next_check_at ? -1 : x->next_check_at > y->next_check_at;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct target *t = arg;
	size_t len = size * n;
	if (t->body.len + len > HEALTH_BODY_MAX) {
		t->too_big = true;
		return 0; /* anything but len aborts the transfer */
	}
	buf_add(&t->body, data, len);
	return len;
}

static void fail_now(struct target *t, const char *why)
{
	t->out.verdict = HV_FAIL;
	t->out.answered = false;
	t->out.elapsed_ms = 0;
	t->out.at_ms = now_ms();
	snprintf(t->why, sizeof t->why, "%s", why);
}

/* Prepares the easy handle; 0, or -1 after recording the failure in t. */
static int probe_setup(struct target *t, const struct health_cfg *c)
{
	if (!t->url || !*t->url) {
		fail_now(t, "no health endpoint");
		return -1;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		fail_now(t, "curl_easy_init failed");
		return -1;
	}
	t->h = h;
	bool ok =
	    curl_easy_setopt(h, CURLOPT_URL, t->url) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form; the bitmask is deprecated */
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
#else
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) ==
		CURLE_OK &&
#endif
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, t) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_PRIVATE, t) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "taskgate-health/1") == CURLE_OK &&
	    /* A fresh connection per check: a check must see the server as a new
	     * client would, and nothing idles in a cron program anyway. */
	    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK;
	if (!ok) {
		curl_easy_cleanup(h);
		t->h = NULL;
		fail_now(t, "cannot configure the probe");
		return -1;
	}
	t->out.at_ms = now_ms();
	return 0;
}

static void probe_done(struct target *t, CURLcode rc)
{
	curl_off_t us = 0;
	long status = 0;
	curl_easy_getinfo(t->h, CURLINFO_TOTAL_TIME_T, &us);
	curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
	t->out.elapsed_ms = (double)us / 1000.0;
	t->out.at_ms = now_ms();
	if (rc != CURLE_OK) {
		t->out.verdict = HV_FAIL;
		t->out.answered = false;
		if (t->too_big)
			snprintf(t->why, sizeof t->why, "answer larger than %d bytes",
				 HEALTH_BODY_MAX);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			snprintf(t->why, sizeof t->why, "timed out after %.0f ms",
				 t->out.elapsed_ms);
		else
			snprintf(t->why, sizeof t->why, "%s",
				 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
		return;
	}
	t->out.answered = true;
	t->out.verdict =
	    health_classify(t->proto, status, t->body.data, t->body.len, t->why, sizeof t->why);
}

/* Probes every target concurrently, at most max_par in flight. Afterwards every
 * target has an outcome. */
static void probe_all(struct target **due, size_t n, int max_par, const struct health_cfg *c)
{
	CURLM *m = curl_multi_init();
	if (!m) {
		for (size_t i = 0; i < n; i++)
			fail_now(due[i], "curl_multi_init failed");
		return;
	}
	size_t next = 0;
	int active = 0;
	while (next < n || active > 0) {
		while (active < max_par && next < n) {
			struct target *t = due[next++];
			if (probe_setup(t, c) < 0)
				continue;
			if (curl_multi_add_handle(m, t->h) != CURLM_OK) {
				curl_easy_cleanup(t->h);
				t->h = NULL;
				fail_now(t, "curl_multi_add_handle failed");
				continue;
			}
			active++;
		}
		int running = 0;
		CURLMcode mc = curl_multi_perform(m, &running);
		CURLMsg *msg;
		int queued;
		while ((msg = curl_multi_info_read(m, &queued)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			struct target *t = (struct target *)(void *)priv;
			CURLcode rc = msg->data.result; /* msg dies with remove_handle */
			curl_multi_remove_handle(m, msg->easy_handle);
			probe_done(t, rc);
			curl_easy_cleanup(t->h);
			t->h = NULL;
			active--;
		}
		if (mc != CURLM_OK) {
			/* The multi handle is broken: fail what is left rather than spin. */
			log_error("health: curl_multi_perform: %s", curl_multi_strerror(mc));
			for (size_t i = 0; i < next; i++)
				if (due[i]->h) {
					curl_multi_remove_handle(m, due[i]->h);
					curl_easy_cleanup(due[i]->h);
					due[i]->h = NULL;
					fail_now(due[i], "probe aborted");
				}
			for (; next < n; next++)
				fail_now(due[next], "probe aborted");
			active = 0;
			break;
		}
		if (active > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	curl_multi_cleanup(m);
}

static void count(struct health_summary *sum, enum server_health h, bool maintenance)
{
	sum->servers++;
	if (h == HEALTH_ONLINE)
		sum->up++;
	else if (h == HEALTH_DEGRADED)
		sum->degraded++;
	else
		sum->down++;
	if (maintenance)
		sum->maintenance++;
}

int health_run(const struct health_opts *o, struct health_summary *sum)
{
	static const struct health_opts none = {0};
	if (!o)
		o = &none;
	memset(sum, 0, sizeof *sum);
	int64_t started = mono_ms();
	struct health_cfg cfg;
	if (o->cfg)
		cfg = *o->cfg;
	else
		health_cfg_load(&cfg);
	health_change_fn *hook = o->on_change ? o->on_change : global_hook;
	void *hook_arg = o->on_change ? o->on_change_arg : global_hook_arg;

	struct target_list l = {0};
	store_list("servers", collect_target, &l);
	sum->errors = l.errors;

	/* Due servers, most overdue first. */
	int64_t now = now_ms();
	struct target **due = calloc(l.n ? l.n : 1, sizeof *due);
	if (!due)
		abort();
	size_t ndue = 0;
	for (size_t i = 0; i < l.n; i++)
		if (o->all || l.v[i].next_check_at <= now + HEALTH_DUE_SLACK_MS)
			due[ndue++] = &l.v[i];
	qsort(due, ndue, sizeof *due, cmp_due);
	if (o->max_checks > 0 && ndue > (size_t)o->max_checks)
		ndue = (size_t)o->max_checks;
	for (size_t i = 0; i < ndue; i++)
		due[i]->due = true;

	int max_par = o->max_parallel > 0 ? o->max_parallel : HEALTH_MAX_PARALLEL;
	probe_all(due, ndue, max_par, &cfg);

	for (size_t i = 0; i < l.n; i++) {
		struct target *t = &l.v[i];
		if (!t->due) {
			count(sum, t->health, t->maintenance);
			continue;
		}
		struct apply_ctx a = {.cfg = &cfg, .out = t->out};
		struct server after;
		int rc = server_update(t->id, apply_edit, &a, &after);
		if (rc == STORE_NOENT)
			continue; /* unregistered while we probed */
		if (rc != STORE_OK) {
			log_warn("health: cannot update server %s: %s", t->id, store_strerror(rc));
			sum->errors++;
			count(sum, t->health, t->maintenance);
			continue;
		}
		sum->checked++;
		count(sum, after.health, after.maintenance);
		server_free(&after);
		if (a.from != a.to) {
			sum->changed++;
			report_change(t->id, a.from, a.to, t->why, hook, hook_arg);
		}
	}
	free(due);
	free_targets(&l);
	sum->elapsed_ms = mono_ms() - started;
	return 0;
}

/* ---- reporting ---- */

int health_summary_exit(const struct health_summary *s)
{
	if (s->servers > 0 && s->up + s->degraded == 0)
		return 2;
	if (s->degraded > 0 || s->down > 0 || s->errors > 0)
		return 1;
	return 0;
}

void health_summary_line(const struct health_summary *s, struct buf *out)
{
	static const char *const words[] = {"OK", "WARNING", "CRITICAL"};
	buf_printf(out, "TASKGATE HEALTH %s - %d up, %d degraded, %d down",
		   words[health_summary_exit(s)], s->up, s->degraded, s->down);
	if (s->errors > 0)
		buf_printf(out, ", %d not readable or not updated (see the log)", s->errors);
	buf_printf(out, " | up=%d degraded=%d down=%d", s->up, s->degraded, s->down);
}
