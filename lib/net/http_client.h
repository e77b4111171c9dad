/* http_client: one request, or many at once. lib/net (this file and net/url) is the
 * only code that calls libcurl or includes its headers (tests/layers.py checks).
 * Every outbound request (a dispatch to a backend, a health probe, an alert
 * webhook) goes through here under one request policy, applied to every handle by
 * one function:
 *   - http and https only: a URL naming another scheme (file, gopher, ...) fails;
 *   - no redirects: a 3xx is the answer, never followed to another host;
 *   - no signals (CURLOPT_NOSIGNAL): a timeout must not raise SIGALRM in a FastCGI
 *     process or a cron loop;
 *   - a connect timeout and a total timeout on every request;
 *   - the response body capped: a longer answer aborts the transfer and fails
 *     (nothing we store or judge is that big, and memory is bounded per request),
 *     or, for a request that asks, is cut at the cap and read to its end;
 *   - no "Expect: 100-continue" round trip before a body;
 *   - Retry-After (delta-seconds, 1..3599) read from the answer;
 *   - every failure explained in text (libcurl's message, or why we aborted).
 * What the requests say (the protocols) is the callers' business: sched/backend
 * (Cog, http-json), jobs/health (probes), stats/alerts (webhooks). */
#ifndef TASKGATE_HTTP_CLIENT_H
#define TASKGATE_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define HTTP_CONNECT_TIMEOUT_MS 3000L	   /* when a request names none */
#define HTTP_BODY_MAX		(2u << 20) /* when a request names no cap */
#define HTTP_USER_AGENT		"taskgate/1"

/* Initialises libcurl once per process (curl_global_init is not thread-safe and
 * costs a little; the request functions call this themselves). 0, or -1 if libcurl
 * cannot initialise. */
int http_client_init(void);
/* Frees the kept connection and libcurl's global state; for programs about to
 * exit (cron programs, tests), so valgrind sees nothing left. */
void http_client_cleanup(void);
/* In a child just forked: drops the kept connection inherited from the parent
 * (closing the child's copy of its socket leaves the parent's working). */
void http_client_forget_inherited(void);

struct http_request {
	const char *method; /* NULL: GET */
	const char *url;
	const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
	const char *body;	    /* NULL: none */
	size_t body_len;
	long timeout_ms;	 /* the whole request */
	long connect_timeout_ms; /* 0: HTTP_CONNECT_TIMEOUT_MS; never above timeout_ms */
	size_t max_body;	 /* 0: HTTP_BODY_MAX */
	/* A body past max_body keeps its first max_body bytes and the rest is read
	 * and dropped (res->truncated), instead of failing the request: for answers
	 * whose start is all we need (a health check), whatever their length. */
	bool keep_prefix;
	/* A new connection, closed afterwards: a health probe must see the server as
	 * a new client would. Otherwise the single-request connection is kept alive,
	 * so a dispatch does not pay a TCP handshake each time. */
	bool fresh_connection;
	const char *user_agent; /* NULL: HTTP_USER_AGENT */
};

struct http_result {
	long status;	    /* the HTTP status; 0 when no complete answer arrived */
	struct buf body;    /* the answer's body (owned by the result: http_result_free) */
	int retry_after_s;  /* Retry-After in seconds, 0 if none or not plausible */
	double elapsed_ms;  /* libcurl's total time of the transfer */
	int64_t done_at_ms; /* wall clock (now_ms) when the request ended */
	bool timed_out;	    /* a timeout ended it */
	bool too_big;	    /* the body passed the cap and the transfer was aborted */
	bool truncated;	    /* keep_prefix: the body passed the cap and was cut there */
	char error[256];    /* why status is 0; empty otherwise */
};

/* One request, blocking; fills res (the caller frees it with http_result_free,
 * whatever the outcome). Returns res->status. */
long http_request_send(const struct http_request *rq, struct http_result *res);

/* n requests at once on one multi handle, at most max_parallel in flight (0: all);
 * returns when every one has ended, res[i] holding the outcome of rq[i] (free each
 * with http_result_free). The batch takes about as long as its slowest request. */
void http_batch_send(const struct http_request *rq, struct http_result *res, size_t n,
		     int max_parallel);

void http_result_free(struct http_result *res);

#endif
