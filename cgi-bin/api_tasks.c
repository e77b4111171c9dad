/* /api/v2/tasks: submit, read, list, cancel and retry tasks (the TaskInstance). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sched/backend.h"
#include "model/config.h"
#include "sched/dispatch.h"
#include "stats/events.h"
#include "base/log.h"
#include "model/server.h"
#include "fs/journal.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "model/taskview.h"
#include "base/util.h"
#include "app.h"

#define LIST_DEFAULT 50
#define LIST_MAX 200
#define LIST_SCAN_MAX 2000
#define IDEMPOTENCY_KEY_MAX 255

/* Work a request leaves for after its answer (one request at a time per process). */
static struct dispatch_send after_send;
static struct {
	char server_id[65];
	char prediction_id[64];
} after_cancel;

/* The drain after a create serves tasks waiting for a retry time, with no cron
 * needed. It is skipped when placement saw no free slot on any server: then no
 * queued task could go anywhere either, and a busy gateway whose backends are all
 * full pays nothing for it. */
static void after_send_and_drain(void *arg)
{
	(void)arg;
	if (!after_send.attempt && !after_send.room_seen)
		return;
	dispatch_send(&after_send);
	memset(&after_send, 0, sizeof after_send);
	dispatch_drain(config_sect_int("tasks", "drainBatch", 16, 1, 1000), 5000);
}

static void after_drain(void *arg)
{
	(void)arg;
	dispatch_drain(config_sect_int("tasks", "drainBatch", 16, 1, 1000), 5000);
}

static void after_cancel_backend(void *arg)
{
	(void)arg;
	struct server s;
	if (server_load(after_cancel.server_id, &s) == STORE_OK) {
		/* The backend hears of the cancel only once the tree has it on disk. */
		if (journal_commit() < 0)
			log_warn("cancel of %s on %s: the state tree could not be made durable",
				 after_cancel.prediction_id, s.id);
		else
			backend_cancel(&s, after_cancel.prediction_id);
		server_free(&s);
	}
	after_drain(NULL);
}

void api_tasks_schedule_drain(void)
{
	app_after(after_drain, NULL);
}

/* "Prefer: wait=N" (RFC 7240), capped below mod_fcgid's 40 s first-byte limit. */
static int preferred_wait(const char *prefer)
{
	if (!prefer)
		return 0;
	const char *p = strcasestr(prefer, "wait=");
	if (!p)
		return 0;
	int n = atoi(p + 5);
	int cap = (int)config_sect_int("tasks", "maxWaitSeconds", 30, 0, 35);
	return n < 0 ? 0 : n > cap ? cap : n;
}

/* Polls the task file until the task is terminal or the time is up; public_json
 * receives the last state seen. Returns true if terminal. */
static bool wait_terminal(const char *id, int seconds, struct buf *public_json)
{
	int64_t until = mono_ms() + (int64_t)seconds * 1000;
	unsigned pause = 20;
	for (int i = 0; i < 100000; i++) {
		yajl_val doc;
		if (task_load_doc(id, &doc) == STORE_OK) {
			struct task t;
			task_from_doc(doc, &t);
			bool done = task_status_terminal(t.status);
			if (done || mono_ms() >= until) {
				struct jgen g;
				jg_init(&g);
				task_to_public(&t, &g);
				buf_reset(public_json);
				jg_finish(&g, public_json);
				jg_free(&g);
			}
			task_free(&t);
			yajl_tree_free(doc);
			if (done)
				return true;
		}
		if (mono_ms() >= until)
			return false;
		sleep_ms(pause);
		if (pause < 200)
			pause += 20;
	}
	return false;
}

static int answer_raw(struct http_resp *rs, int status, struct buf *json)
{
	buf_reset(&rs->body);
	buf_add(&rs->body, json->data ? json->data : "{}", json->data ? json->len : 2);
	buf_addch(&rs->body, '\n');
	rs->content_type = "application/json";
	return status;
}

/* ---- idempotency ---- */

enum idem { IDEM_NEW, IDEM_REPLAY, IDEM_MISMATCH, IDEM_IN_PROGRESS, IDEM_ERROR };

static void idem_record(const char *task_id, const char *body_hash, struct buf *out)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "taskId", task_id);
	jg_kstr(&g, "bodyHash", body_hash);
	jg_kint(&g, "createdAt", now_ms());
	jg_obj_end(&g);
	jg_finish(&g, out);
	jg_free(&g);
}

/* Claims key_id for task_id, or finds the task an earlier request created. */
static enum idem idem_claim(const char *key_id, const char *task_id, const char *body_hash,
			    char *existing, size_t existing_len)
{
	struct buf rec = BUF_INIT;
	idem_record(task_id, body_hash, &rec);
	int rc = store_create("idempotency", key_id, rec.data, rec.len);
	enum idem result = IDEM_ERROR;
	if (rc == STORE_OK) {
		result = IDEM_NEW;
	} else if (rc == STORE_EXISTS) {
		yajl_val doc;
		if (store_load("idempotency", key_id, &doc) == STORE_OK) {
			snprintf(existing, existing_len, "%s", json_str_or(doc, "taskId", ""));
			bool same = strcmp(json_str_or(doc, "bodyHash", ""), body_hash) == 0;
			int64_t age = now_ms() - json_int_or(doc, "createdAt", 0);
			yajl_tree_free(doc);
			if (!same)
				result = IDEM_MISMATCH;
			else if (store_exists("tasks", existing))
				result = IDEM_REPLAY;
			else if (age < 30000)
				result = IDEM_IN_PROGRESS; /* the first request is still storing */
			else if (store_put("idempotency", key_id, rec.data, rec.len) == STORE_OK)
				result = IDEM_NEW; /* its creator died before storing the task */
		}
	}
	buf_free(&rec);
	return result;
}

static int answer_existing(struct http_resp *rs, const char *id)
{
	struct buf stored = BUF_INIT;
	int rc = store_load_text("tasks", id, &stored);
	if (rc != STORE_OK) {
		buf_free(&stored);
		return app_store_problem(rs, rc, "task", id);
	}
	struct jgen g;
	jg_init(&g);
	int st;
	if (taskview_public(stored.data, stored.len, &g) == 0) {
		http_header(rs, "Location", "/api/v2/tasks/%s", id);
		st = http_json(rs, 200, &g);
	} else {
		store_quarantine("tasks", id, "does not parse as a JSON object");
		st = app_store_problem(rs, STORE_CORRUPT, "task", id);
	}
	jg_free(&g);
	buf_free(&stored);
	return st;
}

/* ---- POST /api/v2/tasks ---- */

int api_tasks_create(struct http_req *rq, struct http_resp *rs)
{
	struct task t;
	struct verr e;
	if (task_from_request(rq->json, &t, &e) < 0)
		return http_problem(rs, 400, e.field, "%s", e.msg);

	if (rq->idempotency_key) {
		size_t klen = strlen(rq->idempotency_key);
		if (klen == 0 || klen > IDEMPOTENCY_KEY_MAX) {
			task_free(&t);
			return http_problem(rs, 400, "Idempotency-Key",
					    "the Idempotency-Key header must be 1 to %d characters",
					    IDEMPOTENCY_KEY_MAX);
		}
		char key_id[65], body_hash[65], existing[TASK_ID_LEN + 1] = "";
		sha256_hex(rq->idempotency_key, klen, key_id);
		sha256_hex(rq->body.data, rq->body.len, body_hash);
		enum idem r = idem_claim(key_id, t.id, body_hash, existing, sizeof existing);
		if (r != IDEM_NEW) {
			task_free(&t);
			if (r == IDEM_REPLAY) {
				http_header(rs, "Idempotent-Replayed", "true");
				return answer_existing(rs, existing);
			}
			if (r == IDEM_MISMATCH)
				return http_problem(rs, 422, "Idempotency-Key",
						    "this Idempotency-Key was used with a different "
						    "request body");
			if (r == IDEM_IN_PROGRESS) {
				http_header(rs, "Retry-After", "1");
				return http_problem(rs, 409, "Idempotency-Key",
						    "a request with this Idempotency-Key is still "
						    "being processed; retry");
			}
			return http_problem(rs, 500, NULL, "the state tree could not be written");
		}
		t.idempotency_key = strdup(rq->idempotency_key);
	}

	struct buf out = BUF_INIT;
	struct dispatch_send send;
	int rc = dispatch_place_new(&t, &send, &out);
	int status;
	if (rc != STORE_OK) {
		status = app_store_problem(rs, rc, "task", t.id);
	} else {
		http_header(rs, "Location", "/api/v2/tasks/%s", t.id);
		int wait = preferred_wait(rq->prefer);
		if (wait > 0) {
			/* The client asked to wait: send now, then watch the file. */
			dispatch_send(&send);
			bool done = wait_terminal(t.id, wait, &out);
			http_header(rs, "Preference-Applied", "wait=%d", wait);
			status = answer_raw(rs, done ? 200 : 202, &out);
			app_after(after_drain, NULL);
		} else {
			status = answer_raw(rs, 202, &out);
			after_send = send;
			app_after(after_send_and_drain, NULL);
		}
	}
	buf_free(&out);
	task_free(&t);
	return status;
}

/* ---- GET /api/v2/tasks/:id ---- */

int api_tasks_get(struct http_req *rq, struct http_resp *rs)
{
	return answer_existing(rs, rq->param[0]);
}

/* ---- GET /api/v2/tasks ---- */

static bool list_matches(const char *id, int want_status, const char *server)
{
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK)
		return false;
	struct task t;
	task_from_doc(doc, &t);
	bool m = (want_status < 0 || (int)t.status == want_status) &&
		 (!server || strcmp(t.server_id, server) == 0);
	task_free(&t);
	yajl_tree_free(doc);
	return m;
}

/* After a full page: is there any further matching task past the cursor? Looking
 * ahead (within the scan budget) lets the last page carry nextCursor null instead
 * of sending the client for one more, empty page. Out of budget counts as "yes". */
static bool list_has_more(const char *cursor, int want_status, const char *server, long budget)
{
	char at[160], next[160];
	char ids[16][TASK_ID_LEN + 1];
	snprintf(at, sizeof at, "%s", cursor);
	while (budget > 0) {
		size_t want = budget < 16 ? (size_t)budget : 16;
		size_t got = tindex_created_page(at, ids, want, next, sizeof next);
		for (size_t i = 0; i < got; i++)
			if (list_matches(ids[i], want_status, server))
				return true;
		if (got < want)
			return false;
		budget -= (long)got;
		snprintf(at, sizeof at, "%s", next);
	}
	return true;
}

int api_tasks_list(struct http_req *rq, struct http_resp *rs)
{
	char status_s[32] = "", server[80] = "", limit_s[16] = "", cursor[160] = "";
	int want_status = -1;
	long limit = LIST_DEFAULT;
	if (http_query(rq, "status", status_s, sizeof status_s) && status_s[0]) {
		want_status = task_status_from_name(status_s);
		if (want_status < 0)
			return http_problem(rs, 400, "status",
					    "status must be one of PENDING, QUEUED, PROCESSING, "
					    "COMPLETED, FAILED, CANCELLED");
	}
	bool by_server = http_query(rq, "serverId", server, sizeof server) && server[0];
	if (by_server && !store_id_valid(server))
		return http_problem(rs, 400, "serverId", "serverId is not a valid id");
	if (http_query(rq, "limit", limit_s, sizeof limit_s) && limit_s[0]) {
		char *end;
		limit = strtol(limit_s, &end, 10);
		if (*end || limit < 1 || limit > LIST_MAX)
			return http_problem(rs, 400, "limit", "limit must be from 1 to %d",
					    LIST_MAX);
	}
	if (http_query(rq, "cursor", cursor, sizeof cursor) &&
	    strspn(cursor, "0123456789abcdef-/") != strlen(cursor))
		return http_problem(rs, 400, "cursor", "cursor is not one this server issued");

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_key(&g, "items");
	jg_arr(&g);
	long items = 0, scanned = 0;
	bool more = true;
	char (*ids)[TASK_ID_LEN + 1] = calloc((size_t)limit, sizeof *ids);
	if (!ids)
		abort();
	/* Each round asks the index for exactly the items still missing, so the cursor
	 * is the key of the last task looked at and the next page resumes after it. */
	while (items < limit && scanned < LIST_SCAN_MAX) {
		char next[160];
		size_t want = (size_t)(limit - items);
		size_t got = tindex_created_page(cursor, ids, want, next, sizeof next);
		for (size_t i = 0; i < got; i++) {
			yajl_val doc;
			if (task_load_doc(ids[i], &doc) != STORE_OK)
				continue;
			struct task t;
			task_from_doc(doc, &t);
			if ((want_status < 0 || (int)t.status == want_status) &&
			    (!by_server || strcmp(t.server_id, server) == 0)) {
				task_to_public(&t, &g);
				items++;
			}
			task_free(&t);
			yajl_tree_free(doc);
		}
		scanned += (long)got;
		if (got)
			snprintf(cursor, sizeof cursor, "%s", next);
		if (got < want) {
			more = false;
			break;
		}
	}
	free(ids);
	if (more && items >= limit)
		more = list_has_more(cursor, want_status, by_server ? server : NULL,
				     LIST_SCAN_MAX - scanned);
	jg_arr_end(&g);
	jg_key(&g, "nextCursor");
	if (more)
		jg_str(&g, cursor);
	else
		jg_null(&g);
	jg_obj_end(&g);
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	return st;
}

/* ---- DELETE /api/v2/tasks/:id ---- */

#define CANCEL_TERMINAL (STORE_EDIT_BASE + 20)

struct cancel_arg {
	char queue_key[128];
	char model[129];
};

static int cancel_waiting(struct task *t, void *arg)
{
	struct cancel_arg *c = arg;
	if (t->status == TASK_CANCELLED)
		return STORE_UNCHANGED;
	if (t->status != TASK_QUEUED && t->status != TASK_PENDING)
		return CANCEL_TERMINAL;
	snprintf(c->queue_key, sizeof c->queue_key, "%s", t->queue_key);
	snprintf(c->model, sizeof c->model, "%s", t->model);
	t->queue_key[0] = '\0';
	t->next_attempt_at = 0;
	task_set_status(t, TASK_CANCELLED, now_ms());
	task_set_error(t, "cancelled");
	return STORE_OK;
}

int api_tasks_cancel(struct http_req *rq, struct http_resp *rs)
{
	const char *id = rq->param[0];
	struct buf out = BUF_INIT;
	int status;
	for (int round = 0; round < 3; round++) {
		yajl_val doc;
		int rc = task_load_doc(id, &doc);
		if (rc != STORE_OK) {
			buf_free(&out);
			return app_store_problem(rs, rc, "task", id);
		}
		struct task t;
		task_from_doc(doc, &t);
		enum task_status st = t.status;
		struct task_attempt *a = task_current_attempt(&t);
		int attempt = a ? a->n : 0;
		char server_id[65];
		snprintf(server_id, sizeof server_id, "%s", a ? a->server_id : "");
		task_free(&t);
		yajl_tree_free(doc);

		if (st == TASK_COMPLETED || st == TASK_FAILED) {
			buf_free(&out);
			return http_problem(rs, 409, NULL, "task '%s' is already %s", id,
					    task_status_name(st));
		}
		if (st == TASK_PROCESSING) {
			struct end_request end = {.attempt = attempt, .kind = END_CANCELLED};
			buf_reset(&out);
			rc = dispatch_end_attempt(id, &end, &out);
			if (rc == END_DONE) {
				snprintf(after_cancel.server_id, sizeof after_cancel.server_id, "%s",
					 server_id);
				snprintf(after_cancel.prediction_id,
					 sizeof after_cancel.prediction_id, "%s-%d", id, attempt);
				app_after(after_cancel_backend, NULL);
				log_info("task %s cancelled while running on %s", id, server_id);
				status = answer_raw(rs, 200, &out);
				buf_free(&out);
				return status;
			}
			if (rc != END_NOT_CURRENT && rc != END_DUPLICATE) {
				buf_free(&out);
				return app_store_problem(rs, rc, "task", id);
			}
			continue; /* it moved meanwhile: look again */
		}
		struct cancel_arg c = {"", ""};
		buf_reset(&out);
		rc = task_update(id, cancel_waiting, &c, &out);
		if (rc == CANCEL_TERMINAL)
			continue;
		if (rc != STORE_OK && rc != STORE_UNCHANGED) {
			buf_free(&out);
			return app_store_problem(rs, rc, "task", id);
		}
		tindex_queue_remove(c.queue_key);
		if (rc == STORE_OK) {
			struct task view = {0};
			snprintf(view.id, sizeof view.id, "%s", id);
			view.model = c.model;
			events_task("cancelled", &view, NULL, 0);
			log_info("task %s cancelled while queued", id);
		}
		status = answer_raw(rs, 200, &out);
		buf_free(&out);
		return status;
	}
	buf_free(&out);
	http_header(rs, "Retry-After", "1");
	return http_problem(rs, 503, NULL, "task '%s' kept changing; retry", id);
}

/* ---- POST|GET /api/v2/tasks/:id/retry ---- */

#define RETRY_REFUSED (STORE_EDIT_BASE + 21)

struct retry_arg {
	enum task_status was;
	char model[129];
};

static int requeue_for_retry(struct task *t, void *arg)
{
	struct retry_arg *r = arg;
	r->was = t->status;
	snprintf(r->model, sizeof r->model, "%s", t->model);
	if (t->status != TASK_FAILED && t->status != TASK_CANCELLED)
		return RETRY_REFUSED;
	int64_t now = now_ms();
	task_set_status(t, TASK_QUEUED, now);
	t->failures = 0; /* a fresh budget of attempts */
	t->result = NULL;
	free(t->error);
	t->error = NULL;
	t->avoid_server[0] = '\0';
	t->queued_at = now;
	t->next_attempt_at = 0;
	t->deadline = 0;
	return tindex_queue_add(t->id, t->priority, t->queued_at, t->next_attempt_at, t->queue_key);
}

int api_tasks_retry(struct http_req *rq, struct http_resp *rs)
{
	struct retry_arg r;
	struct buf out = BUF_INIT;
	int rc = task_update(rq->param[0], requeue_for_retry, &r, &out);
	int status;
	if (rc == RETRY_REFUSED)
		status = http_problem(rs, 409, NULL,
				      "only FAILED or CANCELLED tasks can be retried; this one is %s",
				      task_status_name(r.was));
	else if (rc != STORE_OK)
		status = app_store_problem(rs, rc, "task", rq->param[0]);
	else {
		struct task view = {0};
		snprintf(view.id, sizeof view.id, "%s", rq->param[0]);
		view.model = r.model;
		events_task("retried", &view, NULL, 0);
		log_info("task %s re-queued by request", rq->param[0]);
		http_header(rs, "Location", "/api/v2/tasks/%s", rq->param[0]);
		status = answer_raw(rs, 202, &out);
		app_after(after_drain, NULL);
	}
	buf_free(&out);
	return status;
}
