#include "sched/backend.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs/journal.h"
#include "base/log.h"
#include "base/util.h"

#define RESPONSE_CAP (2u << 20) /* a result bigger than this is not one we store */
#define CONNECT_TIMEOUT_MS 3000L
#define ASYNC_TIMEOUT_MS 15000L /* an async dispatch answers at once or is broken */

static const char *const outcome_names[] = {"accepted", "done",	    "failed", "busy",
					    "starting", "rejected", "error"};

const char *backend_outcome_name(enum backend_outcome o)
{
	return outcome_names[o];
}

static void curl_once(void)
{
	static int done;
	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = 1;
	}
}

struct sink {
	struct buf *b;
	bool overflow;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;
	if (s->b->len + len > RESPONSE_CAP) {
		s->overflow = true;
		return 0; /* aborts the transfer */
	}
	buf_add(s->b, p, len);
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	int *retry_after = arg;
	size_t len = size * n;
	if (retry_after && len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		int v = atoi(p + 12);
		*retry_after = v > 0 && v < 3600 ? v : 0;
	}
	return len;
}

long backend_http(const char *method, const char *url, const char *const *headers,
		  const char *body, size_t body_len, long timeout_ms, struct buf *resp,
		  char *err, size_t errlen, int *retry_after_s)
{
	curl_once();
	/* What we tell a backend must rest on state that survives a crash: a task it
	 * runs is one our tree records as running there. */
	if (journal_commit() < 0) {
		snprintf(err, errlen, "the state tree could not be made durable");
		return 0;
	}
	/* One handle per process, reset between calls: it keeps connections to
	 * backends alive, so a dispatch does not pay a TCP handshake each time. */
	static CURL *h;
	if (!h)
		h = curl_easy_init();
	else
		curl_easy_reset(h);
	if (!h) {
		snprintf(err, errlen, "curl_easy_init failed");
		return 0;
	}
	struct curl_slist *hl = NULL;
	for (const char *const *p = headers; p && *p; p++)
		hl = curl_slist_append(hl, *p);
	hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
	struct sink sink = {resp, false};
	char ebuf[CURL_ERROR_SIZE] = "";
	if (retry_after_s)
		*retry_after_s = 0;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, retry_after_s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "taskgate/1");
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	} else if (sink.overflow) {
		snprintf(err, errlen, "response larger than %u bytes", RESPONSE_CAP);
	} else {
		snprintf(err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
	}
	curl_slist_free_all(hl);
	return status;
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
	int64_t t0 = mono_ms();
	r->http_status = backend_http(s->protocol == PROTO_COG ? "PUT" : "POST", buf_str(&url),
				      s->protocol == PROTO_COG ? cog_headers : json_headers,
				      body.data, body.len, timeout, &r->body, r->error,
				      sizeof r->error, &r->retry_after_s);
	r->elapsed_ms = mono_ms() - t0;
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
	struct buf url = BUF_INIT, resp = BUF_INIT;
	char err[256] = "";
	join_url(&url, s->predict_url, prediction_id);
	buf_adds(&url, "/cancel");
	long st = backend_http("POST", buf_str(&url), NULL, "", 0, 5000, &resp, err, sizeof err,
			       NULL);
	if (st < 200 || st >= 300)
		log_warn("cancel of %s on %s: %s", prediction_id, s->id,
			 st ? "refused" : err);
	buf_free(&url);
	buf_free(&resp);
	return st >= 200 && st < 300;
}
