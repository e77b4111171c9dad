/* Results from backends: POST /api/v2/tasks/:id/callback (Cog's webhook, carrying
 * the per-attempt secret in the URL) and PUT /api/v2/tasks/:id (the seed's update
 * route, for servers that authenticate with their callback token). The rules are
 * lib/sched/callback.h's; here the request is read and the outcome answered:
 * 200 when accepted (a repeated terminal update included), 401 or 409 when
 * refused (nothing changed), 404 when the task is not there (any more). */
#include <stdlib.h>

#include "model/auth.h"
#include "sched/callback.h"
#include "sched/intake.h"
#include "fs/store.h"
#include "app.h"

/* The status of a refused update, answered; 0 if the code is not a refusal. */
static int answer_refusal(struct http_resp *rs, int rc, const char *id, int attempt)
{
	switch (rc) {
	case CALLBACK_UNAUTHENTICATED:
		return http_problem(rs, 401, NULL,
				    "the callback is not authenticated for this task and attempt");
	case CALLBACK_NO_SUCH_ATTEMPT:
		return http_problem(rs, 409, NULL, "task '%s' has no attempt %d; nothing changed",
				    id, attempt);
	case CALLBACK_NOT_RUNNING:
		return http_problem(rs, 409, NULL, "attempt %d of task '%s' is not running",
				    attempt, id);
	case END_NOT_CURRENT:
		return http_problem(rs, 409, NULL,
				    "attempt %d of task '%s' is not the running one; nothing changed",
				    attempt, id);
	case TASK_ILLEGAL_MOVE:
		return http_problem(rs, 409, NULL,
				    "task '%s' cannot make that move now; nothing changed", id);
	default:
		return app_store_problem(rs, rc, "task", id);
	}
}

static int answer_accepted(struct http_resp *rs, int attempt)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kbool(&g, "accepted", true);
	jg_kint(&g, "attempt", attempt);
	jg_obj_end(&g);
	int status = http_json(rs, 200, &g);
	jg_free(&g);
	return status;
}

static int apply_update(struct http_req *rq, struct http_resp *rs)
{
	const char *id = rq->param[0];
	char attempt_s[16] = "", token[160] = "";
	struct callback_auth who = {.token = token, .bearer = auth_bearer(rq->authorization)};
	if (http_query(rq, "attempt", attempt_s, sizeof attempt_s))
		who.attempt = atoi(attempt_s);
	if (!http_query(rq, "token", token, sizeof token))
		token[0] = '\0';
	int attempt;
	int rc = callback_authenticate(id, &who, &attempt);
	if (rc != STORE_OK)
		return answer_refusal(rs, rc, id, attempt);

	long long max = intake_max_bytes();
	if (rq->content_length > max) {
		rc = callback_refuse_oversize(id, attempt, rq->content_length, max);
		if (rc == END_DONE)
			api_tasks_schedule_drain();
		return http_problem(rs, 413, "/",
				    "result of %lld bytes exceeds callbackMaxBytes (%lld); the "
				    "attempt ended FAILED",
				    rq->content_length, max);
	}
	if (rq->content_length == 0)
		return http_problem(rs, 400, "/", "this route needs a JSON request body");
	if (!http_content_is_json(rq))
		return http_problem(rs, 415, "Content-Type", "the body must be application/json");
	yajl_val body;
	struct buf why = BUF_INIT;
	if (intake_read(id, http_req_body_piece, rq, &body, &why) < 0) {
		int status = http_problem(rs, 400, "/", "%s", buf_str(&why));
		buf_free(&why);
		return status;
	}
	buf_free(&why);
	struct callback_update u;
	struct verr e;
	if (callback_update_parse(body, &u, &e) < 0) {
		callback_update_free(&u);
		yajl_tree_free(body);
		return http_problem(rs, 400, e.field, "%s", e.msg);
	}
	rc = callback_apply(id, attempt, &u);
	callback_update_free(&u);
	yajl_tree_free(body);
	if (rc == END_DONE)
		api_tasks_schedule_drain();
	if (rc == END_DONE || rc == END_DUPLICATE || rc == CALLBACK_RECORDED)
		return answer_accepted(rs, attempt);
	return answer_refusal(rs, rc, id, attempt);
}

int api_tasks_callback(struct http_req *rq, struct http_resp *rs)
{
	return apply_update(rq, rs);
}

int api_tasks_update(struct http_req *rq, struct http_resp *rs)
{
	return apply_update(rq, rs);
}
