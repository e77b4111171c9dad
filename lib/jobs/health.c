#include "jobs/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "net/http_client.h"

#define PROBE_USER_AGENT "taskgate-health/1"

struct target {
	char id[STORE_ID_MAX + 1];
	char *url;
	enum server_protocol proto;
	enum server_health health;
	bool maintenance;
	int64_t next_check_at;
	bool due;

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
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].url);
	free(l->v);
}

static int cmp_due(const void *a, const void *b)
{
	const struct target *x = *(const struct target *const *)a;
	const struct target *y = *(const struct target *const *)b;
	return x->next_check_at < y->next_check_at ? -1 : x->next_check_at > y->next_check_at;
}

static void fail_now(struct target *t, const char *why)
{
	t->out.verdict = HV_FAIL;
	t->out.answered = false;
	t->out.elapsed_ms = 0;
	t->out.at_ms = now_ms();
	snprintf(t->why, sizeof t->why, "%s", why);
}

/* The outcome of t's probe from its HTTP result. */
static void judge(struct target *t, const struct http_result *res)
{
	t->out.elapsed_ms = res->elapsed_ms;
	t->out.at_ms = res->done_at_ms;
	if (res->status == 0) {
		t->out.verdict = HV_FAIL;
		t->out.answered = false;
		if (res->timed_out)
			snprintf(t->why, sizeof t->why, "timed out after %.0f ms",
				 t->out.elapsed_ms);
		else
			snprintf(t->why, sizeof t->why, "%s", res->error);
		return;
	}
	t->out.answered = true;
	t->out.http_status = res->status;
	t->out.verdict = health_classify(t->proto, res->status, res->body.data, res->body.len,
					 t->why, sizeof t->why);
}

/* Probes every target concurrently, at most max_par in flight. Afterwards every
 * target has an outcome. */
static void probe_all(struct target **due, size_t n, int max_par, const struct health_cfg *c)
{
	struct http_request *rq = calloc(n ? n : 1, sizeof *rq);
	struct http_result *res = calloc(n ? n : 1, sizeof *res);
	struct target **sent = calloc(n ? n : 1, sizeof *sent);
	if (!rq || !res || !sent)
		abort();
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!due[i]->url || !*due[i]->url) {
			fail_now(due[i], "no health endpoint");
			continue;
		}
		sent[k] = due[i];
		rq[k++] = (struct http_request){
		    .url = due[i]->url,
		    .timeout_ms = c->timeout_ms,
		    .connect_timeout_ms = c->connect_timeout_ms,
		    .max_body = HEALTH_BODY_MAX,
		    .keep_prefix = true, /* a long answer is judged on its start */
		    .fresh_connection = true,
		    .user_agent = PROBE_USER_AGENT,
		};
	}
	http_batch_send(rq, res, k, max_par);
	for (size_t i = 0; i < k; i++) {
		judge(sent[i], &res[i]);
		http_result_free(&res[i]);
	}
	free(sent);
	free(res);
	free(rq);
}

void health_probe_one(const struct server *s, const struct health_cfg *c,
		      struct health_outcome *o, char *why, size_t whylen)
{
	struct health_cfg quick = *c;
	quick.timeout_ms = c->register_timeout_ms;
	if (quick.connect_timeout_ms > quick.timeout_ms)
		quick.connect_timeout_ms = quick.timeout_ms;
	struct target t = {.url = s->health_url, .proto = s->protocol};
	struct target *one = &t;
	probe_all(&one, 1, 1, &quick);
	*o = t.out;
	snprintf(why, whylen, "%s", t.why);
	o->why = why;
}

static void count(struct health_summary *sum, enum server_health h, bool maintenance)
{
	sum->servers++;
	if (h == HEALTH_ONLINE)
		sum->up++;
	else if (h == HEALTH_DEGRADED)
		sum->degraded++;
	else if (h == HEALTH_STARTING)
		sum->starting++;
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
		struct server after;
		bool changed;
		int rc = health_record_probe(t->id, &cfg, &t->out, t->why, o->on_change,
					     o->on_change_arg, &after, &changed);
		if (rc == STORE_NOENT)
			continue; /* unregistered while we probed */
		if (rc != STORE_OK) {
			log_warn("health: cannot update server %s: %s", t->id, store_strerror(rc));
			sum->errors++;
			count(sum, t->health, t->maintenance);
			continue;
		}
		sum->checked++;
		sum->changed += changed;
		count(sum, after.health, after.maintenance);
		server_free(&after);
	}
	free(due);
	free_targets(&l);
	sum->elapsed_ms = mono_ms() - started;
	return 0;
}

/* ---- reporting ---- */

int health_summary_exit(const struct health_summary *s)
{
	/* Servers still in their setup are not down: with nothing else, it is a
	 * warning (nothing can take work yet), not an outage. */
	if (s->servers > 0 && s->up + s->degraded == 0 && s->starting < s->servers)
		return 2;
	if (s->servers > 0 && s->up + s->degraded == 0)
		return 1;
	if (s->degraded > 0 || s->down > 0 || s->errors > 0)
		return 1;
	return 0;
}

void health_summary_line(const struct health_summary *s, struct buf *out)
{
	static const char *const words[] = {"OK", "WARNING", "CRITICAL"};
	buf_printf(out, "TASKGATE HEALTH %s - %d up, %d degraded, %d down",
		   words[health_summary_exit(s)], s->up, s->degraded, s->down);
	if (s->starting > 0)
		buf_printf(out, ", %d starting", s->starting);
	if (s->errors > 0)
		buf_printf(out, ", %d not readable or not updated (see the log)", s->errors);
	buf_printf(out, " | up=%d degraded=%d down=%d", s->up, s->degraded, s->down);
}
