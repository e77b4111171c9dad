#include "sched/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/backend.h"
#include "sched/intake.h"
#include "model/auth.h"
#include "model/config.h"
#include "stats/events.h"
#include "fs/journal.h"
#include "sched/server_health.h"
#include "lb/lb.h"
#include "lb/lbstate.h"
#include "base/log.h"
#include "model/retry.h"
#include "model/server.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "base/util.h"

#define SERVERS_MAX 4096
#define RESERVE_REFUSED (STORE_EDIT_BASE + 10)
#define CLAIM_REFUSED (STORE_EDIT_BASE + 11)

/* ---- server snapshot ---- */

static bool snapshot_has_room(const struct server_list *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->v[i].maintenance && server_health_routable(s->v[i].health) &&
		    s->v[i].current_load < s->v[i].max_concurrent)
			return true;
	return false;
}

/* ---- reservation ---- */

struct reserve_arg {
	const struct lb_task *want;
	struct server *after; /* the server as written */
};

static int reserve_edit(struct server *s, void *arg)
{
	struct reserve_arg *r = arg;
	if (lb_eligible(s, r->want) != LB_OK)
		return RESERVE_REFUSED;
	s->current_load++;
	return STORE_OK;
}

/* The LoadBalancer's configuration (lb.json, cached by stat in lbstate, so a change
 * takes effect on the next task in every process). */
static enum lb_algorithm current_algorithm(struct lb_config *cfg)
{
	lb_config_load(cfg);
	return cfg->algorithm;
}

static void task_wants(const struct task *t, struct lb_task *w)
{
	w->model = t->model;
	w->group = t->group;
	w->tags = &t->tags;
	w->affinity_key = t->affinity_key;
	w->avoid_server = t->avoid_server[0] ? t->avoid_server : NULL;
}

/* Picks and reserves a slot for t among the snapshot's servers. Returns the index
 * of the reserved server (its snapshot entry refreshed) or -1.
 *
 * One pick, then at most maxRetries re-picks when the reservation is refused (the
 * server filled up or changed since the snapshot); after that the task waits in the
 * queue, which the drain after every freed slot empties. */
static int reserve_slot(struct server_list *snap, const struct task *t)
{
	if (!snap->n)
		return -1;
	struct lb_config cfg;
	enum lb_algorithm alg = current_algorithm(&cfg);
	struct lb_task want;
	task_wants(t, &want);
	if (!cfg.sticky_session)
		want.affinity_key = NULL;
	bool *excluded = calloc(snap->n, sizeof *excluded);
	struct lb_candidate *cand = calloc(snap->n, sizeof *cand);
	if (!excluded || !cand)
		abort();
	lb_candidates_fill(cand, snap->v, snap->n, &cfg, t->model, now_ms());
	size_t live = 0;
	bool other_than_avoided = false;
	for (size_t i = 0; i < snap->n; i++) {
		struct server *s = &snap->v[i];
		excluded[i] = lb_eligible(s, &want) != LB_OK;
		if (!excluded[i]) {
			live++;
			if (!want.avoid_server || strcmp(s->id, want.avoid_server) != 0)
				other_than_avoided = true;
		}
	}
	/* A retry goes to a different server when one can take it. */
	if (other_than_avoided && want.avoid_server)
		for (size_t i = 0; i < snap->n; i++)
			if (strcmp(snap->v[i].id, want.avoid_server) == 0 && !excluded[i]) {
				excluded[i] = true;
				live--;
			}
	size_t max_tries = (size_t)cfg.max_retries + 1;
	int chosen = -1;
	for (size_t tries = 0; tries < max_tries && tries < snap->n && live > 0; tries++) {
		uint64_t rnd;
		random_bytes(&rnd, sizeof rnd);
		int i = lb_select(alg, cand, snap->n, excluded, &want, rnd);
		if (i < 0)
			break;
		struct server after;
		struct reserve_arg ra = {&want, NULL};
		int rc = server_update(snap->v[i].id, reserve_edit, &ra, &after);
		if (rc == STORE_OK) {
			server_free(&snap->v[i]);
			snap->v[i] = after;
			chosen = i;
			break;
		}
		if (rc == RESERVE_REFUSED) {
			/* Full (or changed) since the snapshot: refresh it, try the next. */
			server_free(&snap->v[i]);
			snap->v[i] = after;
			cand[i].load = after.current_load;
		}
		excluded[i] = true;
		live--;
	}
	free(excluded);
	free(cand);
	return chosen;
}

void dispatch_release_slot(const char *server_id);

/* ---- claiming a task for a reserved slot ---- */

struct claim_arg {
	const char *server_id;
	const char *queue_key; /* the entry we came from, or NULL for a new task */
	char secret[33];
	int attempt;
	char old_queue_key[128];
};

/* Adds the running attempt. Its callback secret is derived (model/auth.h), so any
 * process can send it later; the task keeps only its hash. -1 when no secret can
 * be made (the tree's key is unreadable): nothing may then be placed. */
static int arm_attempt(struct task *t, struct claim_arg *c, int64_t now)
{
	char hash[65];
	struct task_attempt *a = task_add_attempt(t, c->server_id, now);
	if (auth_attempt_secret(t->id, a->n, c->secret) < 0)
		return -1;
	sha256_hex(c->secret, strlen(c->secret), hash);
	snprintf(a->secret_hash, sizeof a->secret_hash, "sha256:%s", hash);
	c->attempt = a->n;
	t->deadline = now + (int64_t)t->timeout_s * 1000;
	t->next_attempt_at = 0;
	snprintf(c->old_queue_key, sizeof c->old_queue_key, "%s", t->queue_key);
	t->queue_key[0] = '\0';
	free(t->backend_status);
	t->backend_status = NULL;
	t->progress_output = NULL; /* a new attempt starts with no output */
	return 0;
}

static int claim_edit(struct task *t, void *arg)
{
	struct claim_arg *c = arg;
	if (t->status != TASK_QUEUED && t->status != TASK_PENDING)
		return CLAIM_REFUSED;
	if (c->queue_key && strcmp(t->queue_key, c->queue_key) != 0)
		return CLAIM_REFUSED; /* re-queued under another key meanwhile */
	int64_t now = now_ms();
	if (!task_set_status(t, TASK_PROCESSING, now))
		return TASK_ILLEGAL_MOVE;
	/* The active hint goes down under the task's lock, once the claim is sure and
	 * before the write makes the task PROCESSING. Written before taking the lock,
	 * a losing claimant's hint could land after the winner's attempt had ended and
	 * removed its own, and stay behind a finished task. */
	if (arm_attempt(t, c, now) < 0 || tindex_active_add(t->id, c->attempt) != STORE_OK)
		return STORE_IO;
	return STORE_OK;
}

static void fill_send(struct dispatch_send *send, const char *task_id, const char *server_id,
		      const struct claim_arg *c)
{
	snprintf(send->task_id, sizeof send->task_id, "%s", task_id);
	snprintf(send->server_id, sizeof send->server_id, "%s", server_id);
	send->attempt = c->attempt;
	memcpy(send->secret, c->secret, sizeof send->secret);
}

int dispatch_place_new(struct task *t, struct dispatch_send *send, struct buf *public_json)
{
	struct server_list snap;
	struct jgen g;
	struct buf doc = BUF_INIT;
	memset(send, 0, sizeof *send);
	server_list_load(&snap, SERVERS_MAX);
	bool room_seen = snapshot_has_room(&snap);
	int chosen = reserve_slot(&snap, t);
	int64_t now = now_ms();
	int rc;

	/* Hints go down before the task file, so a crash leaves no task unindexed. */
	rc = tindex_created_add(t->id, t->created_at);
	if (rc == STORE_OK && chosen >= 0) {
		struct claim_arg c = {.server_id = snap.v[chosen].id};
		rc = task_set_status(t, TASK_PROCESSING, now) ? STORE_OK : TASK_ILLEGAL_MOVE;
		if (rc == STORE_OK && arm_attempt(t, &c, now) < 0)
			rc = STORE_IO;
		if (rc == STORE_OK)
			rc = tindex_active_add(t->id, c.attempt);
		if (rc == STORE_OK)
			fill_send(send, t->id, c.server_id, &c);
	} else if (rc == STORE_OK) {
		rc = task_set_status(t, TASK_QUEUED, now) ? task_queue_entry_add(t) : TASK_ILLEGAL_MOVE;
	}
	if (rc == STORE_OK) {
		jg_init(&g);
		task_to_doc(t, &g);
		rc = jg_finish(&g, &doc) == 0 ? store_create("tasks", t->id, doc.data, doc.len)
					      : STORE_IO;
		jg_free(&g);
	}
	/* The send is owed once the task file says so, never before: a worker that
	 * found the entry first would find no attempt to send. A crash between the two
	 * leaves the attempt to its deadline, like a send lost on the way. */
	if (rc == STORE_OK && send->attempt)
		rc = tindex_work_add(TINDEX_SEND, t->id, send->attempt);
	if (rc != STORE_OK && send->attempt && store_exists("tasks", t->id)) {
		/* Stored but not owed: the sweep times the attempt out and retries it. */
		log_warn("task %s: the send could not be recorded; left to its deadline", t->id);
		rc = STORE_OK;
	}
	if (rc != STORE_OK) {
		if (chosen >= 0)
			dispatch_release_slot(snap.v[chosen].id);
		tindex_queue_remove(t->queue_key);
		memset(send, 0, sizeof *send);
	} else {
		send->room_seen = room_seen;
		jg_init(&g);
		task_to_public(t, &g);
		jg_finish(&g, public_json);
		jg_free(&g);
		events_task("created", t, NULL, 0);
		if (chosen >= 0)
			events_task("dispatched", t, t->server_id, 0);
	}
	buf_free(&doc);
	server_list_free(&snap);
	return rc;
}

/* The Cog webhooks to ask for: config "cog": {"webhookEvents": [...]}. By default
 * only "completed": the PUT's 202 already says the prediction started, and each
 * further event is one more request through the web server per task. Operators
 * who want progress (.progress of a task) add "start", "output" or "logs". */
static unsigned cog_events(void)
{
	yajl_val cog = json_get(config_doc(), "cog");
	yajl_val list = cog ? json_get(cog, "webhookEvents") : NULL;
	if (!list || !YAJL_IS_ARRAY(list))
		return BACKEND_EVENT_COMPLETED;
	unsigned bits = BACKEND_EVENT_COMPLETED;
	for (size_t i = 0; i < list->u.array.len; i++)
		if (YAJL_IS_STRING(list->u.array.values[i]))
			bits |= backend_event_bit(YAJL_GET_STRING(list->u.array.values[i]));
	return bits;
}

/* ---- ending attempts ---- */

struct end_arg {
	const struct end_request *req;
	char server_id[65];
	int end_result;
	enum task_status became;
	int64_t wait_ms, run_ms;
	char model[129];
};

static const char *kind_outcome(enum end_kind k)
{
	static const char *const names[] = {"succeeded", "failed", "rejected", "error",
					    "timeout", "busy", "cancelled"};
	return names[k];
}

static enum task_status terminal_of(enum end_kind k)
{
	switch (k) {
	case END_SUCCEEDED:
		return TASK_COMPLETED;
	case END_CANCELLED:
		return TASK_CANCELLED;
	default:
		return TASK_FAILED;
	}
}

/* Decides retry or failure for ERROR/TIMEOUT/BUSY and writes the queue entry. */
static int requeue_or_fail(struct task *t, const struct end_request *r, int64_t now)
{
	bool counts = r->kind == END_ERROR || r->kind == END_TIMEOUT;
	if (counts)
		t->failures++;
	if (counts && t->failures >= t->max_attempts) {
		if (!task_set_status(t, TASK_FAILED, now))
			return TASK_ILLEGAL_MOVE;
		task_set_error(t, "gave up after %d failed attempt%s: %s", t->failures,
			       t->failures == 1 ? "" : "s", r->error ? r->error : "unknown error");
		return STORE_OK;
	}
	int64_t delay;
	if (counts) {
		struct retry_policy p;
		uint32_t rnd;
		retry_policy_load(&p);
		random_bytes(&rnd, sizeof rnd);
		delay = retry_delay_jittered_ms(&p, t->failures, (double)rnd / 4294967296.0);
	} else {
		delay = r->delay_ms; /* the sender decided: 0 when another server can take it */
	}
	struct task_attempt *a = task_current_attempt(t);
	snprintf(t->avoid_server, sizeof t->avoid_server, "%s", a ? a->server_id : "");
	t->next_attempt_at = now + delay;
	t->queued_at = now;
	t->deadline = 0;
	/* The move first: a refused one must not leave a queue entry behind. */
	if (!task_set_status(t, TASK_QUEUED, now))
		return TASK_ILLEGAL_MOVE;
	return task_queue_entry_add(t);
}

static int end_edit(struct task *t, void *arg)
{
	struct end_arg *e = arg;
	const struct end_request *r = e->req;
	struct task_attempt *a = task_current_attempt(t);
	if (t->status != TASK_PROCESSING || !a || a->n != r->attempt || a->ended_at) {
		/* A repeat of what already happened is harmless (Cog retries webhooks). */
		struct task_attempt *old = task_attempt_by_number(t, r->attempt);
		if (old && old->ended_at && strcmp(old->outcome, kind_outcome(r->kind)) == 0)
			e->end_result = END_DUPLICATE;
		else
			e->end_result = END_NOT_CURRENT;
		return STORE_UNCHANGED;
	}
	int64_t now = now_ms();
	snprintf(e->server_id, sizeof e->server_id, "%s", a->server_id);
	snprintf(e->model, sizeof e->model, "%s", t->model);
	e->wait_ms = a->started_at - t->queued_at;
	e->run_ms = now - a->started_at;
	a->ended_at = now;
	snprintf(a->outcome, sizeof a->outcome, "%s", kind_outcome(r->kind));
	if (r->error) {
		free(a->error);
		a->error = strdup(r->error);
	}
	if (r->logs)
		task_set_logs(t, r->logs);
	int rc = STORE_OK;
	switch (r->kind) {
	case END_ERROR:
	case END_TIMEOUT:
	case END_BUSY:
		rc = requeue_or_fail(t, r, now);
		break;
	default:
		if (!task_set_status(t, terminal_of(r->kind), now))
			return TASK_ILLEGAL_MOVE;
		t->result = r->result;
		if (r->error)
			task_set_error(t, "%s", r->error);
		else if (r->kind == END_CANCELLED)
			task_set_error(t, "cancelled");
		t->deadline = 0;
		break;
	}
	e->became = t->status;
	e->end_result = END_DONE;
	return rc;
}

void dispatch_release_slot(const char *server_id);

int dispatch_end_attempt(const char *task_id, const struct end_request *req,
			 struct buf *public_json)
{
	struct end_arg e = {.req = req};
	int rc = task_update(task_id, end_edit, &e, public_json);
	if (rc == STORE_UNCHANGED)
		return e.end_result;
	if (rc != STORE_OK)
		return rc;
	/* The task has left PROCESSING for this attempt: this process, and only this
	 * one, gives the slot back. */
	dispatch_release_slot(e.server_id);
	/* This attempt's entry only: the task may already run again, under the
	 * entry of its next attempt. (And an older tree's plain entry.) */
	tindex_active_remove(task_id, req->attempt);
	tindex_active_remove(task_id, 0);
	struct task view = {0};
	snprintf(view.id, sizeof view.id, "%s", task_id);
	view.model = e.model;
	const char *ev = e.became == TASK_COMPLETED   ? "completed"
			 : e.became == TASK_CANCELLED ? "cancelled"
			 : e.became == TASK_FAILED    ? "failed"
			 : req->kind == END_TIMEOUT   ? "timed_out"
						      : "retried";
	events_task_end(ev, &view, e.server_id, e.run_ms, kind_outcome(req->kind));
	view.model = NULL;
	return END_DONE;
}

static int release_edit(struct server *s, void *arg)
{
	(void)arg;
	if (s->current_load <= 0)
		return STORE_UNCHANGED;
	s->current_load--;
	return STORE_OK;
}

void dispatch_release_slot(const char *server_id)
{
	if (!server_id || !*server_id)
		return;
	int rc = server_update(server_id, release_edit, NULL, NULL);
	if (rc != STORE_OK && rc != STORE_UNCHANGED && rc != STORE_NOENT)
		log_error("server %s: slot not released (%s); the sweep will repair the load",
			  server_id, store_strerror(rc));
}

/* ---- sending ---- */

void dispatch_callback_url(const char *task_id, int attempt, const char *secret,
			   struct buf *out)
{
	config_public_url(out);
	buf_printf(out, "/api/v2/tasks/%s/callback?attempt=%d&token=%s", task_id, attempt, secret);
}

/* Reads a text in memory as the intake reads a request body. */
struct text_reader {
	const char *p;
	size_t left;
};

static ssize_t read_text(void *ctx, char *dst, size_t n)
{
	struct text_reader *r = ctx;
	if (n > r->left)
		n = r->left;
	memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return (ssize_t)n;
}

/* The result document of a synchronous http-json answer: its output (the answer
 * itself when it has no "output" member) and metrics, through the intake like a
 * callback's (data URIs become files, a long output becomes output.json). */
static yajl_val sync_result(const char *task_id, const struct buf *body, struct buf *err)
{
	struct json_limits lim = json_default_limits;
	lim.max_bytes = lim.max_string = body->len + 1;
	yajl_val parsed = json_parse(body->data ? body->data : "", body->len, &lim, err);
	if (!parsed)
		return NULL;
	struct jgen g;
	struct buf text = BUF_INIT;
	jg_init(&g);
	jg_obj(&g);
	jg_key(&g, "output");
	yajl_val out = json_get(parsed, "output");
	jg_value(&g, out ? out : parsed);
	yajl_val metrics = json_get(parsed, "metrics");
	if (metrics) {
		jg_key(&g, "metrics");
		jg_value(&g, metrics);
	}
	jg_obj_end(&g);
	jg_finish(&g, &text);
	jg_free(&g);
	yajl_tree_free(parsed);
	struct text_reader r = {text.data ? text.data : "", text.len};
	yajl_val taken = NULL;
	intake_read(task_id, read_text, &r, &taken, err);
	buf_free(&text);
	return taken;
}

/* True if a server other than except_id could take t now (by the snapshot). */
static bool another_server_fits(const struct task *t, const char *except_id)
{
	struct server_list snap;
	struct lb_task want;
	bool found = false;
	task_wants(t, &want);
	server_list_load(&snap, SERVERS_MAX);
	for (size_t i = 0; i < snap.n && !found; i++)
		found = strcmp(snap.v[i].id, except_id) != 0 && lb_eligible(&snap.v[i], &want) == LB_OK;
	server_list_free(&snap);
	return found;
}

/* An attempt about to be sent: its task and server, loaded. */
struct sending {
	yajl_val doc;
	struct task t; /* input borrowed from doc */
	struct server srv;
	bool has_server;
};

enum sending_state { SEND_GO, SEND_GONE, SEND_NO_SERVER };

/* Loads what the send needs. SEND_GONE (nothing held) when the attempt was
 * cancelled or ended before it got sent; SEND_NO_SERVER when its server was
 * unregistered meanwhile. */
static enum sending_state sending_load(const struct dispatch_send *send, struct sending *s)
{
	memset(s, 0, sizeof *s);
	if (task_load_doc(send->task_id, &s->doc) != STORE_OK)
		return SEND_GONE;
	task_from_doc(s->doc, &s->t);
	struct task_attempt *a = task_current_attempt(&s->t);
	if (s->t.status != TASK_PROCESSING || !a || a->n != send->attempt) {
		task_free(&s->t);
		yajl_tree_free(s->doc);
		return SEND_GONE;
	}
	s->has_server = server_load(send->server_id, &s->srv) == STORE_OK;
	return s->has_server ? SEND_GO : SEND_NO_SERVER;
}

static void sending_free(struct sending *s)
{
	if (s->has_server)
		server_free(&s->srv);
	task_free(&s->t);
	yajl_tree_free(s->doc);
}

/* Sends the attempt to its backend; the request carries the attempt's callback
 * URL (with its secret). */
static void call_backend(const struct dispatch_send *send, const struct sending *s,
			 struct backend_reply *reply)
{
	struct buf cb = BUF_INIT;
	char prediction_id[64];
	snprintf(prediction_id, sizeof prediction_id, "%s-%d", send->task_id, send->attempt);
	dispatch_callback_url(send->task_id, send->attempt, send->secret, &cb);
	struct backend_call call = {
		.task_id = send->task_id,
		.prediction_id = prediction_id,
		.model = s->t.model,
		.input = s->t.input,
		.callback_url = buf_str(&cb),
		.timeout_ms = (long)s->t.timeout_s * 1000,
		.cog_events = cog_events(),
	};
	/* What we tell a backend must rest on state that survives a crash: a task it
	 * runs is one our tree records as running there. */
	if (journal_commit() < 0)
		snprintf(reply->error, sizeof reply->error, "the state tree could not be made durable");
	else
		backend_dispatch(&s->srv, &call, reply);
	buf_free(&cb);
}

/* The server's health learns from the answers that say something about it; all
 * but an acceptance are logged. */
static void note_reply(const struct dispatch_send *send, const struct server *srv,
		       const struct backend_reply *reply)
{
	if (reply->outcome == BACKEND_ERROR || reply->outcome == BACKEND_ACCEPTED ||
	    reply->outcome == BACKEND_DONE || reply->outcome == BACKEND_REJECTED)
		health_record_passive(srv->id, reply->outcome != BACKEND_ERROR, reply->elapsed_ms);
	if (reply->outcome != BACKEND_ACCEPTED)
		log_info("task %s attempt %d on %s: %s%s%s", send->task_id, send->attempt, srv->id,
			 backend_outcome_name(reply->outcome), reply->error[0] ? ": " : "",
			 reply->error);
}

/* How an attempt ends, with the storage its end_request points into. */
struct ending {
	struct end_request req;
	yajl_val result; /* owned */
	char why[320];
};

/* What the backend's answer means for the attempt: false when it goes on (the
 * result comes by callback), else true with e->req filled. e->req may point into
 * reply, which must outlive it. */
static bool end_of_reply(const struct backend_reply *reply, const struct sending *s,
			 struct ending *e)
{
	struct buf perr = BUF_INIT;
	switch (reply->outcome) {
	case BACKEND_ACCEPTED:
		return false;
	case BACKEND_DONE:
		e->result = sync_result(s->t.id, &reply->body, &perr);
		if (e->result) {
			e->req.kind = END_SUCCEEDED;
			e->req.result = e->result;
		} else {
			e->req.kind = END_ERROR;
			snprintf(e->why, sizeof e->why, "the backend's answer is not JSON: %s",
				 buf_str(&perr));
			e->req.error = e->why;
		}
		buf_free(&perr);
		return true;
	case BACKEND_FAILED:
	case BACKEND_REJECTED:
		e->req.kind = END_REJECTED;
		e->req.error = reply->error;
		return true;
	case BACKEND_BUSY:
	case BACKEND_STARTING:
		e->req.kind = END_BUSY;
		e->req.error = reply->error;
		/* Capacity, not failure: due at once when another server can take the
		 * task (the retry avoids this one), else after Retry-After or a second. */
		e->req.delay_ms = another_server_fits(&s->t, s->srv.id)
					  ? 0
					  : (reply->retry_after_s > 0 ? reply->retry_after_s * 1000
								      : 1000);
		return true;
	case BACKEND_ERROR:
		e->req.kind = END_ERROR;
		snprintf(e->why, sizeof e->why, "dispatch to %s failed: %s", s->srv.id,
			 reply->error);
		e->req.error = e->why;
		return true;
	}
	return false;
}

/* Records that the server took attempt n (unless the attempt already ended: a
 * fast Cog's completed webhook may come first). */
static int accepted_edit(struct task *t, void *arg)
{
	const int *attempt = arg;
	struct task_attempt *a = task_current_attempt(t);
	if (!a || a->n != *attempt || a->ended_at || a->accepted_at)
		return STORE_UNCHANGED;
	a->accepted_at = now_ms();
	return STORE_OK;
}

bool dispatch_send(const struct dispatch_send *send)
{
	if (!send->attempt)
		return false;
	struct sending s;
	enum sending_state state = sending_load(send, &s);
	if (state == SEND_GONE)
		return false; /* cancelled or ended before we got to send it */
	struct ending e = {.req = {.attempt = send->attempt}};
	struct backend_reply reply;
	memset(&reply, 0, sizeof reply);
	bool ended;
	if (state == SEND_NO_SERVER) {
		e.req.kind = END_ERROR;
		e.req.error = "the server was unregistered before the task was sent";
		ended = true;
	} else {
		call_backend(send, &s, &reply);
		ended = end_of_reply(&reply, &s, &e);
		if (reply.outcome == BACKEND_ACCEPTED) {
			int n = send->attempt;
			task_update_hint(send->task_id, accepted_edit, &n);
		}
	}
	if (ended)
		ended = dispatch_end_attempt(send->task_id, &e.req, NULL) == END_DONE;
	/* Health hears of the reply once this attempt's own end is written: a failure
	 * that takes the server offline ends every attempt still running there
	 * (jobs/failover), and this one must keep the reason it really had. */
	if (state != SEND_NO_SERVER)
		note_reply(send, &s.srv, &reply);
	if (ended)
		tindex_drain_request(); /* a slot freed, or the task queued again */
	if (e.result)
		yajl_tree_free(e.result);
	buf_free(&reply.body);
	sending_free(&s);
	return ended;
}

/* The send an entry of sending/ stands for, if its attempt still runs: the task
 * is PROCESSING on that attempt (a stale entry is dropped by the claim). */
static bool owed_send(const struct tindex_work_item *it, struct dispatch_send *send)
{
	yajl_val doc;
	if (task_load_doc(it->id, &doc) != STORE_OK)
		return false;
	struct task t;
	task_from_doc(doc, &t);
	const struct task_attempt *a = task_current_attempt(&t);
	bool due = t.status == TASK_PROCESSING && a && a->n == it->attempt && !a->ended_at;
	if (due) {
		memset(send, 0, sizeof *send);
		snprintf(send->task_id, sizeof send->task_id, "%s", it->id);
		snprintf(send->server_id, sizeof send->server_id, "%s", a->server_id);
		send->attempt = it->attempt;
		due = auth_attempt_secret(it->id, it->attempt, send->secret) == 0;
	}
	task_free(&t);
	yajl_tree_free(doc);
	return due;
}

/* A kill between the claim and the answer leaves the attempt to its deadline (the
 * sweep), like any answer lost on the way. */
static bool send_owed(const struct tindex_work_item *it, void *arg)
{
	(void)arg;
	struct dispatch_send send;
	if (!owed_send(it, &send))
		return false;
	dispatch_send(&send);
	return true;
}

int dispatch_send_pending(int max, int64_t until_mono)
{
	return tindex_work_take(TINDEX_SEND, max, until_mono, send_owed, NULL);
}

/* ---- draining the queue ---- */

/* An entry whose task is gone, or has left the queue, is a stale hint. */
static void drop_if_stale(const struct tindex_entry *e, int store_rc, const struct task *t,
			  int64_t now)
{
	if (store_rc == STORE_NOENT) {
		/* The entry is written before the task file: give a creator time (from
		 * the entry's own queuedAt, not its bucket's start, which may be a
		 * minute older). */
		if (now - e->queued_at > 60000)
			tindex_queue_remove(e->key);
		return;
	}
	if (store_rc == STORE_CORRUPT ||
	    (t && ((t->status != TASK_QUEUED && t->status != TASK_PENDING) ||
		   strcmp(t->queue_key, e->key) != 0)))
		tindex_queue_remove(e->key);
}

/* One pass over the queue listing; *relist is set when a send ended its attempt at
 * once (re-queued under a new key, or freed a slot), so the caller lists again. */
static int drain_pass(struct server_list *snap, int max_tasks, int64_t until, bool *relist)
{
	int dispatched = 0;
	struct tindex_entry *entries;
	size_t n = tindex_queue_list(&entries, 256);
	int64_t now = now_ms();
	*relist = false;
	for (size_t i = 0; i < n && dispatched < max_tasks && mono_ms() < until; i++) {
		const struct tindex_entry *e = &entries[i];
		if (e->not_before > now)
			continue;
		yajl_val doc = NULL;
		int rc = task_load_doc(e->id, &doc);
		struct task t;
		if (rc != STORE_OK) {
			drop_if_stale(e, rc, NULL, now);
			continue;
		}
		task_from_doc(doc, &t);
		if ((t.status != TASK_QUEUED && t.status != TASK_PENDING) ||
		    strcmp(t.queue_key, e->key) != 0) {
			drop_if_stale(e, rc, &t, now);
		} else {
			int chosen = reserve_slot(snap, &t);
			if (chosen >= 0) {
				struct claim_arg c = {.server_id = snap->v[chosen].id,
						      .queue_key = e->key};
				rc = task_update(t.id, claim_edit, &c, NULL);
				if (rc == STORE_OK) {
					struct dispatch_send send;
					tindex_queue_remove(e->key);
					fill_send(&send, t.id, c.server_id, &c);
					events_task("dispatched", &t, c.server_id, 0);
					dispatched++;
					if (dispatch_send(&send)) {
						/* The slot came back or the task re-queued:
						 * the snapshot and the listing are stale. */
						server_list_free(snap);
						server_list_load(snap, SERVERS_MAX);
						*relist = true;
					}
				} else {
					dispatch_release_slot(snap->v[chosen].id);
					if (snap->v[chosen].current_load > 0)
						snap->v[chosen].current_load--;
				}
			}
		}
		task_free(&t);
		yajl_tree_free(doc);
		if (*relist || !snapshot_has_room(snap))
			break;
	}
	free(entries);
	return dispatched;
}

int dispatch_drain(int max_tasks, int budget_ms)
{
	int64_t until = mono_ms() + budget_ms;
	int dispatched = 0;
	/* Most calls find nothing waiting: one readdir instead of reading every
	 * server's file. */
	if (tindex_queue_empty())
		return 0;
	struct server_list snap;
	server_list_load(&snap, SERVERS_MAX);
	bool relist = true;
	/* Bounded by max_tasks (every pass that relists has dispatched one) and time. */
	for (int pass = 0; relist && pass <= max_tasks && dispatched < max_tasks &&
			   mono_ms() < until && snapshot_has_room(&snap);
	     pass++)
		dispatched += drain_pass(&snap, max_tasks - dispatched, until, &relist);
	server_list_free(&snap);
	return dispatched;
}

/* ---- the ledger rebuild ---- */

struct load_count {
	char (*ids)[65];
	int *counts;
	size_t n;
};

static int count_active(const char *id, int attempt, void *arg)
{
	struct load_count *lc = arg;
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK)
		return 0;
	/* Each task once: by the entry of its running attempt (an older tree's
	 * entry names none). */
	bool running = attempt == 0 || json_int_or(doc, "attempts", 0) == attempt;
	if (running && strcmp(json_str_or(doc, "status", ""), "PROCESSING") == 0) {
		const char *sid = json_str_or(doc, "serverId", "");
		for (size_t i = 0; i < lc->n; i++)
			if (strcmp(lc->ids[i], sid) == 0)
				lc->counts[i]++;
	}
	yajl_tree_free(doc);
	return 0;
}

/* One sighting: every server's stored load and its PROCESSING task count. */
struct sighting {
	struct load_count lc;
	int *loads;
};

static void sight(struct sighting *s)
{
	struct server_list snap;
	server_list_load(&snap, SERVERS_MAX);
	s->lc.n = snap.n;
	s->lc.ids = calloc(snap.n + 1, sizeof *s->lc.ids);
	s->lc.counts = calloc(snap.n + 1, sizeof *s->lc.counts);
	s->loads = calloc(snap.n + 1, sizeof *s->loads);
	if (!s->lc.ids || !s->lc.counts || !s->loads)
		abort();
	for (size_t i = 0; i < snap.n; i++) {
		snprintf(s->lc.ids[i], sizeof s->lc.ids[i], "%s", snap.v[i].id);
		s->loads[i] = snap.v[i].current_load;
	}
	server_list_free(&snap);
	tindex_active_each(count_active, &s->lc);
}

static void sighting_free(struct sighting *s)
{
	free(s->lc.ids);
	free(s->lc.counts);
	free(s->loads);
}

struct set_load {
	int expect_load; /* only correct if the load is still what both sightings saw */
	int want;
};

static int set_load_edit(struct server *s, void *arg)
{
	struct set_load *sl = arg;
	if (s->current_load != sl->expect_load || s->current_load == sl->want)
		return STORE_UNCHANGED;
	log_warn("server %s: currentLoad %d corrected to %d from the task ledger", s->id,
		 s->current_load, sl->want);
	s->current_load = sl->want;
	return STORE_OK;
}

int dispatch_rebuild_load(void)
{
	struct sighting first, second;
	sight(&first);
	bool suspect = false;
	for (size_t i = 0; i < first.lc.n; i++)
		suspect |= first.loads[i] != first.lc.counts[i];
	if (!suspect) {
		sighting_free(&first);
		return 0;
	}
	/* A reservation is followed within milliseconds by its task turning PROCESSING;
	 * a mismatch that is still the same a moment later is drift, not a dispatch in
	 * flight. */
	sleep_ms((unsigned)config_sect_int("sweep", "ledgerRecheckMs", 300, 10, 10000));
	sight(&second);
	int corrected = 0;
	for (size_t i = 0; i < first.lc.n; i++) {
		if (first.loads[i] == first.lc.counts[i])
			continue;
		for (size_t k = 0; k < second.lc.n; k++) {
			if (strcmp(first.lc.ids[i], second.lc.ids[k]) != 0)
				continue;
			if (second.loads[k] == first.loads[i] &&
			    second.lc.counts[k] == first.lc.counts[i]) {
				struct set_load sl = {first.loads[i], first.lc.counts[i]};
				if (server_update(first.lc.ids[i], set_load_edit, &sl, NULL) ==
				    STORE_OK)
					corrected++;
			}
			break;
		}
	}
	sighting_free(&first);
	sighting_free(&second);
	return corrected;
}
