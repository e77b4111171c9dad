/* /api/v2/tasks: submit, read, list, cancel and retry tasks (the TaskInstance). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/config.h"
#include "model/idempotency.h"
#include "sched/cancel.h"
#include "sched/dispatch.h"
#include "sched/requeue.h"
#include "sched/waiters.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "model/tasklist.h"
#include "model/taskview.h"
#include "base/util.h"
#include "app.h"

#define LIST_DEFAULT 50
#define LIST_MAX 200

/* A slot freed or a task queued: a worker drains the queue after the answer. */
void api_tasks_schedule_drain(void)
{
	tindex_drain_request();
	app_wake_worker();
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

/* A refused move is a bug the lib has logged; the client sees a conflict. */
static int task_problem(struct http_resp *rs, int rc, const char *id)
{
	if (rc == TASK_ILLEGAL_MOVE)
		return http_problem(rs, 409, NULL,
				    "task '%s' cannot make that move now; nothing changed", id);
	return app_store_problem(rs, rc, "task", id);
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

/* The answer to a create whose Idempotency-Key an earlier request holds. */
static int answer_claimed(struct http_resp *rs, enum idem_claim r, const char *existing)
{
	switch (r) {
	case IDEM_REPLAY:
		http_header(rs, "Idempotent-Replayed", "true");
		return answer_existing(rs, existing);
	case IDEM_MISMATCH:
		return http_problem(rs, 422, "Idempotency-Key",
				    "this Idempotency-Key was used with a different request body");
	case IDEM_IN_PROGRESS:
		http_header(rs, "Retry-After", "1");
		return http_problem(rs, 409, "Idempotency-Key",
				    "a request with this Idempotency-Key is still being "
				    "processed; retry");
	default:
		return http_problem(rs, 500, NULL, "the state tree could not be written");
	}
}

/* Stores the task and answers: at once (202), or when the client asked to wait,
 * once it ended (200) or the wait is over (202). */
static int place_and_answer(struct http_req *rq, struct http_resp *rs, struct task *t)
{
	struct buf out = BUF_INIT;
	struct dispatch_send send;
	int rc = dispatch_place_new(t, &send, &out);
	int status;
	int wait = preferred_wait(rq->prefer);
	int wait_slot = -1;
	if (rc != STORE_OK) {
		status = task_problem(rs, rc, t->id);
	} else {
		/* The send is owed in sending/; a worker makes it. The drain after a create
		 * serves tasks waiting for a retry time, with no cron needed; it is skipped
		 * when placement saw no free slot on any server (then no queued task could
		 * go anywhere either), so a gateway whose backends are all full pays
		 * nothing for it. */
		bool drain = send.room_seen && !tindex_queue_empty();
		if (drain)
			tindex_drain_request();
		http_header(rs, "Location", "/api/v2/tasks/%s", t->id);
		if (wait > 0) {
			/* The client waits: the worker starts now (before the wait slot is
			 * taken, which it must not inherit), and this process watches the
			 * task's file; the worker, not this process, talks to the backend, so
			 * a backend calling us back meanwhile finds us free. Past the bound
			 * on waiting requests the answer comes at once (sched/waiters.h). */
			app_wake_worker_now();
			wait_slot = waiters_enter(app_is_cgi());
			if (wait_slot < 0)
				wait = 0;
		}
		if (wait > 0) {
			bool done = wait_terminal(t->id, wait, &out);
			http_header(rs, "Preference-Applied", "wait=%d", wait);
			status = answer_raw(rs, done ? 200 : 202, &out);
		} else {
			status = answer_raw(rs, 202, &out);
			/* A worker only when there is work: a task that went to the queue
			 * with no room anywhere is sent by whoever frees a slot. (Started
			 * already when a wait was refused.) */
			if (send.attempt || drain)
				app_wake_worker();
		}
	}
	if (wait_slot >= 0)
		waiters_leave(wait_slot);
	buf_free(&out);
	return status;
}

int api_tasks_create(struct http_req *rq, struct http_resp *rs)
{
	struct task t;
	struct verr e;
	if (task_from_request(rq->json, &t, &e) < 0)
		return http_problem(rs, 400, e.field, "%s", e.msg);
	int status;
	const char *key = rq->idempotency_key;
	char existing[TASK_ID_LEN + 1];
	enum idem_claim claim = IDEM_NEW;
	if (key && !idempotency_key_valid(key)) {
		status = http_problem(rs, 400, "Idempotency-Key",
				      "the Idempotency-Key header must be 1 to %d characters",
				      IDEMPOTENCY_KEY_MAX);
		goto out;
	}
	if (key)
		claim = idempotency_claim(key, rq->body.data, rq->body.len, t.id, existing);
	if (claim != IDEM_NEW) {
		status = answer_claimed(rs, claim, existing);
		goto out;
	}
	if (key)
		t.idempotency_key = xstrdup(key);
	status = place_and_answer(rq, rs, &t);
out:
	task_free(&t);
	return status;
}

/* ---- GET /api/v2/tasks/:id ---- */

int api_tasks_get(struct http_req *rq, struct http_resp *rs)
{
	return answer_existing(rs, rq->param[0]);
}

/* ---- GET /api/v2/tasks ---- */

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
	if (http_query(rq, "cursor", cursor, sizeof cursor) && !tasklist_cursor_valid(cursor))
		return http_problem(rs, 400, "cursor", "cursor is not one this server issued");

	struct tasklist_query q = {.status = want_status,
				   .server = by_server ? server : NULL,
				   .cursor = cursor,
				   .limit = (int)limit};
	char next[TASKLIST_CURSOR_MAX];
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_key(&g, "items");
	jg_arr(&g);
	tasklist_page(&q, &g, next);
	jg_arr_end(&g);
	jg_key(&g, "nextCursor");
	if (next[0])
		jg_str(&g, next);
	else
		jg_null(&g);
	jg_obj_end(&g);
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	return st;
}

/* ---- DELETE /api/v2/tasks/:id ---- */

int api_tasks_cancel(struct http_req *rq, struct http_resp *rs)
{
	const char *id = rq->param[0];
	struct buf out = BUF_INIT;
	struct task_cancel c;
	int rc = task_cancel(id, &out, &c);
	int status;
	if (rc == CANCEL_DONE) {
		status = answer_raw(rs, 200, &out);
		if (c.was_running)
			api_tasks_schedule_drain(); /* its slot is free; its backend is owed a cancel */
	} else if (rc == TASK_ILLEGAL_MOVE) {
		status = http_problem(rs, 409, NULL, "task '%s' is already %s", id,
				      task_status_name(c.found));
	} else if (rc == CANCEL_KEPT_CHANGING) {
		http_header(rs, "Retry-After", "1");
		status = http_problem(rs, 503, NULL, "task '%s' kept changing; retry", id);
	} else {
		status = app_store_problem(rs, rc, "task", id);
	}
	buf_free(&out);
	return status;
}

/* ---- POST|GET /api/v2/tasks/:id/retry ---- */

int api_tasks_retry(struct http_req *rq, struct http_resp *rs)
{
	const char *id = rq->param[0];
	struct buf out = BUF_INIT;
	enum task_status found;
	int rc = task_requeue(id, &out, &found);
	int status;
	if (rc == REQUEUE_NOT_ENDED || rc == TASK_ILLEGAL_MOVE) {
		status = http_problem(rs, 409, NULL,
				      "only FAILED or CANCELLED tasks can be retried; this one is %s",
				      task_status_name(found));
	} else if (rc != STORE_OK) {
		status = app_store_problem(rs, rc, "task", id);
	} else {
		http_header(rs, "Location", "/api/v2/tasks/%s", id);
		status = answer_raw(rs, 202, &out);
		api_tasks_schedule_drain();
	}
	buf_free(&out);
	return status;
}
