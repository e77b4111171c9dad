/* Unit tests for lib/http.c: query parsing, reading a request through a struct
 * http_io (the real API: a fake transport with an environment array and a body
 * source, no mock of our own code), problem+json and response serialisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/http.h"

/* ---- a fake transport ---- */

struct fake_io {
	char *env[32]; /* "NAME=value" strings, NULL-terminated */
	int nenv;
	const char *body; /* what the client sends */
	size_t body_len, pos;
	size_t chunk; /* at most this many bytes per read (0 = all) */
	int reads;    /* read calls made */
	bool read_error;
	struct buf written;
	struct http_io io;
};

static ssize_t fake_read(void *ctx, char *dst, size_t n)
{
	struct fake_io *f = ctx;
	f->reads++;
	if (f->read_error)
		return -1;
	size_t left = f->body_len - f->pos;
	if (n > left)
		n = left;
	if (f->chunk && n > f->chunk)
		n = f->chunk;
	memcpy(dst, f->body + f->pos, n);
	f->pos += n;
	return (ssize_t)n;
}

static int fake_write(void *ctx, const char *src, size_t n)
{
	struct fake_io *f = ctx;
	buf_add(&f->written, src, n);
	return 0;
}

static void fake_init(struct fake_io *f)
{
	memset(f, 0, sizeof *f);
	f->io.read = fake_read;
	f->io.write = fake_write;
	f->io.ctx = f;
	f->io.envp = f->env;
}

static void fake_env(struct fake_io *f, const char *name, const char *value)
{
	assert_true(f->nenv < 31);
	size_t n = strlen(name) + strlen(value) + 2;
	f->env[f->nenv] = malloc(n);
	snprintf(f->env[f->nenv], n, "%s=%s", name, value);
	f->nenv++;
}

static void fake_body(struct fake_io *f, const char *body)
{
	f->body = body;
	f->body_len = strlen(body);
}

static void fake_free(struct fake_io *f)
{
	for (int i = 0; i < f->nenv; i++)
		free(f->env[i]);
	buf_free(&f->written);
}

/* A request with only a query string set, for http_query. */
static struct http_req with_query(const char *text)
{
	struct http_req rq;
	memset(&rq, 0, sizeof rq);
	rq.query = (char *)(uintptr_t)text; /* http_query only reads it */
	return rq;
}

/* http_query into a 64-byte buffer; returns the value or NULL when false. */
static const char *q(const char *query, const char *name)
{
	static char out[64];
	struct http_req rq = with_query(query);
	return http_query(&rq, name, out, sizeof out) ? out : NULL;
}

/* ---- http_query ---- */

static void test_query_basic(void **state)
{
	const char *qs = "a=1&b=two&c=&flag&e=x=y";
	assert_string_equal(q(qs, "a"), "1");
	assert_string_equal(q(qs, "b"), "two");
	assert_string_equal(q(qs, "c"), "");	/* present, empty */
	assert_string_equal(q(qs, "flag"), ""); /* present without '=' */
	assert_string_equal(q(qs, "e"), "x=y"); /* only the first '=' separates */
	assert_null(q(qs, "d"));		/* missing */
	assert_null(q("", "a"));
	assert_null(q("&&&", "a"));
	struct http_req rq = with_query(NULL);
	char out[8];
	assert_false(http_query(&rq, "a", out, sizeof out)); /* no query at all */
}

static void test_query_names_match_exactly(void **state)
{
	assert_null(q("ab=1", "a")); /* a prefix is not the name */
	assert_null(q("a=1", "ab"));
	assert_string_equal(q("ab=1&a=2", "a"), "2");
	assert_string_equal(q("a=1&a=2", "a"), "1"); /* the first value wins */
	assert_string_equal(q("&&a=3&", "a"), "3");  /* empty segments skipped */
	assert_null(q("A=1", "a"));		     /* names are case-sensitive */
}

static void test_query_percent_decoding(void **state)
{
	assert_string_equal(q("q=hello%20world%21", "q"), "hello world!");
	assert_string_equal(q("q=a+b+c", "q"), "a b c");     /* form encoding */
	assert_string_equal(q("q=%2B1", "q"), "+1");	     /* an encoded '+' stays '+' */
	assert_string_equal(q("q=%c3%A9", "q"), "\xc3\xa9"); /* either hex case */
	assert_string_equal(q("q=%26amp%3D", "q"), "&amp="); /* no second decoding */
	assert_string_equal(q("q=%2541", "q"), "%41");
}

static void test_query_bad_escapes(void **state)
{
	assert_null(q("q=%zz", "q"));
	assert_null(q("q=%4", "q")); /* truncated at the end */
	assert_null(q("q=%", "q"));
	assert_null(q("q=%4g", "q"));
	assert_null(q("q=ab%4&x=1", "q")); /* truncated before '&' */
	assert_null(q("q=%00", "q"));	   /* NUL would cut the C string */
	/* A bad escape elsewhere does not affect other parameters. */
	assert_string_equal(q("x=%zz&q=ok", "q"), "ok");
}

static void test_query_too_long_for_out(void **state)
{
	char out[4];
	struct http_req rq = with_query("a=abc&b=abcd&c=%41%42%43&d=%41%42%43%44");
	assert_true(http_query(&rq, "a", out, sizeof out)); /* 3 chars + NUL fit */
	assert_string_equal(out, "abc");
	assert_false(http_query(&rq, "b", out, sizeof out));
	assert_true(http_query(&rq, "c", out, sizeof out)); /* decoded length counts */
	assert_string_equal(out, "ABC");
	assert_false(http_query(&rq, "d", out, sizeof out));
	char one[1];
	assert_false(http_query(&rq, "a", one, sizeof one));
}

/* ---- http_req_read ---- */

static void test_req_read_full_request(void **state)
{
	struct fake_io f;
	fake_init(&f);
	fake_env(&f, "REQUEST_METHOD", "POST");
	fake_env(&f, "REQUEST_URI", "/api/v2/servers?x=1&y=%20");
	fake_env(&f, "CONTENT_LENGTH", "11");
	fake_env(&f, "CONTENT_TYPE", "application/json");
	fake_env(&f, "HTTP_AUTHORIZATION", "Bearer abc");
	fake_env(&f, "HTTP_IDEMPOTENCY_KEY", "k-1");
	fake_env(&f, "HTTP_PREFER", "wait=5");
	fake_env(&f, "REMOTE_ADDR", "10.0.0.1");
	fake_env(&f, "HTTPS", "on");
	fake_env(&f, "HTTP_HOSTNAME", "evil"); /* a longer name must not match HTTP_HOST */
	fake_env(&f, "HTTP_HOST", "gw.example");
	fake_body(&f, "{\"a\":true}\nEXTRA"); /* bytes past CONTENT_LENGTH stay unread */
	f.body_len = 11;

	struct http_req rq;
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 0);
	assert_string_equal(rq.method, "POST");
	assert_string_equal(rq.uri, "/api/v2/servers?x=1&y=%20");
	assert_string_equal(rq.path, "/api/v2/servers");
	assert_string_equal(rq.query, "x=1&y=%20");
	assert_string_equal(rq.content_type, "application/json");
	assert_string_equal(rq.authorization, "Bearer abc");
	assert_string_equal(rq.idempotency_key, "k-1");
	assert_string_equal(rq.prefer, "wait=5");
	assert_string_equal(rq.remote_addr, "10.0.0.1");
	assert_string_equal(rq.https, "on");
	assert_string_equal(rq.host, "gw.example");
	assert_int_equal(rq.body.len, 11);
	assert_string_equal(buf_str(&rq.body), "{\"a\":true}\n");
	assert_string_equal(rq.request_id, ""); /* none sent */
	http_req_free(&rq);
	fake_free(&f);
}

static void test_req_read_defaults(void **state)
{
	/* An empty environment still yields a usable request. */
	struct fake_io f;
	fake_init(&f);
	fake_body(&f, "ignored");
	struct http_req rq;
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 0);
	assert_string_equal(rq.method, "GET");
	assert_string_equal(rq.uri, "/");
	assert_string_equal(rq.path, "/");
	assert_string_equal(rq.query, "");
	assert_null(rq.authorization);
	assert_null(rq.content_type);
	assert_int_equal(rq.body.len, 0);
	assert_string_equal(buf_str(&rq.body), "");
	assert_int_equal(f.reads, 0); /* no CONTENT_LENGTH: nothing read */
	http_req_free(&rq);

	/* A bare '?' gives an empty query, a path without one likewise. */
	fake_env(&f, "REQUEST_URI", "/x?");
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 0);
	assert_string_equal(rq.path, "/x");
	assert_string_equal(rq.query, "");
	http_req_free(&rq);
	fake_free(&f);
}

static void test_req_read_body_in_pieces(void **state)
{
	/* FastCGI delivers the body in records: short reads must be looped over. */
	struct fake_io f;
	fake_init(&f);
	fake_env(&f, "CONTENT_LENGTH", "26");
	fake_body(&f, "abcdefghijklmnopqrstuvwxyz");
	f.chunk = 3;
	struct http_req rq;
	assert_int_equal(http_req_read(&rq, &f.io, 26), 0); /* exactly the limit is fine */
	assert_string_equal(buf_str(&rq.body), "abcdefghijklmnopqrstuvwxyz");
	assert_int_equal(f.reads, 9);
	http_req_free(&rq);
	fake_free(&f);
}

static void test_req_read_413_without_reading(void **state)
{
	struct fake_io f;
	fake_init(&f);
	fake_env(&f, "REQUEST_URI", "/api/v2/tasks");
	fake_env(&f, "CONTENT_LENGTH", "1025");
	fake_body(&f, "x");
	struct http_req rq;
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 413);
	/* The announced size alone decides: not one byte is read (or allocated for). */
	assert_int_equal(f.reads, 0);
	assert_int_equal(rq.body.cap, 0);
	assert_string_equal(rq.path, "/api/v2/tasks"); /* still usable for the answer */
	http_req_free(&rq);
	fake_free(&f);

	/* A huge announcement is 413, not an allocation attempt. */
	fake_init(&f);
	fake_env(&f, "CONTENT_LENGTH", "9223372036854775807");
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 413);
	assert_int_equal(f.reads, 0);
	http_req_free(&rq);
	fake_free(&f);
}

static void test_req_read_short_body_is_400(void **state)
{
	struct fake_io f;
	fake_init(&f);
	fake_env(&f, "CONTENT_LENGTH", "10");
	fake_body(&f, "abcd"); /* then end of stream */
	struct http_req rq;
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 400);
	http_req_free(&rq);
	fake_free(&f);

	/* A transport error is the same answer. */
	fake_init(&f);
	fake_env(&f, "CONTENT_LENGTH", "10");
	f.read_error = true;
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 400);
	http_req_free(&rq);
	fake_free(&f);
}

static void test_req_read_bad_content_length(void **state)
{
	const char *bad[] = {"abc", "-1", "5x", "99999999999999999999999", "1.5"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct fake_io f;
		fake_init(&f);
		fake_env(&f, "CONTENT_LENGTH", bad[i]);
		fake_body(&f, "12345");
		struct http_req rq;
		int rc = http_req_read(&rq, &f.io, 1024);
		if (rc != 400)
			fail_msg("CONTENT_LENGTH '%s' gave %d, want 400", bad[i], rc);
		assert_int_equal(f.reads, 0);
		http_req_free(&rq);
		fake_free(&f);
	}
	/* An empty CONTENT_LENGTH means no body. */
	struct fake_io f;
	fake_init(&f);
	fake_env(&f, "CONTENT_LENGTH", "");
	struct http_req rq;
	assert_int_equal(http_req_read(&rq, &f.io, 1024), 0);
	assert_int_equal(rq.body.len, 0);
	http_req_free(&rq);
	fake_free(&f);
}

static void test_req_read_authorization_sources(void **state)
{
	struct fake_io f;
	struct http_req rq;
	/* Apache behind a rewrite rule only passes REDIRECT_HTTP_AUTHORIZATION. */
	fake_init(&f);
	fake_env(&f, "REDIRECT_HTTP_AUTHORIZATION", "Bearer from-redirect");
	assert_int_equal(http_req_read(&rq, &f.io, 0), 0);
	assert_string_equal(rq.authorization, "Bearer from-redirect");
	http_req_free(&rq);
	fake_free(&f);

	/* When both are there the direct header wins, whatever the order. */
	fake_init(&f);
	fake_env(&f, "REDIRECT_HTTP_AUTHORIZATION", "Bearer from-redirect");
	fake_env(&f, "HTTP_AUTHORIZATION", "Bearer direct");
	assert_int_equal(http_req_read(&rq, &f.io, 0), 0);
	assert_string_equal(rq.authorization, "Bearer direct");
	http_req_free(&rq);
	fake_free(&f);
}

/* The request id http_req_read keeps for a given X-Request-Id header. */
static void assert_request_id(const char *sent, const char *kept)
{
	struct fake_io f;
	fake_init(&f);
	fake_env(&f, "HTTP_X_REQUEST_ID", sent);
	struct http_req rq;
	assert_int_equal(http_req_read(&rq, &f.io, 0), 0);
	if (strcmp(rq.request_id, kept) != 0)
		fail_msg("X-Request-Id '%s' kept as '%s', want '%s'", sent, rq.request_id, kept);
	http_req_free(&rq);
	fake_free(&f);
}

static void test_req_read_request_id_only_when_safe(void **state)
{
	char max[40], over[41];
	memset(max, 'a', 39);
	max[39] = '\0';
	memset(over, 'a', 40);
	over[40] = '\0';
	assert_request_id("abc-DEF_123", "abc-DEF_123");
	assert_request_id(max, max); /* 39 characters fit */
	/* It goes into every log line: anything that could forge or break a line,
	 * or be truncated, is dropped rather than cleaned. */
	assert_request_id(over, "");
	assert_request_id("", "");
	assert_request_id("a b", "");
	assert_request_id("a\nrid=forged", "");
	assert_request_id("a\"b", "");
	assert_request_id("a.b", "");
	assert_request_id("\xc3\xa9", "");
}

/* ---- responses ---- */

static yajl_val parse_body(const struct http_resp *rs)
{
	assert_true(rs->body.len > 0);
	assert_int_equal(rs->body.data[rs->body.len - 1], '\n'); /* ends with a newline */
	yajl_val v = json_parse(rs->body.data, rs->body.len, NULL, NULL);
	assert_non_null(v);
	return v;
}

static void test_problem_json(void **state)
{
	struct http_resp rs;
	http_resp_init(&rs);
	assert_int_equal(rs.status, 200);
	assert_int_equal(http_problem(&rs, 422, "endpoints.predict", "bad \"%s\"\n%d", "url", 7),
			 422);
	assert_int_equal(rs.status, 422);
	assert_string_equal(rs.content_type, "application/problem+json");
	yajl_val v = parse_body(&rs);
	assert_string_equal(json_str_or(v, "type", ""), "about:blank");
	assert_string_equal(json_str_or(v, "title", ""), "Unprocessable Content");
	assert_int_equal(json_int_or(v, "status", 0), 422);
	assert_string_equal(json_str_or(v, "detail", ""), "bad \"url\"\n7"); /* escaped */
	assert_string_equal(json_str_or(v, "field", ""), "endpoints.predict");
	yajl_tree_free(v);

	/* Without a field there is no "field" member; the body is replaced. */
	http_problem(&rs, 404, NULL, "no server %s", "x");
	v = parse_body(&rs);
	assert_null(json_get(v, "field"));
	assert_string_equal(json_str_or(v, "title", ""), "Not Found");
	assert_string_equal(json_str_or(v, "detail", ""), "no server x");
	yajl_tree_free(v);
	http_resp_free(&rs);
}

static void test_problem_with_invalid_utf8_detail(void **state)
{
	/* detail may quote client bytes; the answer must still be valid JSON. */
	struct http_resp rs;
	http_resp_init(&rs);
	http_problem(&rs, 400, "name", "bad name '%s'", "\xff\xfe");
	yajl_val v = parse_body(&rs);
	assert_int_equal(json_int_or(v, "status", 0), 400);
	assert_null(strstr(buf_str(&rs.body), "\xff"));
	assert_true(strlen(json_str_or(v, "detail", "")) > 0);
	yajl_tree_free(v);
	http_resp_free(&rs);
}

static void test_http_json(void **state)
{
	struct http_resp rs;
	http_resp_init(&rs);
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kint(&g, "n", 1);
	jg_obj_end(&g);
	assert_int_equal(http_json(&rs, 201, &g), 201);
	jg_free(&g);
	assert_int_equal(rs.status, 201);
	assert_string_equal(rs.content_type, "application/json");
	assert_string_equal(buf_str(&rs.body), "{\"n\":1}\n");

	/* A failed generator becomes a 500 problem, not a half document. */
	jg_init(&g);
	jg_obj(&g);
	jg_int(&g, 1);
	assert_int_equal(http_json(&rs, 200, &g), 500);
	jg_free(&g);
	assert_int_equal(rs.status, 500);
	assert_string_equal(rs.content_type, "application/problem+json");
	yajl_val v = parse_body(&rs);
	assert_int_equal(json_int_or(v, "status", 0), 500);
	yajl_tree_free(v);
	http_resp_free(&rs);
}

static void test_resp_send(void **state)
{
	struct fake_io f;
	fake_init(&f);
	struct http_resp rs;
	http_resp_init(&rs);
	rs.status = 201;
	buf_adds(&rs.body, "{}\n");
	http_header(&rs, "Location", "/api/v2/servers/%s", "gpu-1");
	http_header(&rs, "Retry-After", "%d", 2);
	assert_int_equal(http_resp_send(&rs, &f.io), 0);
	assert_string_equal(buf_str(&f.written), "Status: 201 Created\r\n"
						 "Content-Type: application/json\r\n"
						 "Content-Length: 3\r\n"
						 "Location: /api/v2/servers/gpu-1\r\n"
						 "Retry-After: 2\r\n"
						 "\r\n"
						 "{}\n");
	http_resp_free(&rs);
	buf_reset(&f.written);

	/* A 200 never carries Location (Apache's CGI handlers would redirect): it is
	 * sent as Content-Location; other headers and a 202's Location are untouched. */
	http_resp_init(&rs);
	rs.status = 200;
	buf_adds(&rs.body, "{}\n");
	http_header(&rs, "X-Request-Id", "%s", "abc");
	http_header(&rs, "Location", "/api/v2/tasks/%s", "t-1");
	http_header(&rs, "Content-Location", "%s", "/x");
	assert_int_equal(http_resp_send(&rs, &f.io), 0);
	assert_string_equal(buf_str(&f.written), "Status: 200 OK\r\n"
						 "Content-Type: application/json\r\n"
						 "Content-Length: 3\r\n"
						 "X-Request-Id: abc\r\n"
						 "Content-Location: /api/v2/tasks/t-1\r\n"
						 "Content-Location: /x\r\n"
						 "\r\n"
						 "{}\n");
	http_resp_free(&rs);
	buf_reset(&f.written);
	http_resp_init(&rs);
	rs.status = 202;
	http_header(&rs, "Location", "/api/v2/tasks/%s", "t-1");
	assert_int_equal(http_resp_send(&rs, &f.io), 0);
	assert_non_null(strstr(buf_str(&f.written), "\r\nLocation: /api/v2/tasks/t-1\r\n"));
	http_resp_free(&rs);
	buf_reset(&f.written);

	/* 204 has neither a body nor its headers, even if a body was left behind. */
	http_resp_init(&rs);
	rs.status = 204;
	buf_adds(&rs.body, "leftover");
	assert_int_equal(http_resp_send(&rs, &f.io), 0);
	assert_string_equal(buf_str(&f.written), "Status: 204 No Content\r\n\r\n");
	http_resp_free(&rs);
	fake_free(&f);
}

static void test_status_text(void **state)
{
	assert_string_equal(http_status_text(200), "OK");
	assert_string_equal(http_status_text(405), "Method Not Allowed");
	assert_string_equal(http_status_text(413), "Content Too Large");
	assert_string_equal(http_status_text(503), "Service Unavailable");
	assert_string_equal(http_status_text(799), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_basic),
	    cmocka_unit_test(test_query_names_match_exactly),
	    cmocka_unit_test(test_query_percent_decoding),
	    cmocka_unit_test(test_query_bad_escapes),
	    cmocka_unit_test(test_query_too_long_for_out),
	    cmocka_unit_test(test_req_read_full_request),
	    cmocka_unit_test(test_req_read_defaults),
	    cmocka_unit_test(test_req_read_body_in_pieces),
	    cmocka_unit_test(test_req_read_413_without_reading),
	    cmocka_unit_test(test_req_read_short_body_is_400),
	    cmocka_unit_test(test_req_read_bad_content_length),
	    cmocka_unit_test(test_req_read_authorization_sources),
	    cmocka_unit_test(test_req_read_request_id_only_when_safe),
	    cmocka_unit_test(test_problem_json),
	    cmocka_unit_test(test_problem_with_invalid_utf8_detail),
	    cmocka_unit_test(test_http_json),
	    cmocka_unit_test(test_resp_send),
	    cmocka_unit_test(test_status_text),
	};
	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
