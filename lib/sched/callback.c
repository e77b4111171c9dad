#include "sched/callback.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "model/auth.h"
#include "model/server.h"
#include "model/task.h"

/* The text of the "error" of a failed update: a string as it is, anything else
 * as its JSON. */
static char *failure_text(yajl_val err)
{
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
	return buf_detach(&b);
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

static bool is_one_of(const char *s, const char *a, const char *b, const char *c)
{
	return !strcmp(s, a) || !strcmp(s, b) || (c && !strcmp(s, c));
}

int callback_update_parse(yajl_val body, struct callback_update *u, struct verr *e)
{
	memset(u, 0, sizeof *u);
	const char *st;
	if (json_get_str(body, "status", &st) != JSON_OK)
		return verr_set(e, "status",
				"status is required: starting, processing, succeeded, failed "
				"or canceled");
	u->status = st;
	u->logs = json_str_or(body, "logs", NULL);
	if (is_one_of(st, "starting", "processing", "running")) {
		yajl_val out = json_get(body, "output"); /* Cog's output events: the list so far */
		u->output = out && !YAJL_IS_NULL(out) ? out : NULL;
		return 0;
	}
	u->terminal = true;
	if (is_one_of(st, "succeeded", "completed", NULL)) {
		u->end = END_SUCCEEDED;
		u->result = build_result(body);
	} else if (!strcmp(st, "failed")) {
		u->end = END_FAILED;
		u->error = failure_text(json_get(body, "error"));
	} else if (is_one_of(st, "canceled", "cancelled", NULL)) {
		u->end = END_CANCELLED;
		u->error = xstrdup("cancelled by the backend");
	} else {
		return verr_set(e, "status",
				"status must be starting, processing, succeeded, failed or "
				"canceled");
	}
	return 0;
}

void callback_update_free(struct callback_update *u)
{
	free(u->error);
	if (u->result)
		yajl_tree_free(u->result);
	memset(u, 0, sizeof *u);
}

/* The assigned server's callback token, or the admin token. */
static bool bearer_matches(const char *bearer, const struct task_attempt *owner)
{
	if (auth_level_of(bearer) == AUTH_ADMIN)
		return true;
	if (!owner)
		return false;
	struct server s;
	if (server_load(owner->server_id, &s) != STORE_OK)
		return false;
	bool ok = auth_token_matches(bearer, s.callback_token_hash);
	server_free(&s);
	return ok;
}

/* Who may update: the attempt's secret, the assigned server's callback token, or
 * an operator. An attempt number this task never had is checked against the
 * secrets of every attempt or the current one's server token: a holder of a real
 * credential learns it is stale or confused, anyone else only that it is not
 * authenticated. Such an update is refused here, never passed on, so a secret
 * can only ever end the attempt it was made for. */
static int authorize(struct task *t, const struct callback_auth *who, int *attempt)
{
	struct task_attempt *cur = task_current_attempt(t);
	*attempt = who->attempt > 0 ? who->attempt : cur ? cur->n : 0;
	struct task_attempt *a = task_attempt_by_number(t, *attempt);
	bool ok = false;
	bool has_token = who->token && who->token[0];
	if (has_token && a)
		ok = auth_token_matches(who->token, a->secret_hash);
	for (int i = 0; has_token && !a && !ok && i < t->nhistory; i++)
		ok = auth_token_matches(who->token, t->history[i].secret_hash);
	if (!ok && who->bearer)
		ok = bearer_matches(who->bearer, a ? a : cur);
	if (!ok)
		return CALLBACK_UNAUTHENTICATED;
	return a ? STORE_OK : CALLBACK_NO_SUCH_ATTEMPT;
}

int callback_authenticate(const char *id, const struct callback_auth *who, int *attempt)
{
	*attempt = 0;
	if (!store_id_valid(id))
		return STORE_INVALID;
	yajl_val doc;
	int rc = task_load_doc(id, &doc);
	if (rc != STORE_OK)
		return rc;
	struct task t;
	task_from_doc(doc, &t);
	rc = authorize(&t, who, attempt);
	task_free(&t);
	yajl_tree_free(doc);
	return rc;
}

struct progress_arg {
	int attempt;
	const struct callback_update *u;
};

static int record_progress(struct task *t, void *arg)
{
	struct progress_arg *p = arg;
	struct task_attempt *a = task_current_attempt(t);
	if (t->status != TASK_PROCESSING || !a || a->n != p->attempt || a->ended_at)
		return CALLBACK_NOT_RUNNING;
	free(t->backend_status);
	t->backend_status = xstrdup(p->u->status);
	if (p->u->logs)
		task_set_logs(t, p->u->logs);
	if (p->u->output)
		t->progress_output = p->u->output;
	t->updated_at = now_ms();
	return STORE_OK;
}

int callback_apply(const char *id, int attempt, const struct callback_update *u)
{
	int rc;
	if (!u->terminal) {
		struct progress_arg p = {attempt, u};
		rc = task_update(id, record_progress, &p, NULL);
		return rc == STORE_OK ? CALLBACK_RECORDED : rc;
	}
	struct end_request end = {
		.attempt = attempt,
		.kind = u->end,
		.result = u->result,
		.error = u->error,
		.logs = u->logs,
	};
	rc = dispatch_end_attempt(id, &end, NULL);
	if (rc == END_DONE)
		log_info("task %s attempt %d: %s", id, attempt, u->status);
	return rc;
}

int callback_refuse_oversize(const char *id, int attempt, long long bytes, long long max)
{
	struct buf why = BUF_INIT;
	buf_printf(&why, "result of %lld bytes exceeds callbackMaxBytes (%lld)", bytes, max);
	struct callback_update u = {
	    .terminal = true, .end = END_FAILED, .status = "failed", .error = buf_detach(&why)};
	int rc = callback_apply(id, attempt, &u);
	callback_update_free(&u);
	return rc;
}
