/* Unit tests for the small modules: lib/util.c (time, randomness, ids, time
 * formatting, growable arrays), lib/strlist.c, lib/verr.c and lib/log.c (one
 * sanitised line per event). secure_equal and sha256_hex are covered in
 * test_auth.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <uuid/uuid.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strlist.h"
#include "base/util.h"
#include "base/verr.h"
#include "testutil.h"

/* ---- util ---- */

static void test_clocks(void **state)
{
	int64_t wall = now_ms();
	assert_true(wall > 1600000000000LL); /* after 2020: milliseconds, not seconds */
	int64_t m0 = mono_ms();
	sleep_ms(30);
	int64_t m1 = mono_ms();
	assert_true(m1 - m0 >= 30);
	assert_true(m1 - m0 < 2000);
	assert_true(now_ms() >= wall);
}

static void test_random_hex(void **state)
{
	char a[2 * 100 + 1], b[2 * 100 + 1];
	memset(a, 'Z', sizeof a);
	random_hex(a, 100); /* more than one internal chunk of 64 bytes */
	assert_int_equal(strlen(a), 200);
	assert_int_equal(strspn(a, "0123456789abcdef"), 200);
	random_hex(b, 100);
	assert_string_not_equal(a, b);
	char one[3];
	random_hex(one, 1);
	assert_int_equal(strlen(one), 2);
	char none[1] = {'x'};
	random_hex(none, 0);
	assert_int_equal(none[0], '\0');
}

static void test_uuid(void **state)
{
	char u[37], v[37];
	uuid_new(u);
	uuid_new(v);
	assert_int_equal(strlen(u), 36);
	assert_string_not_equal(u, v);
	/* xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx, lowercase */
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", u[i]));
	}
	/* Version and variant bits are set on every id, not by luck. */
	for (int i = 0; i < 256; i++) {
		uuid_new(u);
		assert_int_equal(u[14], '4');
		assert_non_null(strchr("89ab", u[19]));
		uuid_t parsed;
		assert_int_equal(uuid_parse(u, parsed), 0);
		assert_int_equal(uuid_type(parsed), UUID_TYPE_DCE_RANDOM);
		assert_int_equal(uuid_variant(parsed), UUID_VARIANT_DCE);
	}
}

static void test_format_time_ms(void **state)
{
	char out[32];
	format_time_ms(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	format_time_ms(1700000000123LL, out);
	assert_string_equal(out, "2023-11-14T22:13:20.123Z");
	format_time_ms(951782400007LL, out); /* leap day 2000 */
	assert_string_equal(out, "2000-02-29T00:00:00.007Z");
}

static int cmp_int_key(const void *key, const void *elem)
{
	int x = *(const int *)key, y = *(const int *)elem;
	return x < y ? -1 : x > y;
}

static void test_arrays(void **state)
{
	int *v = NULL;
	size_t n = 0, cap = 0;
	bool found = true;
	assert_int_equal(array_search(&(int){5}, v, n, sizeof *v, cmp_int_key, &found), 0);
	assert_false(found);
	/* Sorted inserts: each new element lands zeroed where the search says. */
	const int in[] = {30, 10, 20, 40, 0};
	for (size_t i = 0; i < 5; i++) {
		size_t at = array_search(&in[i], v, n, sizeof *v, cmp_int_key, &found);
		assert_false(found);
		v = array_insert(v, &n, &cap, sizeof *v, at, 2);
		assert_int_equal(v[at], 0);
		v[at] = in[i];
	}
	assert_int_equal(n, 5);
	assert_int_equal(cap, 8); /* 2, then doubled */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i], (int)i * 10);
	assert_int_equal(array_search(&(int){20}, v, n, sizeof *v, cmp_int_key, &found), 2);
	assert_true(found);
	assert_int_equal(array_search(&(int){25}, v, n, sizeof *v, cmp_int_key, &found), 3);
	assert_false(found);
	assert_int_equal(array_search(&(int){99}, v, n, sizeof *v, cmp_int_key, &found), 5);
	assert_false(found);
	/* Growth only when full. */
	int *same = array_grow(v, n, &cap, sizeof *v, 2);
	assert_ptr_equal(same, v);
	assert_int_equal(cap, 8);
	free(v);
}

/* ---- strlist ---- */

static void test_strlist(void **state)
{
	struct strlist l = {0};
	assert_false(strlist_has(&l, "a"));
	char src[8] = "sdxl";
	strlist_add(&l, src);
	strlist_add(&l, "llama");
	src[0] = 'X'; /* the list owns copies */
	assert_int_equal(l.n, 2);
	assert_true(strlist_has(&l, "sdxl"));
	assert_true(strlist_has(&l, "llama"));
	assert_false(strlist_has(&l, "sdx"));
	assert_false(strlist_has(&l, "Xdxl"));

	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	strlist_to_json(&l, &g);
	assert_int_equal(jg_finish(&g, &out), 0);
	assert_string_equal(buf_str(&out), "[\"sdxl\",\"llama\"]");
	jg_free(&g);
	buf_free(&out);
	strlist_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	strlist_free(&l); /* twice is harmless */

	/* From JSON: non-strings are skipped, non-arrays ignored. */
	const char *text = "[\"a\",1,null,\"b\",{}]";
	yajl_val arr = json_parse(text, strlen(text), NULL, NULL);
	strlist_from_json(&l, arr);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "a");
	assert_string_equal(l.v[1], "b");
	strlist_from_json(&l, NULL);
	strlist_from_json(&l, arr->u.array.values[1]); /* a number */
	assert_int_equal(l.n, 2);
	yajl_tree_free(arr);
	strlist_free(&l);

	jg_init(&g); /* the empty list is [] */
	strlist_to_json(&l, &g);
	assert_int_equal(jg_finish(&g, &out), 0);
	assert_string_equal(buf_str(&out), "[]");
	jg_free(&g);
	buf_free(&out);
}

/* ---- verr ---- */

static void test_verr(void **state)
{
	struct verr e;
	assert_int_equal(verr_set(&e, "weight", "%s must be %d..%d", "weight", 1, 1000), -1);
	assert_string_equal(e.field, "/weight");
	assert_string_equal(e.msg, "weight must be 1..1000");
	verr_set(&e, NULL, "body");
	assert_string_equal(e.field, "/");
	verr_set(&e, "", "body");
	assert_string_equal(e.field, "/");
	verr_set(&e, "capabilities.maxConcurrent", "x");
	assert_string_equal(e.field, "/capabilities/maxConcurrent");
	/* Overlong input is truncated, never overflows. */
	char big[600];
	memset(big, 'f', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	verr_set(&e, big, "%s", big);
	assert_int_equal(strlen(e.field), sizeof e.field - 1);
	assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
}

/* Unknown members: named by pointer, with a hint one edit away, else the list. */
static void test_verr_known_members(void **state)
{
	static const char *const known[] = {"model", "input", "timeoutSeconds", "maxAttempts",
					    "group"};
	static const struct {
		const char *text, *at, *field, *msg_has;
	} cases[] = {
	    {"{\"model\":\"m\",\"timeoutSecond\":5}", "", "/timeoutSecond",
	     "did you mean 'timeoutSeconds'?"},
	    {"{\"maxAttempt\":1}", "", "/maxAttempt", "did you mean 'maxAttempts'?"},
	    {"{\"modle\":\"m\"}", "", "/modle", "did you mean 'model'?"},  /* swap */
	    {"{\"Model\":\"m\"}", "", "/Model", "did you mean 'model'?"},  /* change */
	    {"{\"inputs\":1}", "", "/inputs", "did you mean 'input'?"},      /* insert */
	    {"{\"grp\":\"a\"}", "", "/grp", "the members are model, input, timeoutSeconds"},
	    {"{\"a/b\":1}", "caps", "/caps/a~1b", "in /caps"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		yajl_val v = json_parse(cases[i].text, strlen(cases[i].text), NULL, NULL);
		struct verr e;
		assert_int_equal(verr_known_members(v, cases[i].at, known, 5, &e), -1);
		assert_string_equal(e.field, cases[i].field);
		if (!strstr(e.msg, cases[i].msg_has))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].msg_has);
		yajl_tree_free(v);
	}
	/* Two edits is no hint; known members, non-objects and NULL pass. */
	yajl_val v = json_parse("{\"grupo\":1}", 11, NULL, NULL);
	struct verr e;
	assert_int_equal(verr_known_members(v, "", known, 5, &e), -1);
	assert_null(strstr(e.msg, "did you mean 'group'"));
	yajl_tree_free(v);
	v = json_parse("{\"model\":1,\"group\":2}", 23, NULL, NULL);
	assert_int_equal(verr_known_members(v, "", known, 5, &e), 0);
	yajl_tree_free(v);
	v = json_parse("[1]", 3, NULL, NULL);
	assert_int_equal(verr_known_members(v, "", known, 5, &e), 0);
	yajl_tree_free(v);
	assert_int_equal(verr_known_members(NULL, "", known, 5, &e), 0);
	(void)state;
}

static void test_verr_opt_int(void **state)
{
	const char *text = "{\"a\":5,\"b\":\"5\",\"c\":11,\"d\":null}";
	yajl_val obj = json_parse(text, strlen(text), NULL, NULL);
	struct verr e;
	int out = -1;
	assert_int_equal(verr_opt_int(obj, "missing", NULL, 0, 10, &out, &e), 0);
	assert_int_equal(verr_opt_int(obj, "d", NULL, 0, 10, &out, &e), 0);
	assert_int_equal(out, -1); /* absent or null: left alone */
	assert_int_equal(verr_opt_int(obj, "a", NULL, 0, 10, &out, &e), 0);
	assert_int_equal(out, 5);
	assert_int_equal(verr_opt_int(obj, "b", NULL, 0, 10, &out, &e), -1);
	assert_string_equal(e.field, "/b");
	assert_string_equal(e.msg, "b must be an integer from 0 to 10");
	assert_int_equal(verr_opt_int(obj, "c", "caps.c", -1, 10, &out, &e), -1);
	assert_string_equal(e.field, "/caps/c");
	assert_string_equal(e.msg, "caps.c must be an integer from -1 to 10");
	assert_int_equal(out, 5);
	yajl_tree_free(obj);
}

/* ---- log ---- */

/* Runs fn with stderr redirected to a file and returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
	char *dir = tu_mkdtemp();
	char path[4096];
	snprintf(path, sizeof path, "%s/err", dir);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	char *text = tu_read_file(path, NULL);
	tu_rmtree(dir);
	free(dir);
	return text;
}

static void log_forgery_attempt(void)
{
	log_set_program("unit");
	log_set_request_id("rid-123");
	/* A client-controlled value with a newline must not start a new log line. */
	log_error("bad id '%s'", "x\n2030-01-01T00:00:00.000Z taskgate[1] info admin ok\r\x1b[31m");
	log_set_request_id(NULL);
	log_warn("no request %d", 7);
	log_set_program("taskgate");
}

static void test_log_lines_are_sanitised(void **state)
{
	char *text = capture_stderr(log_forgery_attempt);
	/* Exactly two lines, one per call. */
	char *nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_non_null(strchr(nl + 1, '\n'));
	assert_int_equal(*(strchr(nl + 1, '\n') + 1), '\0');
	*nl = '\0';
	const char *first = text, *second = nl + 1;
	assert_non_null(strstr(first, " unit["));
	assert_non_null(strstr(first, "] error rid=rid-123 bad id 'x?2030"));
	assert_null(strchr(first, '\r'));
	assert_null(strchr(first, '\x1b'));
	assert_non_null(strstr(second, "] warn no request 7"));
	assert_null(strstr(second, "rid=")); /* cleared */
	free(text);
}

static void test_log_request_id(void **state)
{
	log_set_request_id("abc");
	assert_string_equal(log_request_id(), "abc");
	log_set_request_id("");
	assert_string_equal(log_request_id(), "");
	char long_rid[100];
	memset(long_rid, 'r', 99);
	long_rid[99] = '\0';
	log_set_request_id(long_rid); /* copied and bounded */
	assert_true(strlen(log_request_id()) < 99);
	log_set_request_id(NULL);
}

static void log_while_quiet(void)
{
	log_set_quiet(1);
	log_info("routine news");
	log_warn("something to look at");
	log_set_quiet(0);
	log_info("loud again");
}

static void test_log_quiet_drops_info_only(void **state)
{
	char *text = capture_stderr(log_while_quiet);
	assert_null(strstr(text, "routine news"));
	assert_non_null(strstr(text, "] warn something to look at"));
	assert_non_null(strstr(text, "] info loud again"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clocks),
	    cmocka_unit_test(test_random_hex),
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_format_time_ms),
	    cmocka_unit_test(test_arrays),
	    cmocka_unit_test(test_strlist),
	    cmocka_unit_test(test_verr),
	    cmocka_unit_test(test_verr_opt_int),
	    cmocka_unit_test(test_verr_known_members),
	    cmocka_unit_test(test_log_lines_are_sanitised),
	    cmocka_unit_test(test_log_request_id),
	    cmocka_unit_test(test_log_quiet_drops_info_only),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
