/* Unit tests for net/http_client: the request policy (schemes, redirects, the body
 * cap, timeouts, Retry-After, no Expect), the single request and the batch.
 *
 * A tiny HTTP server forked on 127.0.0.1 answers by path (and holds /hang
 * connections open without a word); the child never calls cmocka and is killed by
 * the group teardown. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "net/http_client.h"

#define BIG_LEN 20000

static pid_t server_pid;
static int server_port;
static int closed_port; /* bound once, then closed: nothing listens there */

static void respond(int c, const char *status, const char *extra, const char *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %s\r\nContent-Type: text/plain\r\n%sContent-Length: "
			 "%zu\r\nConnection: close\r\n\r\n",
			 status, extra, len);
	if (write(c, head, (size_t)n) < 0 || (len && write(c, body, len) < 0))
		return;
}

/* The value of header name in the request head req ("" if absent), into out. */
static void header_value(const char *req, const char *name, char *out, size_t n)
{
	out[0] = '\0';
	size_t len = strlen(name);
	for (const char *p = strstr(req, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, len) == 0 && p[2 + len] == ':') {
			const char *v = p + 3 + len;
			v += strspn(v, " ");
			snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
			return;
		}
	}
}

/* Reads one request: the head, then as much body as Content-Length says. */
static size_t read_request(int c, char *req, size_t cap, const char **body)
{
	size_t got = 0;
	char *end = NULL;
	while (got < cap - 1 && !end) {
		ssize_t n = read(c, req + got, cap - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		end = strstr(req, "\r\n\r\n");
	}
	req[got] = '\0';
	*body = end ? end + 4 : req + got;
	char cl[32];
	header_value(req, "Content-Length", cl, sizeof cl);
	size_t want = (size_t)atol(cl);
	while (end && (size_t)(req + got - *body) < want && got < cap - 1) {
		ssize_t n = read(c, req + got, cap - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
	}
	return end ? (size_t)(req + got - *body) : 0;
}

static void serve(int ls)
{
	static char big[BIG_LEN];
	signal(SIGPIPE, SIG_IGN); /* the client hangs up on /big on purpose */
	memset(big, 'x', sizeof big);
	for (;;) {
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		char req[8192];
		const char *body;
		size_t body_len = read_request(c, req, sizeof req, &body);
		char method[16] = "", path[256] = "";
		sscanf(req, "%15s %255s", method, path);
		if (strcmp(path, "/hang") == 0)
			continue; /* the descriptor stays open, the client hears nothing */
		if (strcmp(path, "/ok") == 0) {
			respond(c, "200 OK", "", "hello", 5);
		} else if (strcmp(path, "/echo") == 0) {
			char x[64], ua[64], expect[64], out[8192];
			header_value(req, "X-Test", x, sizeof x);
			header_value(req, "User-Agent", ua, sizeof ua);
			header_value(req, "Expect", expect, sizeof expect);
			int n = snprintf(out, sizeof out, "%s|%s|%s|%s|%.*s", method, x, ua, expect,
					 (int)body_len, body);
			respond(c, "200 OK", "", out, (size_t)n);
		} else if (strcmp(path, "/big") == 0) {
			respond(c, "200 OK", "", big, sizeof big);
		} else if (strcmp(path, "/redirect") == 0) {
			respond(c, "302 Found", "Location: /ok\r\n", "", 0);
		} else if (strcmp(path, "/retry") == 0) {
			respond(c, "429 Too Many Requests", "Retry-After: 7\r\n", "", 0);
		} else if (strcmp(path, "/retry-absurd") == 0) {
			respond(c, "503 Service Unavailable", "Retry-After: 99999\r\n", "", 0);
		} else {
			respond(c, "404 Not Found", "", "", 0);
		}
		close(c);
	}
}

static int listen_any(int *port)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0)
		return -1;
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 512) != 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &len) != 0) {
		close(ls);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return ls;
}

static int group_setup(void **state)
{
	(void)state;
	int ls = listen_any(&server_port);
	int spare = listen_any(&closed_port);
	if (ls < 0 || spare < 0)
		return -1;
	close(spare);
	server_pid = fork();
	if (server_pid < 0)
		return -1;
	if (server_pid == 0) {
		serve(ls);
		_exit(0);
	}
	close(ls);
	return http_client_init();
}

static int group_teardown(void **state)
{
	(void)state;
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
	http_client_cleanup();
	return 0;
}

/* A URL on the test server; the last eight returned stay valid. */
static const char *url(const char *path)
{
	static char u[8][128];
	static int next;
	char *s = u[next++ % 8];
	snprintf(s, sizeof u[0], "http://127.0.0.1:%d%s", server_port, path);
	return s;
}

static void test_get(void **state)
{
	(void)state;
	struct http_request rq = {.url = url("/ok"), .timeout_ms = 2000};
	struct http_result res;
	int64_t before = now_ms();
	assert_int_equal(http_request_send(&rq, &res), 200);
	assert_int_equal(res.status, 200);
	assert_string_equal(buf_str(&res.body), "hello");
	assert_string_equal(res.error, "");
	assert_false(res.timed_out);
	assert_false(res.too_big);
	assert_true(res.elapsed_ms >= 0);
	assert_true(res.done_at_ms >= before);
	http_result_free(&res);
}

static void test_method_headers_body(void **state)
{
	(void)state;
	const char *headers[] = {"X-Test: seven", NULL};
	/* Over 1 KiB: libcurl would otherwise ask "Expect: 100-continue" first. */
	char body[2000];
	memset(body, 'b', sizeof body);
	struct http_request rq = {.method = "PUT",
				  .url = url("/echo"),
				  .headers = headers,
				  .body = body,
				  .body_len = sizeof body,
				  .timeout_ms = 2000};
	struct http_result res;
	assert_int_equal(http_request_send(&rq, &res), 200);
	char want[2100];
	snprintf(want, sizeof want, "PUT|seven|%s||%.*s", HTTP_USER_AGENT, (int)sizeof body, body);
	assert_string_equal(buf_str(&res.body), want);
	http_result_free(&res);

	struct http_request named = {.url = url("/echo"), .timeout_ms = 2000,
				     .user_agent = "probe/2"};
	assert_int_equal(http_request_send(&named, &res), 200);
	assert_string_equal(buf_str(&res.body), "GET||probe/2||");
	http_result_free(&res);
}

static void test_redirect_is_the_answer(void **state)
{
	(void)state;
	struct http_request rq = {.url = url("/redirect"), .timeout_ms = 2000};
	struct http_result res;
	assert_int_equal(http_request_send(&rq, &res), 302);
	assert_string_equal(buf_str(&res.body), "");
	http_result_free(&res);
}

static void test_body_cap(void **state)
{
	(void)state;
	struct http_request rq = {.url = url("/big"), .timeout_ms = 2000, .max_body = 16384};
	struct http_result res;
	assert_int_equal(http_request_send(&rq, &res), 0);
	assert_true(res.too_big);
	assert_string_equal(res.error, "response larger than 16384 bytes");
	http_result_free(&res);

	rq.max_body = 0; /* the default cap, far above */
	assert_int_equal(http_request_send(&rq, &res), 200);
	assert_int_equal(res.body.len, BIG_LEN);
	assert_false(res.too_big);
	http_result_free(&res);
}

static void test_retry_after(void **state)
{
	(void)state;
	struct http_request rq = {.url = url("/retry"), .timeout_ms = 2000};
	struct http_result res;
	assert_int_equal(http_request_send(&rq, &res), 429);
	assert_int_equal(res.retry_after_s, 7);
	http_result_free(&res);

	rq.url = url("/retry-absurd");
	assert_int_equal(http_request_send(&rq, &res), 503);
	assert_int_equal(res.retry_after_s, 0);
	http_result_free(&res);
}

static void test_only_http_and_https(void **state)
{
	(void)state;
	const char *refused[] = {"file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1/",
				 "dict://127.0.0.1/"};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct http_request rq = {.url = refused[i], .timeout_ms = 1000};
		struct http_result res;
		assert_int_equal(http_request_send(&rq, &res), 0);
		if (!res.error[0])
			fail_msg("%s: no error text", refused[i]);
		assert_int_equal(res.body.len, 0);
		http_result_free(&res);
	}
}

static void test_timeout_and_refusal(void **state)
{
	(void)state;
	struct http_request rq = {.url = url("/hang"), .timeout_ms = 300};
	struct http_result res;
	int64_t t0 = mono_ms();
	assert_int_equal(http_request_send(&rq, &res), 0);
	int64_t took = mono_ms() - t0;
	assert_true(res.timed_out);
	assert_true(res.error[0] != '\0');
	assert_true(took >= 250 && took < 3000);
	http_result_free(&res);

	char refused[64];
	snprintf(refused, sizeof refused, "http://127.0.0.1:%d/", closed_port);
	struct http_request nobody = {.url = refused, .timeout_ms = 1000};
	assert_int_equal(http_request_send(&nobody, &res), 0);
	assert_false(res.timed_out);
	assert_true(res.error[0] != '\0');
	http_result_free(&res);
}

static void test_batch(void **state)
{
	(void)state;
	enum { N = 24 };
	struct http_request rq[N];
	struct http_result res[N];
	const char *urls[3] = {url("/hang"), url("/ok"), url("/big")};
	for (int i = 0; i < N; i++) {
		rq[i] = (struct http_request){.url = urls[i % 3],
					      .timeout_ms = 400,
					      .max_body = i % 3 == 2 ? 100 : 0,
					      .fresh_connection = true};
	}
	int64_t t0 = mono_ms();
	http_batch_send(rq, res, N, 0);
	int64_t took = mono_ms() - t0;
	/* Eight hanging requests at once take one timeout, not eight. */
	if (took >= 8 * 400 / 2)
		fail_msg("the batch took %lld ms", (long long)took);
	for (int i = 0; i < N; i++) {
		if (i % 3 == 0) {
			assert_int_equal(res[i].status, 0);
			assert_true(res[i].timed_out);
		} else if (i % 3 == 1) {
			assert_int_equal(res[i].status, 200);
			assert_string_equal(buf_str(&res[i].body), "hello");
		} else {
			assert_int_equal(res[i].status, 0);
			assert_true(res[i].too_big);
		}
		assert_true(res[i].done_at_ms > 0);
		http_result_free(&res[i]);
	}
}

static void test_batch_bounded_parallelism(void **state)
{
	(void)state;
	enum { N = 4 };
	struct http_request rq[N];
	struct http_result res[N];
	for (int i = 0; i < N; i++)
		rq[i] = (struct http_request){.url = url("/hang"), .timeout_ms = 200};
	int64_t t0 = mono_ms();
	http_batch_send(rq, res, N, 2); /* two at a time: two timeouts in a row */
	int64_t took = mono_ms() - t0;
	if (took < 350)
		fail_msg("four hanging requests two at a time took only %lld ms", (long long)took);
	for (int i = 0; i < N; i++) {
		assert_true(res[i].timed_out);
		http_result_free(&res[i]);
	}
	http_batch_send(rq, res, 0, 0); /* nothing to do: returns at once */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_method_headers_body),
	    cmocka_unit_test(test_redirect_is_the_answer),
	    cmocka_unit_test(test_body_cap),
	    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_only_http_and_https),
	    cmocka_unit_test(test_timeout_and_refusal),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_batch_bounded_parallelism),
	};
	return cmocka_run_group_tests_name("http_client", tests, group_setup, group_teardown);
}
