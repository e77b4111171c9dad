#include "net/http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

static bool initialised;
/* The single-request handle: kept (and reset between requests) because it holds
 * the connections to backends open. */
static CURL *kept;

int http_client_init(void)
{
	if (!initialised && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		initialised = true;
	return initialised ? 0 : -1;
}

void http_client_forget_inherited(void)
{
	if (kept)
		curl_easy_cleanup(kept);
	kept = NULL;
}

void http_client_cleanup(void)
{
	http_client_forget_inherited();
	if (initialised)
		curl_global_cleanup();
	initialised = false;
}

void http_result_free(struct http_result *res)
{
	buf_free(&res->body);
}

/* One request in flight: what the callbacks write into, and what the handle
 * points at until the transfer ends. */
struct transfer {
	const struct http_request *rq;
	struct http_result *res;
	CURL *h;
	struct curl_slist *headers;
	size_t cap;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;
	if (t->res->body.len + len > t->cap) {
		if (t->rq->keep_prefix) {
			buf_add(&t->res->body, p, t->cap - t->res->body.len);
			t->res->truncated = true;
			return len; /* the rest is read and dropped, within the timeout */
		}
		t->res->too_big = true;
		return 0; /* anything but len aborts the transfer */
	}
	buf_add(&t->res->body, p, len);
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;
	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		int v = atoi(p + 12);
		t->res->retry_after_s = v > 0 && v < 3600 ? v : 0;
	}
	return len;
}

/* Appends to t's header list; false (the list kept for the caller to free) if
 * libcurl cannot allocate. */
static bool add_header(struct transfer *t, const char *line)
{
	struct curl_slist *more = curl_slist_append(t->headers, line);
	if (!more)
		return false;
	t->headers = more;
	return true;
}

/* The project's request policy (see the header), applied to h for t's request.
 * false if libcurl refused a setting: the request must not go out half-configured. */
static bool apply_policy(CURL *h, struct transfer *t)
{
	const struct http_request *rq = t->rq;
	long connect_ms =
	    rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : HTTP_CONNECT_TIMEOUT_MS;
	if (connect_ms > rq->timeout_ms)
		connect_ms = rq->timeout_ms;
	t->cap = rq->max_body ? rq->max_body : HTTP_BODY_MAX;
	t->h = h;
	for (const char *const *p = rq->headers; p && *p; p++)
		if (!add_header(t, *p))
			return false;
	if (!add_header(t, "Expect:")) /* no 100-continue round trip */
		return false;

	bool ok =
	    curl_easy_setopt(h, CURLOPT_URL, rq->url) == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form; the bitmask is deprecated */
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
#else
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) ==
		CURLE_OK &&
#endif
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->timeout_ms) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, t->headers) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, t) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_HEADERDATA, t) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_PRIVATE, t) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_USERAGENT,
			     rq->user_agent ? rq->user_agent : HTTP_USER_AGENT) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, rq->fresh_connection ? 1L : 0L) ==
		CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, rq->fresh_connection ? 1L : 0L) == CURLE_OK;
	if (ok && rq->method)
		ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method) == CURLE_OK;
	else if (ok)
		ok = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	if (ok && rq->body)
		ok = curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body) == CURLE_OK &&
		     curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len) ==
			 CURLE_OK;
	return ok;
}

static void fail_result(struct http_result *res, const char *why)
{
	res->status = 0;
	res->done_at_ms = now_ms();
	snprintf(res->error, sizeof res->error, "%s", why);
}

/* Records how t's transfer ended (rc) in its result, and frees the header list. */
static void finish(struct transfer *t, CURLcode rc)
{
	struct http_result *res = t->res;
	curl_off_t us = 0;
	curl_easy_getinfo(t->h, CURLINFO_TOTAL_TIME_T, &us);
	res->elapsed_ms = (double)us / 1000.0;
	res->done_at_ms = now_ms();
	if (rc == CURLE_OK) {
		curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &res->status);
	} else {
		res->status = 0;
		res->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		if (res->too_big)
			snprintf(res->error, sizeof res->error, "response larger than %zu bytes",
				 t->cap);
		else
			snprintf(res->error, sizeof res->error, "%s",
				 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
	}
	curl_slist_free_all(t->headers);
	t->headers = NULL;
}

long http_request_send(const struct http_request *rq, struct http_result *res)
{
	memset(res, 0, sizeof *res);
	if (http_client_init() < 0) {
		fail_result(res, "libcurl does not initialise");
		return 0;
	}
	if (!kept)
		kept = curl_easy_init();
	else
		curl_easy_reset(kept);
	if (!kept) {
		fail_result(res, "curl_easy_init failed");
		return 0;
	}
	struct transfer t = {.rq = rq, .res = res};
	if (!apply_policy(kept, &t)) {
		curl_slist_free_all(t.headers);
		fail_result(res, "cannot configure the request");
		return 0;
	}
	finish(&t, curl_easy_perform(kept));
	return res->status;
}

/* Starts transfer t on m; false (the failure recorded in its result) if it
 * cannot be started. */
static bool batch_start(CURLM *m, struct transfer *t)
{
	CURL *h = curl_easy_init();
	const char *why = NULL;
	if (!h)
		why = "curl_easy_init failed";
	else if (!apply_policy(h, t))
		why = "cannot configure the request";
	else if (curl_multi_add_handle(m, h) != CURLM_OK)
		why = "curl_multi_add_handle failed";
	if (!why)
		return true;
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	if (h)
		curl_easy_cleanup(h);
	t->h = NULL;
	fail_result(t->res, why);
	return false;
}

static void batch_end(CURLM *m, struct transfer *t, CURLcode rc)
{
	curl_multi_remove_handle(m, t->h);
	finish(t, rc);
	curl_easy_cleanup(t->h);
	t->h = NULL;
}

void http_batch_send(const struct http_request *rq, struct http_result *res, size_t n,
		     int max_parallel)
{
	for (size_t i = 0; i < n; i++)
		memset(&res[i], 0, sizeof res[i]);
	if (n == 0)
		return;
	size_t max_par = max_parallel > 0 ? (size_t)max_parallel : n;
	CURLM *m = http_client_init() == 0 ? curl_multi_init() : NULL;
	if (!m) {
		for (size_t i = 0; i < n; i++)
			fail_result(&res[i], "curl_multi_init failed");
		return;
	}
	struct transfer *t = calloc(n, sizeof *t);
	if (!t)
		abort(); /* as buf does: a process that cannot allocate this cannot go on */
	size_t next = 0, active = 0;
	while (next < n || active > 0) {
		while (active < max_par && next < n) {
			t[next] = (struct transfer){.rq = &rq[next], .res = &res[next]};
			if (batch_start(m, &t[next]))
				active++;
			next++;
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
			CURLcode rc = msg->data.result; /* msg dies with remove_handle */
			batch_end(m, (struct transfer *)(void *)priv, rc);
			active--;
		}
		if (mc != CURLM_OK) {
			/* The multi handle is broken: fail what is left rather than spin. */
			char why[160];
			snprintf(why, sizeof why, "request aborted: %s", curl_multi_strerror(mc));
			for (size_t i = 0; i < next; i++)
				if (t[i].h) {
					curl_multi_remove_handle(m, t[i].h);
					curl_easy_cleanup(t[i].h);
					t[i].h = NULL;
					curl_slist_free_all(t[i].headers);
					t[i].headers = NULL;
					fail_result(&res[i], why);
				}
			for (; next < n; next++)
				fail_result(&res[next], why);
			break;
		}
		if (active > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	curl_multi_cleanup(m);
	free(t);
}
