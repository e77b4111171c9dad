/* Unit tests for lib/auth.c (and the comparison primitive in lib/util.c it rests
 * on): Authorization header parsing, token matching against hashed and plain
 * stored forms, and the level a token grants according to config.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/auth.h"
#include "model/config.h"
#include "fs/store.h"
#include "base/util.h"
#include "testutil.h"

#define ADMIN  "admin-token-0123456789abcdef"
#define CLIENT "client-token-0123456789abcdef"

static char *state_dir;

/* config_state_dir() reads STATE_DIR once per process, so the whole group shares
 * one temporary state tree. */
static int group_setup(void **state)
{
	state_dir = tu_mkdtemp();
	setenv("STATE_DIR", state_dir, 1);
	if (strcmp(config_state_dir(), state_dir) != 0)
		return -1;
	return store_init(state_dir);
}

static int group_teardown(void **state)
{
	config_free();
	tu_rmtree(state_dir);
	free(state_dir);
	return 0;
}

/* auth_bearer's result, copied (it points into a static buffer). */
static const char *bearer(const char *header)
{
	static char copy[600];
	const char *t = auth_bearer(header);
	if (!t)
		return NULL;
	snprintf(copy, sizeof copy, "%s", t);
	return copy;
}

/* auth_basic_password's result, copied. */
static const char *basic_password(const char *header)
{
	static char copy[600];
	const char *t = auth_basic_password(header);
	if (!t)
		return NULL;
	snprintf(copy, sizeof copy, "%s", t);
	return copy;
}

#define assert_basic(header, expected)                                           \
	do {                                                                     \
		const char *got_ = basic_password(header);                       \
		if ((expected) == NULL)                                          \
			assert_null(got_);                                       \
		else                                                             \
			assert_string_equal(got_, (const char *)(expected));     \
	} while (0)

/* "Basic " + base64(text), in a static buffer. */
static const char *basic(const char *text)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static char out[2048];
	size_t n = strlen(text), o = 0;
	o += (size_t)snprintf(out, sizeof out, "Basic ");
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)text[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)text[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)text[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static void assert_bearer(const char *header, const char *want)
{
	const char *got = bearer(header);
	if (!want && got)
		fail_msg("'%s' gave token '%s', want none", header, got);
	if (want && (!got || strcmp(got, want) != 0))
		fail_msg("'%s' gave %s, want '%s'", header, got ? got : "none", want);
}

/* ---- secure_equal (util) ---- */

static void test_secure_equal_semantics(void **state)
{
	assert_true(secure_equal("abc", 3, "abc", 3));
	assert_false(secure_equal("abc", 3, "abd", 3));
	assert_false(secure_equal("xbc", 3, "abc", 3)); /* first byte counts too */
	/* Lengths differ: false, even when one is a prefix of the other. */
	assert_false(secure_equal("abc", 3, "abcd", 4));
	assert_false(secure_equal("abcd", 4, "abc", 3));
	assert_true(secure_equal("", 0, "", 0));
	/* Bytes, not C strings: what follows a NUL still counts. */
	assert_false(secure_equal("a\0b", 3, "a\0c", 3));
	assert_true(secure_equal("a\0b", 3, "a\0b", 3));
	/* Only len bytes are compared. */
	assert_true(secure_equal("abcX", 3, "abcY", 3));
}

static void test_sha256_known_vector(void **state)
{
	/* auth_token_matches compares these digests: check the primitive first. */
	char hex[65];
	sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- auth_bearer ---- */

static void test_bearer_parsing(void **state)
{
	assert_bearer("Bearer abc", "abc");
	assert_bearer("bearer abc", "abc"); /* the scheme is case-insensitive */
	assert_bearer("BEARER abc", "abc");
	assert_bearer("  Bearer abc", "abc"); /* leading spaces */
	assert_bearer("Bearer    abc", "abc");
	assert_bearer("Bearer abc  ", "abc"); /* trailing white space is not the token */
	assert_bearer("Bearer abc junk", NULL); /* one word, nothing after it */
	assert_bearer("Bearer abc,def", NULL);	/* ',' is not token68 */
	assert_bearer("Bearer abc\t", "abc");
	assert_bearer("Bearer a.b-c_d~e+f/g=", "a.b-c_d~e+f/g="); /* RFC 6750 charset */
}

static void test_bearer_edge_cases(void **state)
{
	assert_bearer(NULL, NULL);
	assert_bearer("", NULL);
	assert_bearer("Bearer", NULL);
	assert_bearer("Bearer ", NULL);
	assert_bearer("Bearer    ", NULL);
	assert_bearer("Bearerabc", NULL); /* no separator */
	assert_bearer("Token abc", NULL);
	assert_bearer("Digest username=x", NULL);
	assert_bearer("abc", NULL);

	/* 511 characters fit the buffer; 512 are refused rather than truncated (a
	 * truncated token could match a shorter one). */
	char h[600];
	strcpy(h, "Bearer ");
	memset(h + 7, 'k', 511);
	h[7 + 511] = '\0';
	const char *t = bearer(h);
	assert_non_null(t);
	assert_int_equal(strlen(t), 511);
	memset(h + 7, 'k', 512);
	h[7 + 512] = '\0';
	assert_null(bearer(h));
}

static void test_basic_with_token_as_password(void **state)
{
	assert_basic(basic("user:tok"), "tok");
	assert_basic(basic(":tok"), "tok");	  /* no user name */
	assert_basic(basic("u:a:b:c"), "a:b:c"); /* colons belong to the password */
	assert_basic(basic("u:x"), "x");	  /* padding "==" */
	assert_basic(basic("u:xy"), "xy");	  /* padding "=" */
	assert_basic(basic("u:xyz"), "xyz");	  /* no padding */
	char lower[64];
	snprintf(lower, sizeof lower, "basic %s", basic("u:tok") + 6);
	assert_basic(lower, "tok"); /* the scheme is case-insensitive */
	/* Basic is never a Bearer token, and Bearer is never a Basic password. */
	assert_bearer(basic("user:tok"), NULL);
	assert_basic("Bearer tok", NULL);
}

static void test_basic_refusals(void **state)
{
	assert_basic(basic("user"), NULL);  /* no colon */
	assert_basic(basic("user:"), NULL); /* empty password */
	assert_basic("Basic ", NULL);
	assert_basic("Basic !!!!", NULL);	/* not base64 */
	assert_basic("Basic dTp0 b2s=", NULL); /* white space inside the value */
	assert_basic("Basic dTp0b2s", "tok");	/* (unpadded base64 is tolerated) */
	/* A password too long for the buffer is refused, not truncated. */
	char text[700];
	text[0] = 'u';
	text[1] = ':';
	memset(text + 2, 'p', 600);
	text[602] = '\0';
	assert_basic(basic(text), NULL);
}

/* ---- auth_token_matches ---- */

static void test_token_matches_plain(void **state)
{
	assert_true(auth_token_matches("s3cret", "s3cret"));
	assert_false(auth_token_matches("s3cre", "s3cret"));
	assert_false(auth_token_matches("s3cret ", "s3cret"));
	assert_false(auth_token_matches("S3CRET", "s3cret"));
	assert_false(auth_token_matches("", "s3cret"));
	assert_false(auth_token_matches(NULL, "s3cret"));
	/* No stored token means nobody matches, not everybody. */
	assert_false(auth_token_matches("anything", NULL));
	assert_false(auth_token_matches("", ""));
	assert_false(auth_token_matches("x", ""));
}

static void test_token_matches_sha256(void **state)
{
	char hex[65], stored[80];
	sha256_hex("s3cret", 6, hex);
	snprintf(stored, sizeof stored, "sha256:%s", hex);
	assert_true(auth_token_matches("s3cret", stored));
	assert_false(auth_token_matches("s3cre", stored));
	assert_false(auth_token_matches("s3cret\n", stored));
	/* The stored digest is not a password: presenting it must not work, with or
	 * without its prefix. */
	assert_false(auth_token_matches(hex, stored));
	assert_false(auth_token_matches(stored, stored));
	/* Damaged stored digests match nothing. */
	assert_false(auth_token_matches("s3cret", "sha256:"));
	char truncated[80];
	snprintf(truncated, sizeof truncated, "%.*s", (int)strlen(stored) - 1, stored);
	assert_false(auth_token_matches("s3cret", truncated));
	/* A plain stored token that merely looks like a prefix is still plain. */
	assert_true(auth_token_matches("sha256", "sha256"));
}

/* ---- auth_level_of, through config.json ---- */

static void write_config(const char *json)
{
	assert_int_equal(store_put(STORE_ROOT, "config", json, strlen(json)), STORE_OK);
	assert_int_equal(config_refresh(), 0);
}

static void test_level_of_hashed_config(void **state)
{
	/* config_init_tree stores "sha256:" digests, as in production. */
	assert_int_equal(config_init_tree(ADMIN, CLIENT, NULL), 0);
	assert_int_equal(config_refresh(), 0);
	assert_int_equal(auth_level_of(ADMIN), AUTH_ADMIN);
	assert_int_equal(auth_level_of(CLIENT), AUTH_CLIENT);
	assert_int_equal(auth_level_of("nope"), AUTH_NONE);
	assert_int_equal(auth_level_of(""), AUTH_NONE);
	assert_int_equal(auth_level_of(NULL), AUTH_NONE);
	assert_int_equal(auth_level_of(config_str("adminToken", "")), AUTH_NONE);
}

static void test_level_of_plain_and_missing_tokens(void **state)
{
	/* An operator may write plain tokens by hand. */
	write_config("{\"adminToken\":\"plain-admin\",\"clientToken\":\"plain-client\"}");
	assert_int_equal(auth_level_of("plain-admin"), AUTH_ADMIN);
	assert_int_equal(auth_level_of("plain-client"), AUTH_CLIENT);
	assert_int_equal(auth_level_of(ADMIN), AUTH_NONE);

	/* No client token configured: only the admin gets in, and "" is nobody. */
	write_config("{\"adminToken\":\"plain-admin\"}");
	assert_int_equal(auth_level_of("plain-admin"), AUTH_ADMIN);
	assert_int_equal(auth_level_of("plain-client"), AUTH_NONE);
	assert_int_equal(auth_level_of(""), AUTH_NONE);

	/* A token of the wrong JSON type is treated as not configured. */
	write_config("{\"adminToken\":123,\"clientToken\":\"c\"}");
	assert_int_equal(auth_level_of("123"), AUTH_NONE);
	assert_int_equal(auth_level_of("c"), AUTH_CLIENT);

	/* Same token in both places: the higher level wins. */
	write_config("{\"adminToken\":\"same\",\"clientToken\":\"same\"}");
	assert_int_equal(auth_level_of("same"), AUTH_ADMIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secure_equal_semantics),
	    cmocka_unit_test(test_sha256_known_vector),
	    cmocka_unit_test(test_bearer_parsing),
	    cmocka_unit_test(test_bearer_edge_cases),
	    cmocka_unit_test(test_basic_with_token_as_password),
	    cmocka_unit_test(test_basic_refusals),
	    cmocka_unit_test(test_token_matches_plain),
	    cmocka_unit_test(test_token_matches_sha256),
	    cmocka_unit_test(test_level_of_hashed_config),
	    cmocka_unit_test(test_level_of_plain_and_missing_tokens),
	};
	return cmocka_run_group_tests_name("auth", tests, group_setup, group_teardown);
}
