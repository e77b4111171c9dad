/* router: matches a method and path against a static route table.
 * Patterns are literal segments and ":name" captures (one segment each, never
 * empty). The decision for 404 and 405 (with the Allow list) is made here, once,
 * for every route. Pure: no I/O, unit-tested. */
#ifndef TASKGATE_ROUTER_H
#define TASKGATE_ROUTER_H

#include <stddef.h>

#include "base/buf.h"
#include "web/http.h"

struct route {
	const char *method;
	const char *pattern;
	int (*handler)(struct http_req *rq, struct http_resp *rs);
	unsigned flags;
};

/* Finds the route for method+path. On a match returns it and stores captures in
 * rq->param (copied into rq->param_store). Otherwise returns NULL with *status set
 * to 404, or to 405 with the allowed methods (comma-separated) appended to allow. */
const struct route *router_match(const struct route *table, size_t n, struct http_req *rq,
				 int *status, struct buf *allow);

/* The path as it may be logged: the segment a ":secret" pattern segment stands for
 * becomes "-", so a per-server secret carried in a URL (the upload route) never
 * reaches a log. It is masked wherever the path begins like such a route up to that
 * segment, whatever the method and whatever follows (a 404 or 405 carried the secret
 * too). A route has at most one ":secret". The query string is never part of path
 * (callback tokens live there). Writes at most n bytes to out, always terminated. */
void router_log_path(const struct route *table, size_t count, const char *path, char *out,
		     size_t n);

#endif
