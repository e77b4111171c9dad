/* Unit tests for lib/json.c: bounded parsing, typed getters, the generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* ---- helpers ---- */

/* Parses a NUL-terminated literal with the given limits (NULL = defaults). */
static yajl_val parse_lim(const char *text, const struct json_limits *lim, struct buf *err)
{
	return json_parse(text, strlen(text), lim, err);
}

static yajl_val parse_ok(const char *text)
{
	struct buf err = BUF_INIT;
	yajl_val v = parse_lim(text, NULL, &err);
	if (!v)
		fail_msg("expected %s to parse, got: %s", text, buf_str(&err));
	assert_int_equal(err.len, 0); /* success leaves err untouched */
	buf_free(&err);
	return v;
}

/* Asserts that text is refused and the reason contains want (if not NULL). */
static void assert_refused(const char *text, size_t len, const struct json_limits *lim,
			   const char *want)
{
	struct buf err = BUF_INIT;
	yajl_val v = json_parse(text, len, lim, &err);
	if (v) {
		yajl_tree_free(v);
		fail_msg("expected refusal of %.60s", text);
	}
	assert_true(err.len > 0);		  /* a reason is always given */
	assert_null(strchr(buf_str(&err), '\n')); /* and it is one line */
	if (want && !strstr(buf_str(&err), want))
		fail_msg("reason '%s' does not mention '%s'", buf_str(&err), want);
	buf_free(&err);
}

/* Nested arrays: depth levels of '[' around 1. */
static char *nested(unsigned depth)
{
	char *s = malloc(2 * depth + 2);
	memset(s, '[', depth);
	s[depth] = '1';
	memset(s + depth + 1, ']', depth);
	s[2 * depth + 1] = '\0';
	return s;
}

/* Finishes a generator into a heap string (NULL if jg_finish failed). */
static char *gen_text(struct jgen *g)
{
	struct buf out = BUF_INIT;
	if (jg_finish(g, &out) < 0) {
		buf_free(&out);
		return NULL;
	}
	return buf_detach(&out);
}

/* ---- parsing and limits ---- */

static void test_parse_ok_and_length_bounded(void **state)
{
	/* The text need not be NUL-terminated: only len bytes count. */
	const char text[] = "{\"a\":1}GARBAGE";
	struct buf err = BUF_INIT;
	yajl_val v = json_parse(text, 7, NULL, &err);
	assert_non_null(v);
	assert_true(YAJL_IS_OBJECT(v));
	assert_int_equal(json_int_or(v, "a", -1), 1);
	yajl_tree_free(v);
	buf_free(&err);

	/* err may be NULL for callers that do not care why. */
	assert_null(json_parse("{", 1, NULL, NULL));
}

static void test_limit_size(void **state)
{
	struct json_limits lim = {.max_bytes = 10, .max_depth = 8, .max_string = 100};
	yajl_val v = parse_lim("[1,2,3,45]", &lim, NULL); /* exactly 10 bytes */
	assert_non_null(v);
	yajl_tree_free(v);
	assert_refused("[1,2,3,456]", 11, &lim, "larger than 10 bytes");
	/* The default limit is 1 MiB: one byte more is refused before parsing. */
	size_t big = json_default_limits.max_bytes + 1;
	char *text = malloc(big);
	memset(text, ' ', big);
	text[0] = '1';
	assert_refused(text, big, NULL, "larger than");
	free(text);
}

static void test_limit_depth(void **state)
{
	struct json_limits lim = {.max_bytes = 1000, .max_depth = 3, .max_string = 100};
	yajl_val v = parse_lim("[[{\"a\":1}]]", &lim, NULL); /* 3 levels, objects count */
	assert_non_null(v);
	yajl_tree_free(v);
	assert_refused("[[[[1]]]]", 9, &lim, "nesting deeper than 3");
	assert_refused("{\"a\":{\"b\":{\"c\":{}}}}", 20, &lim, "nesting");
	/* Brackets inside strings are text, not nesting. */
	v = parse_lim("[\"[[[[[[{{{{\"]", &lim, NULL);
	assert_non_null(v);
	yajl_tree_free(v);

	/* Default: 64 levels pass, 65 do not (yajl would recurse much deeper). */
	char *ok = nested(64), *deep = nested(65);
	v = parse_lim(ok, NULL, NULL);
	assert_non_null(v);
	yajl_tree_free(v);
	assert_refused(deep, strlen(deep), NULL, "nesting");
	free(ok);
	free(deep);
}

static void test_limit_string_length(void **state)
{
	struct json_limits lim = {.max_bytes = 1000, .max_depth = 8, .max_string = 5};
	yajl_val v = parse_lim("[\"abcde\"]", &lim, NULL);
	assert_non_null(v);
	yajl_tree_free(v);
	assert_refused("[\"abcdef\"]", 10, &lim, "longer than 5");
	/* Keys are strings too. */
	assert_refused("{\"abcdef\":1}", 12, &lim, "longer than 5");
	/* An escaped quote does not end the string early. */
	assert_refused("[\"ab\\\"cdef\"]", 12, &lim, "longer than 5");
	/* Each string is measured on its own: many short strings are fine. */
	v = parse_lim("[\"abcde\",\"abcde\",\"abcde\"]", &lim, NULL);
	assert_non_null(v);
	yajl_tree_free(v);
}

static void test_comments_refused(void **state)
{
	/* yajl's tree parser would accept these; the contract says refuse. */
	assert_refused("{\"a\":1 /* note */}", 18, NULL, "comment");
	assert_refused("// note\n{}", 10, NULL, "comment");
	assert_refused("[1]//", 5, NULL, "comment");
	/* A slash inside a string is not a comment. */
	yajl_val v = parse_ok("{\"u\":\"http://x/y//z/*w*/\"}");
	assert_string_equal(json_str_or(v, "u", ""), "http://x/y//z/*w*/");
	yajl_tree_free(v);
}

static void test_nul_refused(void **state)
{
	/* Outside a string. */
	assert_refused("[1,\0 2]", 7, NULL, NULL);
	/* Inside a string: yajl would see a truncated document; still refused. */
	assert_refused("[\"a\0b\"]", 7, NULL, NULL);
	/* Trailing NUL counted in len. */
	assert_refused("{}\0", 3, NULL, NULL);
	/* The escaped form: yajl would decode it into a NUL inside the value, and
	 * every C-string view (ids, tokens, names) would be silently cut short:
	 * "gpu-1\u0000junk" would validate as "gpu-1". */
	const char *in_value = "{\"id\":\"gpu-1\\u0000junk\"}";
	const char *in_key = "{\"a\\u0000b\":1}";
	assert_refused(in_value, strlen(in_value), NULL, "\\u0000");
	assert_refused(in_key, strlen(in_key), NULL, "\\u0000");
	/* Other escapes, and a literal backslash followed by u0000, are fine. */
	yajl_val v = parse_ok("[\"\\u0041\\u00e9\\u0001\", \"\\\\u0000\"]");
	assert_string_equal(YAJL_GET_STRING(v->u.array.values[0]), "A\xc3\xa9\x01");
	assert_string_equal(YAJL_GET_STRING(v->u.array.values[1]), "\\u0000");
	yajl_tree_free(v);
}

static void test_malformed_one_line_reason(void **state)
{
	assert_refused("{\"a\":", 5, NULL, NULL);
	assert_refused("{\"a\" 1}", 7, NULL, NULL);
	assert_refused("", 0, NULL, NULL);
	assert_refused("[1,]", 4, NULL, NULL);
	assert_refused("{\"a\":tru}", 9, NULL, NULL);
}

/* ---- getters ---- */

static const char *getters_doc = "{\"s\":\"txt\",\"i\":7,\"neg\":-2,\"f\":3.0,\"h\":3.5,"
				 "\"big\":12345678901234567890,\"e\":1e2,\"b\":false,"
				 "\"o\":{\"k\":1},\"a\":[1],\"n\":null}";

static void test_getters_absent_wrong_ok(void **state)
{
	yajl_val d = parse_ok(getters_doc);
	const char *s = NULL;
	long long i = -1;
	double f = -1;
	bool b = true;
	yajl_val o = NULL;

	assert_int_equal(json_get_str(d, "s", &s), JSON_OK);
	assert_string_equal(s, "txt");
	assert_int_equal(json_get_str(d, "missing", &s), JSON_ABSENT);
	assert_int_equal(json_get_str(d, "n", &s), JSON_ABSENT); /* null is absent */
	assert_int_equal(json_get_str(d, "i", &s), JSON_WRONG_TYPE);
	assert_string_equal(s, "txt"); /* not overwritten on failure */

	assert_int_equal(json_get_int(d, "i", &i), JSON_OK);
	assert_int_equal(i, 7);
	assert_int_equal(json_get_int(d, "neg", &i), JSON_OK);
	assert_int_equal(i, -2);
	assert_int_equal(json_get_int(d, "s", &i), JSON_WRONG_TYPE);
	assert_int_equal(json_get_int(d, "n", &i), JSON_ABSENT);

	assert_int_equal(json_get_num(d, "h", &f), JSON_OK);
	assert_true(f == 3.5);
	assert_int_equal(json_get_num(d, "i", &f), JSON_OK); /* an integer is a number */
	assert_true(f == 7.0);
	assert_int_equal(json_get_num(d, "b", &f), JSON_WRONG_TYPE);
	assert_int_equal(json_get_num(d, "n", &f), JSON_ABSENT);

	assert_int_equal(json_get_bool(d, "b", &b), JSON_OK);
	assert_false(b);
	assert_int_equal(json_get_bool(d, "i", &b), JSON_WRONG_TYPE); /* 7 is not true */
	assert_int_equal(json_get_bool(d, "n", &b), JSON_ABSENT);

	assert_int_equal(json_get_obj(d, "o", &o), JSON_OK);
	assert_true(YAJL_IS_OBJECT(o));
	assert_int_equal(json_get_obj(d, "a", &o), JSON_WRONG_TYPE);
	assert_int_equal(json_get_arr(d, "a", &o), JSON_OK);
	assert_true(YAJL_IS_ARRAY(o));
	assert_int_equal(json_get_arr(d, "o", &o), JSON_WRONG_TYPE);
	assert_int_equal(json_get_arr(d, "n", &o), JSON_ABSENT);
	yajl_tree_free(d);
}

static void test_getters_on_non_objects(void **state)
{
	/* A NULL tree or a non-object gives "absent", never a crash. */
	const char *s;
	assert_null(json_get(NULL, "x"));
	assert_int_equal(json_get_str(NULL, "x", &s), JSON_ABSENT);
	yajl_val arr = parse_ok("[{\"x\":1}]");
	assert_null(json_get(arr, "x"));
	yajl_tree_free(arr);
}

static void test_int_from_doubles(void **state)
{
	yajl_val d = parse_ok(getters_doc);
	long long i = -1;
	assert_int_equal(json_get_int(d, "f", &i), JSON_OK); /* 3.0 is 3 */
	assert_int_equal(i, 3);
	assert_int_equal(json_get_int(d, "e", &i), JSON_OK); /* 1e2 is 100 */
	assert_int_equal(i, 100);
	i = -1;
	assert_int_equal(json_get_int(d, "h", &i), JSON_WRONG_TYPE); /* 3.5 is not */
	assert_int_equal(i, -1);
	/* Beyond 64 bits an integer cannot be represented exactly: refused, not
	 * silently rounded. */
	assert_int_equal(json_get_int(d, "big", &i), JSON_WRONG_TYPE);
	yajl_tree_free(d);
}

static void test_or_fallbacks(void **state)
{
	yajl_val d = parse_ok(getters_doc);
	assert_string_equal(json_str_or(d, "s", "fb"), "txt");
	assert_string_equal(json_str_or(d, "i", "fb"), "fb"); /* wrong type */
	assert_string_equal(json_str_or(d, "n", "fb"), "fb"); /* null */
	assert_null(json_str_or(d, "zz", NULL));
	assert_int_equal(json_int_or(d, "h", 9), 9);
	assert_int_equal(json_int_or(d, "f", 9), 3);
	assert_true(json_num_or(d, "s", 1.25) == 1.25);
	assert_true(json_num_or(d, "h", 1.25) == 3.5);
	assert_true(json_bool_or(d, "i", true));
	assert_false(json_bool_or(d, "b", true));
	assert_int_equal(json_int_or(NULL, "i", 4), 4);
	yajl_tree_free(d);
}

/* ---- generator ---- */

static void test_gen_document(void **state)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "s", "a\"b\n");
	jg_kint(&g, "i", -42);
	jg_knum(&g, "whole", 3.0);
	jg_knum(&g, "half", 0.5);
	jg_knum(&g, "nan", NAN);
	jg_kbool(&g, "t", true);
	jg_key(&g, "nul");
	jg_str(&g, NULL); /* NULL string is JSON null */
	jg_key(&g, "arr");
	jg_arr(&g);
	jg_strn(&g, "xyz", 2);
	jg_null(&g);
	jg_arr_end(&g);
	jg_obj_end(&g);
	char *text = gen_text(&g);
	jg_free(&g);
	assert_non_null(text);
	assert_string_equal(text, "{\"s\":\"a\\\"b\\n\",\"i\":-42,\"whole\":3,\"half\":0.5,"
				  "\"nan\":null,\"t\":true,\"nul\":null,\"arr\":[\"xy\",null]}");
	free(text);
}

static void test_gen_records_first_error(void **state)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_int(&g, 1); /* a number where a key is expected */
	int first = g.err;
	assert_int_equal(first, yajl_gen_keys_must_be_strings);
	/* Later calls are ignored and do not overwrite the first error. */
	jg_obj_end(&g);
	jg_obj_end(&g);
	jg_str(&g, "\xff");
	assert_int_equal(g.err, first);
	struct buf out = BUF_INIT;
	buf_adds(&out, "keep");
	assert_int_equal(jg_finish(&g, &out), -1);
	assert_string_equal(buf_str(&out), "keep"); /* nothing appended on failure */
	buf_free(&out);
	jg_free(&g);
}

static void test_gen_invalid_utf8(void **state)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "name", "bad \xc3\x28 utf8");
	assert_int_equal(g.err, yajl_gen_invalid_string);
	jg_obj_end(&g);
	char *text = gen_text(&g);
	assert_null(text);
	jg_free(&g);

	/* Invalid UTF-8 in a key is caught too. */
	jg_init(&g);
	jg_obj(&g);
	jg_key(&g, "\x80");
	jg_int(&g, 1);
	jg_obj_end(&g);
	assert_null(gen_text(&g));
	jg_free(&g);
}

static void test_gen_second_top_level_value(void **state)
{
	struct jgen g;
	jg_init(&g);
	jg_int(&g, 1);
	jg_int(&g, 2); /* a JSON text has one top-level value */
	assert_int_not_equal(g.err, 0);
	assert_null(gen_text(&g));
	jg_free(&g);
}

static void test_gen_value_round_trip_exact(void **state)
{
	/* jg_value copies numbers as their original text: no rounding of big
	 * integers or of decimals that have no exact binary form. Compact input is
	 * reproduced byte for byte. */
	const char *text = "{\"big\":12345678901234567890,\"dec\":0.1,\"neg\":-7,"
			   "\"exp\":1.5e300,\"s\":\"q\\\"\\\\\",\"u\":\"\xc3\xa9\","
			   "\"a\":[1,true,false,null,{},[]],\"o\":{\"k\":\"v\",\"n\":null}}";
	yajl_val v = parse_ok(text);
	struct jgen g;
	jg_init(&g);
	jg_value(&g, v);
	char *out = gen_text(&g);
	jg_free(&g);
	yajl_tree_free(v);
	assert_non_null(out);
	assert_string_equal(out, text);
	free(out);

	/* NULL copies as null. */
	jg_init(&g);
	jg_value(&g, NULL);
	out = gen_text(&g);
	assert_string_equal(out, "null");
	free(out);
	jg_free(&g);
}

static void test_gen_finish_appends(void **state)
{
	struct jgen g;
	jg_init(&g);
	jg_arr(&g);
	jg_arr_end(&g);
	struct buf out = BUF_INIT;
	buf_adds(&out, "prefix:");
	assert_int_equal(jg_finish(&g, &out), 0);
	assert_string_equal(buf_str(&out), "prefix:[]");
	buf_free(&out);
	jg_free(&g);
	jg_free(&g); /* freeing twice is harmless */
}

/* jg_int formats integers itself: the same text as printf's %lld, extremes included. */
static void test_integers_as_printf_writes_them(void **state)
{
	(void)state;
	const long long values[] = {0, 1, -1, 9, 10, -10, 1795908793306LL, LLONG_MAX, LLONG_MIN};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		struct jgen g;
		struct buf out = BUF_INIT;
		char want[32];
		snprintf(want, sizeof want, "[%lld]", values[i]);
		jg_init(&g);
		jg_arr(&g);
		jg_int(&g, values[i]);
		jg_arr_end(&g);
		assert_int_equal(jg_finish(&g, &out), 0);
		assert_string_equal(buf_str(&out), want);
		buf_free(&out);
		jg_free(&g);
	}
}

static enum json_top top(const char *text, char *out, size_t n)
{
	return json_top_string(text, strlen(text), "status", out, n);
}

static void test_top_string_found_before_the_rest(void **state)
{
	(void)state;
	char v[16];
	assert_int_equal(top("{\"status\":\"READY\",\"setup\":{\"logs\":\"...", v, sizeof v),
			 JSON_TOP_FOUND);
	assert_string_equal(v, "READY");
	/* nested members of the same name are not the top-level one */
	assert_int_equal(top("{\"setup\":{\"status\":\"succeeded\"},\"status\":\"BUSY\"}", v,
			     sizeof v),
			 JSON_TOP_FOUND);
	assert_string_equal(v, "BUSY");
	assert_int_equal(top("{\"a\":[\"status\",{\"status\":1}],\"status\":\"X\"}", v, sizeof v),
			 JSON_TOP_FOUND);
	assert_string_equal(v, "X");
	/* cut to the buffer */
	char small[4];
	assert_int_equal(top("{\"status\":\"STARTING\"}", small, sizeof small), JSON_TOP_FOUND);
	assert_string_equal(small, "STA");
}

static void test_top_string_absent_or_not_an_object(void **state)
{
	(void)state;
	char v[16];
	assert_int_equal(top("{\"setup\":{\"status\":\"succeeded\"}}", v, sizeof v),
			 JSON_TOP_ABSENT);
	assert_int_equal(top("{\"status\":200}", v, sizeof v), JSON_TOP_ABSENT);
	assert_int_equal(top("{\"status\":{\"x\":\"READY\"}}", v, sizeof v), JSON_TOP_ABSENT);
	assert_int_equal(top("{\"setup\":{\"logs\":\"cut here", v, sizeof v), JSON_TOP_ABSENT);
	assert_int_equal(top("[\"status\",\"READY\"]", v, sizeof v), JSON_TOP_NOT_OBJECT);
	assert_int_equal(top("READY", v, sizeof v), JSON_TOP_NOT_OBJECT);
	assert_int_equal(top("", v, sizeof v), JSON_TOP_NOT_OBJECT);
}

/* Repeated names are found at any depth and named by a JSON pointer; distinct
 * names, equal names in different objects, and arrays of objects are fine. */
static void test_duplicate_member(void **state)
{
	static const struct {
		const char *text, *pointer;
	} cases[] = {
	    {"{\"model\":\"m\",\"input\":{},\"model\":\"n\"}", "/model"},
	    {"{\"input\":{\"x\":1,\"y\":2,\"x\":3}}", "/input/x"},
	    {"{\"a\":[{\"k\":1},{\"k\":1,\"k\":2}]}", "/a/1/k"},
	    {"{\"a/b\":1,\"a/b\":2}", "/a~1b"},
	    {"{\"~\":1,\"~\":2}", "/~0"},
	    {"{\"a\":1,\"b\":{\"a\":1},\"c\":[{\"a\":1},{\"a\":2}]}", ""},
	    {"[1,2,{}]", ""},
	    {"{}", ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		yajl_val v = json_parse(cases[i].text, strlen(cases[i].text), NULL, NULL);
		assert_non_null(v);
		char ptr[64] = "junk";
		bool found = json_duplicate_member(v, ptr, sizeof ptr);
		assert_int_equal(found, cases[i].pointer[0] != '\0');
		assert_string_equal(ptr, cases[i].pointer);
		yajl_tree_free(v);
	}
	/* Many members: sorted, not compared pairwise; the repeat is still found. */
	struct buf big = BUF_INIT;
	buf_adds(&big, "{");
	for (int i = 0; i < 20000; i++)
		buf_printf(&big, "\"k%d\":%d,", i, i);
	buf_adds(&big, "\"k777\":0}");
	yajl_val v = json_parse(big.data, big.len, NULL, NULL);
	char ptr[64];
	assert_true(json_duplicate_member(v, ptr, sizeof ptr));
	assert_string_equal(ptr, "/k777");
	yajl_tree_free(v);
	buf_free(&big);
	/* A pointer longer than the buffer is cut, never overrun. */
	v = json_parse("{\"abcdefgh\":1,\"abcdefgh\":1}", 27, NULL, NULL);
	char tiny[5];
	assert_true(json_duplicate_member(v, tiny, sizeof tiny));
	assert_string_equal(tiny, "/abc");
	yajl_tree_free(v);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_integers_as_printf_writes_them),
	    cmocka_unit_test(test_parse_ok_and_length_bounded),
	    cmocka_unit_test(test_limit_size),
	    cmocka_unit_test(test_limit_depth),
	    cmocka_unit_test(test_limit_string_length),
	    cmocka_unit_test(test_comments_refused),
	    cmocka_unit_test(test_nul_refused),
	    cmocka_unit_test(test_malformed_one_line_reason),
	    cmocka_unit_test(test_getters_absent_wrong_ok),
	    cmocka_unit_test(test_getters_on_non_objects),
	    cmocka_unit_test(test_int_from_doubles),
	    cmocka_unit_test(test_or_fallbacks),
	    cmocka_unit_test(test_gen_document),
	    cmocka_unit_test(test_gen_records_first_error),
	    cmocka_unit_test(test_gen_invalid_utf8),
	    cmocka_unit_test(test_gen_second_top_level_value),
	    cmocka_unit_test(test_gen_value_round_trip_exact),
	    cmocka_unit_test(test_gen_finish_appends),
	    cmocka_unit_test(test_top_string_found_before_the_rest),
	    cmocka_unit_test(test_top_string_absent_or_not_an_object),
	    cmocka_unit_test(test_duplicate_member),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
