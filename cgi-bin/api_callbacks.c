/* Results from backends: POST /api/v2/tasks/:id/callback (Cog's webhook, carrying
 * the per-attempt secret in the URL) and PUT /api/v2/tasks/:id (the seed's update
 * route, for servers that authenticate with their callback token).
 *
 * An update is accepted only for the attempt and server the task is assigned to
 * now. Non-terminal updates (starting, processing, logs) are recorded; a repeated
 * terminal update is a harmless 200 (Cog retries its terminal webhook); anything
 * else is 401 or 409 and changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/auth.h"
#include "sched/dispatch.h"
#include "base/log.h"
#include "model/server.h"
#include "fs/store.h"
#include "base/util.h"
#include "app.h"


enum update_kind { UPD_PROGRESS, UPD_TERMINAL };

struct update {
	enum update_kind kind;
	enum end_kind end;
	const char *status;
	const char *logs;
	char *error; /* owned */
};

/* Reads the backend's status vocabulary (Cog's, and the same words for http-json). */
static int parse_update(yajl_val body, struct update *u, struct http_resp *rs)
{
	memset(u, 0, sizeof u[0]);
	const char *st;
	int rc = json_get_str(body, "status", &st);
	if (rc != JSON_OK)
		return http_problem(rs, 400, "status",
				    "status is required: starting, processing, succeeded, failed "
				    "or canceled");
	u->status = st;
	u->logs = json_str_or(body, "logs", NULL);
	if (!strcmp(st, "starting") || !strcmp(st, "processing") || !strcmp(st, "running")) {
		u->kind = UPD_PROGRESS;
		return 0;
	}
	u->kind = UPD_TERMINAL;
	if (!strcmp(st, "succeeded") || !strcmp(st, "completed")) {
		u->end = END_SUCCEEDED;
	} else if (!strcmp(st, "failed")) {
		u->end = END_FAILED;
		yajl_val err = json_get(body, "error");
		struct buf b = BUF_INIT;
		if (err && YAJL_IS_STRING(err)) {
			buf_adds(&b, YAJL_GET_STRING(err));
		} else if (err) {
			struct jgen g;
			jg_init(&g);
			jg_value(&g, err);
			jg_finish(&g, &b);
			jg_free(&g);
		} else {
			buf_adds(&b, "the backend reported failure");
		}
		u->error = buf_detach(&b);
	} else if (!strcmp(st, "canceled") || !strcmp(st, "cancelled")) {
		u->end = END_CANCELLED;
		u->error = strdup("cancelled by the backend");
	} else {
		return http_problem(rs, 400, "status",
				    "status must be starting, processing, succeeded, failed or "
				    "canceled");
	}
	return 0;
}

/* The result kept for a terminal update: output, metrics and a tail of the logs. */
static yajl_val build_result(yajl_val body)
{
	struct jgen g;
	struct buf text = BUF_INIT;
	jg_init(&g);
	jg_obj(&g);
	jg_key(&g, "output");
	jg_value(&g, json_get(body, "output"));
	yajl_val metrics = json_get(body, "metrics");
	if (metrics) {
		jg_key(&g, "metrics");
		jg_value(&g, metrics);
	}
	const char *logs = json_str_or(body, "logs", NULL);
	if (logs) {
		size_t n = strlen(logs);
		const char *start = n > TASK_LOG_TAIL ? logs + n - TASK_LOG_TAIL : logs;
		while ((*start & 0xc0) == 0x80)
			start++;
		jg_kstr(&g, "logs", start);
	}
	jg_obj_end(&g);
	jg_finish(&g, &text);
	jg_free(&g);
	yajl_val v = json_parse(text.data ? text.data : "{}", text.len, NULL, NULL);
	buf_free(&text);
	return v;
}

struct progress_arg {
	int attempt;
	const struct update *u;
	bool current;
};

static int record_progress(struct task *t, void *arg)
{
	struct progress_arg *p = arg;
	struct task_attempt *a = task_current_attempt(t);
	if (t->status != TASK_PROCESSING || !a || a->n != p->attempt || a->ended_at)
		return STORE_UNCHANGED;
	p->current = true;
	free(t->backend_status);
	t->backend_status = strdup(p->u->status);
	if (p->u->logs)
		task_set_logs(t, p->u->logs);
	t->updated_at = now_ms();
	return STORE_OK;
}

/* Who may update: the attempt's secret (?token=) or the assigned server's callback
 * token (Bearer), or an operator (admin token). Returns the attempt number the
 * update is for, 0 when unauthenticated (401 already answered), or -1 when it is
 * for an attempt that is not the current one (409 answered). */
static int authenticate(struct http_req *rq, struct http_resp *rs, const char *id)
{
	yajl_val doc;
	int rc = task_load_doc(id, &doc);
	if (rc != STORE_OK) {
		app_store_problem(rs, rc, "task", id);
		return 0;
	}
	struct task t;
	task_from_doc(doc, &t);
	char attempt_s[16] = "", token[160] = "";
	int attempt = 0;
	if (http_query(rq, "attempt", attempt_s, sizeof attempt_s))
		attempt = atoi(attempt_s);
	struct task_attempt *cur = task_current_attempt(&t);
	if (attempt <= 0)
		attempt = cur ? cur->n : 0;
	struct task_attempt *a = task_attempt_by_number(&t, attempt);

	/* An attempt number this task never had is checked against the credentials
	 * of every attempt (secret) or of the current one (server token): a holder of
	 * a real credential gets 409 (stale or confused), anyone else 401. Such an
	 * update is refused here, never passed on, so a secret can only ever end the
	 * attempt it was made for. */
	bool ok = false;
	bool has_token = http_query(rq, "token", token, sizeof token) && token[0];
	if (has_token && a)
		ok = auth_token_matches(token, a->secret_hash);
	for (int i = 0; has_token && !a && !ok && i < t.nhistory; i++)
		ok = auth_token_matches(token, t.history[i].secret_hash);
	const char *bearer = auth_bearer(rq->authorization);
	struct task_attempt *owner = a ? a : cur;
	if (!ok && bearer) {
		if (auth_level_of(bearer) == AUTH_ADMIN) {
			ok = true;
		} else if (owner) {
			struct server s;
			if (server_load(owner->server_id, &s) == STORE_OK) {
				ok = auth_token_matches(bearer, s.callback_token_hash);
				server_free(&s);
			}
		}
	}
	int result = attempt;
	if (!ok) {
		http_problem(rs, 401, NULL,
			     "the callback is not authenticated for this task and attempt");
		result = 0;
	} else if (!a) {
		http_problem(rs, 409, NULL,
			     "task '%s' has no attempt %d; nothing changed", id, attempt);
		result = -1;
	}
	task_free(&t);
	yajl_tree_free(doc);
	return result;
}

static int apply_update(struct http_req *rq, struct http_resp *rs)
{
	const char *id = rq->param[0];
	if (!store_id_valid(id))
		return app_store_problem(rs, STORE_INVALID, "task", id);
	int attempt = authenticate(rq, rs, id);
	if (attempt <= 0)
		return rs->status;
	struct update u;
	if (parse_update(rq->json, &u, rs))
		return rs->status;

	struct buf out = BUF_INIT;
	int status;
	if (u.kind == UPD_PROGRESS) {
		struct progress_arg p = {attempt, &u, false};
		int rc = task_update(id, record_progress, &p, &out);
		if (rc != STORE_OK && rc != STORE_UNCHANGED)
			status = app_store_problem(rs, rc, "task", id);
		else if (!p.current)
			status = http_problem(rs, 409, NULL,
					      "attempt %d of task '%s' is not running", attempt,
					      id);
		else
			status = 200;
	} else {
		yajl_val result = u.end == END_SUCCEEDED ? build_result(rq->json) : NULL;
		struct end_request end = {
			.attempt = attempt,
			.kind = u.end,
			.result = result,
			.error = u.error,
			.logs = u.logs,
		};
		int rc = dispatch_end_attempt(id, &end, &out);
		if (rc == END_DONE) {
			status = 200;
			log_info("task %s attempt %d: %s", id, attempt, u.status);
			api_tasks_schedule_drain();
		} else if (rc == END_DUPLICATE) {
			status = 200;
		} else if (rc == END_NOT_CURRENT) {
			status = http_problem(rs, 409, NULL,
					      "attempt %d of task '%s' is not the running one; "
					      "nothing changed",
					      attempt, id);
		} else {
			status = app_store_problem(rs, rc, "task", id);
		}
		if (result)
			yajl_tree_free(result);
	}
	if (status == 200) {
		struct jgen g;
		jg_init(&g);
		jg_obj(&g);
		jg_kbool(&g, "accepted", true);
		jg_kint(&g, "attempt", attempt);
		jg_obj_end(&g);
		http_json(rs, 200, &g);
		jg_free(&g);
	}
	free(u.error);
	buf_free(&out);
	return status;
}

int api_tasks_callback(struct http_req *rq, struct http_resp *rs)
{
	return apply_update(rq, rs);
}

int api_tasks_update(struct http_req *rq, struct http_resp *rs)
{
	return apply_update(rq, rs);
}
