#include "sched/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/http_client.h"
#include "sched/intake.h"

#define ASYNC_TIMEOUT_MS 15000L /* an async dispatch answers at once or is broken */

static const char *const outcome_names[] = {"accepted", "done",	    "failed", "busy",
					    "starting", "rejected", "error"};

const char *backend_outcome_name(enum backend_outcome o)
{
	return outcome_names[o];
}

/* Joins base and suffix with exactly one '/'. */
static void join_url(struct buf *out, const char *base, const char *suffix)
{
	buf_adds(out, base);
	while (out->len && out->data[out->len - 1] == '/')
		out->data[--out->len] = '\0';
	buf_addch(out, '/');
	buf_adds(out, suffix);
}

/* In bit order: BACKEND_EVENT_START is 1 << 0, and so on. */
static const char *const event_names[] = {"start", "output", "logs", "completed"};

unsigned backend_event_bit(const char *name)
{
	for (size_t i = 0; i < sizeof event_names / sizeof event_names[0]; i++)
		if (strcmp(name, event_names[i]) == 0)
			return 1u << i;
	return 0;
}

static void cog_body(const struct backend_call *c, struct buf *out)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "id", c->prediction_id);
	jg_key(&g, "input");
	jg_value(&g, c->input);
	jg_kstr(&g, "webhook", c->callback_url);
	jg_key(&g, "webhook_events_filter");
	jg_arr(&g);
	for (size_t i = 0; i < sizeof event_names / sizeof event_names[0]; i++)
		if ((c->cog_events | BACKEND_EVENT_COMPLETED) & (1u << i))
			jg_str(&g, event_names[i]);
	jg_arr_end(&g);
	jg_obj_end(&g);
	jg_finish(&g, out);
	jg_free(&g);
}

static void http_json_body(const struct backend_call *c, struct buf *out)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "taskId", c->task_id);
	jg_kstr(&g, "model", c->model);
	jg_key(&g, "input");
	jg_value(&g, c->input);
	jg_kstr(&g, "callbackUrl", c->callback_url);
	jg_obj_end(&g);
	jg_finish(&g, out);
	jg_free(&g);
}

/* A short, printable excerpt of a response body for error messages. */
static void body_excerpt(const struct buf *b, char *out, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < b->len && k + 1 < n && k < 160; i++) {
		unsigned char c = (unsigned char)b->data[i];
		out[k++] = (c < 0x20 || c >= 0x7f) ? ' ' : (char)c;
	}
	out[k] = '\0';
}

static void classify(const struct server *s, struct backend_reply *r, bool sync)
{
	long st = r->http_status;
	char excerpt[192];
	body_excerpt(&r->body, excerpt, sizeof excerpt);
	if (st == 0) {
		r->outcome = BACKEND_ERROR;
	} else if (st == 202 || (s->protocol == PROTO_COG && st >= 200 && st < 300)) {
		r->outcome = BACKEND_ACCEPTED;
	} else if (st >= 200 && st < 300) {
		r->outcome = sync ? BACKEND_DONE : BACKEND_ACCEPTED;
	} else if (st == 409 || st == 429) {
		r->outcome = BACKEND_BUSY;
		snprintf(r->error, sizeof r->error, "busy (HTTP %ld)", st);
	} else if (st == 503 && s->protocol == PROTO_COG) {
		r->outcome = BACKEND_STARTING;
		snprintf(r->error, sizeof r->error, "starting (HTTP 503)");
	} else if (st >= 400 && st < 500 && st != 408) {
		r->outcome = BACKEND_REJECTED;
		snprintf(r->error, sizeof r->error, "rejected by the backend (HTTP %ld): %s", st,
			 excerpt);
	} else {
		r->outcome = BACKEND_ERROR;
		snprintf(r->error, sizeof r->error, "backend error (HTTP %ld): %s", st, excerpt);
	}
}

void backend_dispatch(const struct server *s, const struct backend_call *call,
		      struct backend_reply *r)
{
	struct buf url = BUF_INIT, body = BUF_INIT;
	memset(r, 0, sizeof *r);
	bool sync = s->protocol == PROTO_HTTP_JSON && !s->async;
	long timeout = sync ? call->timeout_ms : ASYNC_TIMEOUT_MS;
	const char *cog_headers[] = {"Content-Type: application/json", "Prefer: respond-async",
				     NULL};
	const char *json_headers[] = {"Content-Type: application/json", NULL};

	if (s->protocol == PROTO_COG) {
		join_url(&url, s->predict_url, call->prediction_id);
		cog_body(call, &body);
	} else {
		buf_adds(&url, s->predict_url);
		http_json_body(call, &body);
	}
	struct http_request rq = {
	    .method = s->protocol == PROTO_COG ? "PUT" : "POST",
	    .url = buf_str(&url),
	    .headers = s->protocol == PROTO_COG ? cog_headers : json_headers,
	    .body = body.data,
	    .body_len = body.len,
	    .timeout_ms = timeout,
	    /* A synchronous answer is a result like a callback's, under its bound. */
	    .max_body = (size_t)intake_max_bytes(),
	};
	struct http_result res;
	int64_t t0 = mono_ms();
	r->http_status = http_request_send(&rq, &res);
	r->elapsed_ms = mono_ms() - t0;
	r->body = res.body; /* the reply owns the body now */
	r->retry_after_s = res.retry_after_s;
	snprintf(r->error, sizeof r->error, "%s", res.error);
	classify(s, r, sync);
	if (r->outcome == BACKEND_ERROR && r->http_status == 0 && !r->error[0])
		snprintf(r->error, sizeof r->error, "no answer");
	buf_free(&url);
	buf_free(&body);
}

bool backend_cancel(const struct server *s, const char *prediction_id)
{
	if (s->protocol != PROTO_COG)
		return false; /* http-json defines no cancel */
	struct buf url = BUF_INIT;
	join_url(&url, s->predict_url, prediction_id);
	buf_adds(&url, "/cancel");
	struct http_request rq = {
	    .method = "POST", .url = buf_str(&url), .body = "", .timeout_ms = 5000};
	struct http_result res;
	long st = http_request_send(&rq, &res);
	if (st < 200 || st >= 300)
		log_warn("cancel of %s on %s: %s", prediction_id, s->id,
			 st ? "refused" : res.error);
	http_result_free(&res);
	buf_free(&url);
	return st >= 200 && st < 300;
}
