/* Unit tests for lib/router.c: method + path against a static route table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/router.h"

/* The handlers are never called; distinct functions only identify routes. */
static int h_list(struct http_req *rq, struct http_resp *rs)
{
	return 1;
}
static int h_create(struct http_req *rq, struct http_resp *rs)
{
	return 2;
}
static int h_get(struct http_req *rq, struct http_resp *rs)
{
	return 3;
}
static int h_delete(struct http_req *rq, struct http_resp *rs)
{
	return 4;
}
static int h_maint(struct http_req *rq, struct http_resp *rs)
{
	return 5;
}
static int h_two(struct http_req *rq, struct http_resp *rs)
{
	return 6;
}
static int h_four(struct http_req *rq, struct http_resp *rs)
{
	return 7;
}
static int h_five(struct http_req *rq, struct http_resp *rs)
{
	return 8;
}
static int h_post_only(struct http_req *rq, struct http_resp *rs)
{
	return 9;
}

static const struct route table[] = {
    {"GET", "/api/v2/servers", h_list, 0},
    {"POST", "/api/v2/servers", h_create, 0},
    {"GET", "/api/v2/servers/:id", h_get, 0},
    {"DELETE", "/api/v2/servers/:id", h_delete, 0},
    {"PUT", "/api/v2/servers/:id/maintenance", h_maint, 0},
    {"GET", "/a/:x/b/:y", h_two, 0},
    {"GET", "/four/:a/:b/:c/:d", h_four, 0},
    {"GET", "/five/:a/:b/:c/:d/:e", h_five, 0},
    {"POST", "/api/v2/tasks", h_post_only, 0},
    {"PUT", "/api/v2/uploads/:server/:secret/:name", h_maint, 0},
    {"PUT", "/s/:secret", h_maint, 0},
};
#define NROUTES (sizeof table / sizeof table[0])

/* One routing attempt with its outcome. */
struct attempt {
	struct http_req rq;
	const struct route *r;
	int status;
	struct buf allow;
};

static void route(struct attempt *a, const char *method, const char *path)
{
	memset(a, 0, sizeof *a);
	snprintf(a->rq.method, sizeof a->rq.method, "%s", method);
	a->rq.path = strdup(path);
	a->status = -1;
	a->r = router_match(table, NROUTES, &a->rq, &a->status, &a->allow);
}

static void attempt_free(struct attempt *a)
{
	http_req_free(&a->rq); /* frees path and param_store */
	buf_free(&a->allow);
}

/* Asserts that method+path reaches handler h. */
static void assert_routes_to(const char *method, const char *path,
			     int (*h)(struct http_req *, struct http_resp *))
{
	struct attempt a;
	route(&a, method, path);
	if (!a.r || a.r->handler != h)
		fail_msg("%s %s did not reach the expected route (status %d)", method, path,
			 a.status);
	attempt_free(&a);
}

/* Asserts that method+path is refused with status (and Allow list for 405). */
static void assert_refused(const char *method, const char *path, int status, const char *allow)
{
	struct attempt a;
	route(&a, method, path);
	if (a.r)
		fail_msg("%s %s matched %s %s", method, path, a.r->method, a.r->pattern);
	if (a.status != status)
		fail_msg("%s %s gave %d, want %d", method, path, a.status, status);
	assert_string_equal(buf_str(&a.allow), allow);
	attempt_free(&a);
}

static void test_literal_routes(void **state)
{
	struct attempt a;
	route(&a, "GET", "/api/v2/servers");
	assert_non_null(a.r);
	assert_ptr_equal(a.r, &table[0]);
	assert_null(a.rq.param[0]); /* no captures */
	attempt_free(&a);
	/* Same path, other method: the table decides. */
	assert_routes_to("POST", "/api/v2/servers", h_create);
}

static void test_captures(void **state)
{
	struct attempt a;
	route(&a, "GET", "/api/v2/servers/gpu-1");
	assert_ptr_equal(a.r, &table[2]);
	assert_string_equal(a.rq.param[0], "gpu-1");
	assert_null(a.rq.param[1]);
	/* Captures are copies: they survive changes to the path buffer. */
	a.rq.path[strlen(a.rq.path) - 1] = 'X';
	assert_string_equal(a.rq.param[0], "gpu-1");
	attempt_free(&a);

	route(&a, "GET", "/a/one/b/two");
	assert_ptr_equal(a.r, &table[5]);
	assert_string_equal(a.rq.param[0], "one");
	assert_string_equal(a.rq.param[1], "two");
	attempt_free(&a);

	route(&a, "PUT", "/api/v2/servers/s_9/maintenance");
	assert_ptr_equal(a.r, &table[4]);
	assert_string_equal(a.rq.param[0], "s_9");
	attempt_free(&a);

	/* A capture takes any bytes of one segment; validation is the handler's job. */
	route(&a, "GET", "/api/v2/servers/..%2F");
	assert_ptr_equal(a.r, &table[2]);
	assert_string_equal(a.rq.param[0], "..%2F");
	attempt_free(&a);
}

static void test_max_captures(void **state)
{
	struct attempt a;
	route(&a, "GET", "/four/1/2/3/4");
	assert_ptr_equal(a.r, &table[6]);
	assert_string_equal(a.rq.param[0], "1");
	assert_string_equal(a.rq.param[3], "4");
	attempt_free(&a);
	/* More captures than HTTP_MAX_PARAMS cannot be stored: no match. */
	assert_refused("GET", "/five/1/2/3/4/5", 404, "");
}

static void test_not_found(void **state)
{
	assert_refused("GET", "/api/v2/nothing", 404, "");
	assert_refused("GET", "/", 404, "");
	assert_refused("GET", "", 404, "");
	assert_refused("GET", "/api/v2/serversX", 404, "");    /* longer literal */
	assert_refused("GET", "/api/v2/server", 404, "");      /* shorter literal */
	assert_refused("GET", "/API/v2/servers", 404, "");     /* case matters */
	assert_refused("GET", "/api/v2/servers/a/b", 404, ""); /* one segment only */
	/* An unknown path is 404 whatever the method: no Allow list leaks. */
	assert_refused("PATCH", "/api/v2/nothing", 404, "");
}

static void test_method_not_allowed_lists_allow(void **state)
{
	assert_refused("PATCH", "/api/v2/servers", 405, "GET, POST");
	assert_refused("POST", "/api/v2/servers/x", 405, "GET, DELETE");
	assert_refused("GET", "/api/v2/servers/x/maintenance", 405, "PUT");
	assert_refused("get", "/api/v2/servers", 405, "GET, POST"); /* methods are exact */
}

static void test_head_is_get(void **state)
{
	assert_routes_to("HEAD", "/api/v2/servers", h_list);
	assert_routes_to("HEAD", "/api/v2/servers/x", h_get);
	/* Where GET is not allowed, neither is HEAD. */
	assert_refused("HEAD", "/api/v2/tasks", 405, "POST");
}

static void test_empty_capture_refused(void **state)
{
	/* "/api/v2/servers/" must not reach the :id handler with id "". */
	assert_refused("GET", "/api/v2/servers/", 404, "");
	assert_refused("DELETE", "/api/v2/servers/", 404, "");
	assert_refused("GET", "/a//b/y", 404, "");
	assert_refused("GET", "/a/x/b/", 404, "");
	assert_refused("PUT", "/api/v2/servers//maintenance", 404, "");
}

static void test_trailing_slash_does_not_match(void **state)
{
	assert_refused("GET", "/api/v2/servers/x/", 404, "");
	assert_refused("PUT", "/api/v2/servers/x/maintenance/", 404, "");
	assert_refused("POST", "/api/v2/tasks/", 404, "");
	assert_refused("GET", "/api/v2//servers", 404, "");
}

static void test_rematch_reuses_request(void **state)
{
	/* The same request routed twice (a re-dispatch) must not leak or keep stale
	 * captures (valgrind checks the former). */
	struct attempt a;
	route(&a, "GET", "/a/one/b/two");
	assert_ptr_equal(a.r, &table[5]);
	free(a.rq.path);
	a.rq.path = strdup("/api/v2/servers/other");
	a.r = router_match(table, NROUTES, &a.rq, &a.status, &a.allow);
	assert_ptr_equal(a.r, &table[2]);
	assert_string_equal(a.rq.param[0], "other");
	assert_null(a.rq.param[1]); /* "two" is gone */
	attempt_free(&a);
}

static void test_empty_table(void **state)
{
	struct http_req rq;
	struct buf allow = BUF_INIT;
	int status = 0;
	memset(&rq, 0, sizeof rq);
	snprintf(rq.method, sizeof rq.method, "GET");
	rq.path = strdup("/");
	assert_null(router_match(table, 0, &rq, &status, &allow));
	assert_int_equal(status, 404);
	http_req_free(&rq);
	buf_free(&allow);
}

/* A ":secret" capture is logged as "-"; everything else, and unrouted paths, whole. */
static void test_log_path_masks_secrets(void **state)
{
	char out[128];
	router_log_path(table, NROUTES, "/api/v2/uploads/s1/8a1cfe/out.png", out, sizeof out);
	assert_string_equal(out, "/api/v2/uploads/s1/-/out.png");
	/* A method the route does not take still had its secret masked. */
	router_log_path(table, NROUTES, "/s/8a1cfe", out, sizeof out);
	assert_string_equal(out, "/s/-");
	/* A path cut short after the secret, or run on past the route, is masked too. */
	router_log_path(table, NROUTES, "/api/v2/uploads/s1/8a1cfe/", out, sizeof out);
	assert_string_equal(out, "/api/v2/uploads/s1/-/");
	router_log_path(table, NROUTES, "/api/v2/uploads/s1/8a1cfe", out, sizeof out);
	assert_string_equal(out, "/api/v2/uploads/s1/-");
	router_log_path(table, NROUTES, "/api/v2/uploads/s1/8a1cfe/a/b", out, sizeof out);
	assert_string_equal(out, "/api/v2/uploads/s1/-/a/b");
	router_log_path(table, NROUTES, "/api/v2/uploads//8a1cfe/a", out, sizeof out);
	assert_string_equal(out, "/api/v2/uploads//8a1cfe/a");
	router_log_path(table, NROUTES, "/api/v2/servers/abc", out, sizeof out);
	assert_string_equal(out, "/api/v2/servers/abc");
	router_log_path(table, NROUTES, "/nowhere/8a1cfe", out, sizeof out);
	assert_string_equal(out, "/nowhere/8a1cfe");
	router_log_path(table, NROUTES, NULL, out, sizeof out);
	assert_string_equal(out, "?");
	/* Truncation keeps the secret out and the string terminated. */
	char tiny[20];
	router_log_path(table, NROUTES, "/api/v2/uploads/s1/8a1cfe/out.png", tiny, sizeof tiny);
	assert_true(strlen(tiny) < sizeof tiny);
	assert_null(strstr(tiny, "8a1c"));
	char small[8];
	router_log_path(table, NROUTES, "/api/v2/uploads/s1/8a1cfe/out.png", small, sizeof small);
	assert_string_equal(small, "/api/v2");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literal_routes),
	    cmocka_unit_test(test_captures),
	    cmocka_unit_test(test_max_captures),
	    cmocka_unit_test(test_not_found),
	    cmocka_unit_test(test_method_not_allowed_lists_allow),
	    cmocka_unit_test(test_head_is_get),
	    cmocka_unit_test(test_empty_capture_refused),
	    cmocka_unit_test(test_trailing_slash_does_not_match),
	    cmocka_unit_test(test_rematch_reuses_request),
	    cmocka_unit_test(test_empty_table),
	    cmocka_unit_test(test_log_path_masks_secrets),
	};
	return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
