/* Unit tests for lib/config.c: the state tree's config.json, created with hashed
 * tokens, re-read when it changes, and read through clamped accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/config.h"
#include "fs/store.h"
#include "base/util.h"
#include "testutil.h"

static char *state_dir;

/* config_state_dir() reads STATE_DIR once per process: one directory for the
 * group, emptied before every test. */
static int group_setup(void **state)
{
	state_dir = tu_mkdtemp();
	setenv("STATE_DIR", state_dir, 1);
	return strcmp(config_state_dir(), state_dir) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	config_free();
	tu_rmtree(state_dir);
	free(state_dir);
	return 0;
}

static int setup(void **state)
{
	config_free();
	tu_rmtree(state_dir);
	return store_init(state_dir);
}

static char *config_path(void)
{
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/config.json", state_dir);
	return p;
}

/* Replaces config.json the way an operator's editor or store_put does. */
static void write_config(const char *json)
{
	assert_int_equal(store_put(STORE_ROOT, "config", json, strlen(json)), STORE_OK);
}

static void expect_digest(const char *key, const char *token)
{
	char hex[65], want[80];
	sha256_hex(token, strlen(token), hex);
	snprintf(want, sizeof want, "sha256:%s", hex);
	assert_string_equal(config_str(key, ""), want);
}

static void test_state_dir_from_environment(void **state)
{
	assert_string_equal(config_state_dir(), state_dir);
	/* Read once: later changes to the environment do not move the tree. */
	setenv("STATE_DIR", "/elsewhere", 1);
	assert_string_equal(config_state_dir(), state_dir);
	setenv("STATE_DIR", state_dir, 1);
}

static void test_before_any_config(void **state)
{
	/* No file: refresh fails, accessors give their fallbacks. */
	assert_int_equal(config_refresh(), -1);
	assert_null(config_doc());
	assert_string_equal(config_str("publicUrl", "fb"), "fb");
	assert_int_equal(config_int("maxBodyBytes", 77, 0, 100), 77);
	assert_true(config_bool("logRequests", true));
}

static void test_init_tree_stores_hashed_tokens(void **state)
{
	assert_int_equal(config_init_tree("adm-0123456789", "cli-0123456789", "https://gw.example"),
			 0);
	assert_int_equal(config_refresh(), 0);
	assert_non_null(config_doc());
	expect_digest("adminToken", "adm-0123456789");
	expect_digest("clientToken", "cli-0123456789");
	assert_string_equal(config_str("publicUrl", ""), "https://gw.example");
	assert_int_equal(config_int("maxBodyBytes", 0, 0, 1 << 30), 100 * 1024);
	assert_false(config_bool("logRequests", true));
	/* The tokens themselves are nowhere in the file. */
	char *path = config_path();
	char *text = tu_read_file(path, NULL);
	assert_null(strstr(text, "adm-0123456789"));
	assert_null(strstr(text, "cli-0123456789"));
	free(text);
	free(path);
	/* The tree's folders exist too. */
	char sub[4096];
	snprintf(sub, sizeof sub, "%s/servers", state_dir);
	assert_true(tu_path_exists(sub));
}

static void test_init_tree_keeps_existing_config(void **state)
{
	assert_int_equal(config_init_tree("first-admin", "first-client", NULL), 0);
	char *path = config_path();
	char *before = tu_read_file(path, NULL);
	/* Running the set-up again (or racing another node) must not replace the
	 * tokens operators already hand out. */
	assert_int_equal(config_init_tree("second-admin", "second-client", "http://x"), 0);
	char *after = tu_read_file(path, NULL);
	assert_string_equal(before, after);
	assert_int_equal(config_refresh(), 0);
	expect_digest("adminToken", "first-admin");
	assert_string_equal(config_str("publicUrl", ""), "http://127.0.0.1:8080"); /* default */
	free(before);
	free(after);
	free(path);
}

static void test_generated_tokens_are_printed_once(void **state)
{
	/* With no tokens given, fresh ones are printed on stdout (the only time they
	 * are shown) and only their digests are stored. Capture stdout to check. */
	char out_path[4096];
	snprintf(out_path, sizeof out_path, "%s/stdout.txt", state_dir);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	int rc = config_init_tree(NULL, "", NULL);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	assert_int_equal(rc, 0);

	char *printed = tu_read_file(out_path, NULL);
	char admin[128] = "", client[128] = "";
	assert_int_equal(sscanf(printed, "admin token: %127s\nclient token: %127s", admin, client),
			 2);
	free(printed);
	assert_int_equal(strlen(admin), 48); /* 24 random bytes in hex */
	assert_int_equal(strlen(client), 48);
	assert_string_not_equal(admin, client);
	assert_int_equal(config_refresh(), 0);
	expect_digest("adminToken", admin);
	expect_digest("clientToken", client);
}

static void test_refresh_sees_changes(void **state)
{
	write_config("{\"maxBodyBytes\":5000}");
	assert_int_equal(config_refresh(), 0);
	assert_int_equal(config_int("maxBodyBytes", 1, 0, 1 << 30), 5000);
	assert_int_equal(config_refresh(), 0); /* unchanged: still fine */
	yajl_val first = config_doc();

	write_config("{\"maxBodyBytes\":6000,\"publicUrl\":\"http://new\"}");
	assert_int_equal(config_refresh(), 0);
	assert_ptr_not_equal(config_doc(), first);
	assert_int_equal(config_int("maxBodyBytes", 1, 0, 1 << 30), 6000);
	assert_string_equal(config_str("publicUrl", ""), "http://new");
}

static void test_broken_config_keeps_last_good_settings(void **state)
{
	write_config("{\"publicUrl\":\"http://good\"}");
	assert_int_equal(config_refresh(), 0);

	/* An operator's typo: the previous good values stay in use. */
	char *path = config_path();
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.edit", path);
	assert_int_equal(tu_write_file(tmp, "{\"publicUrl\": oops", 18), 0);
	assert_int_equal(rename(tmp, path), 0);
	assert_int_equal(config_refresh(), 0);
	assert_string_equal(config_str("publicUrl", ""), "http://good");
	assert_non_null(config_problem());
	assert_non_null(strstr(config_problem(), "config.json does not parse (line 1, column 15:"));
	/* Never quarantined: the operator's file stays to be fixed. */
	assert_int_equal(config_refresh(), 0);
	snprintf(tmp, sizeof tmp, "%s/corrupt", state_dir);
	assert_int_equal(tu_count_entries(tmp, "root.config.", ".json"), 0);
	assert_true(access(path, F_OK) == 0);
	/* A process that never saw the good file (plain CGI: every request) uses
	 * the copy kept when it last parsed. */
	config_free();
	assert_int_equal(config_refresh(), 0);
	assert_string_equal(config_str("publicUrl", ""), "http://good");
	assert_non_null(config_problem());

	/* A fixed file is picked up again. */
	write_config("{\"publicUrl\":\"http://fixed\"}");
	assert_int_equal(config_refresh(), 0);
	assert_string_equal(config_str("publicUrl", ""), "http://fixed");
	assert_null(config_problem());
	free(path);
}

static void test_accessors_clamp_and_fall_back(void **state)
{
	write_config("{\"big\":500,\"small\":-5,\"frac\":2.5,\"str\":\"7\",\"flag\":true,"
		     "\"health\":{\"rise\":9,\"ratio\":0.25,\"bad\":\"x\"},\"notobj\":3}");
	assert_int_equal(config_refresh(), 0);
	assert_int_equal(config_int("big", 1, 0, 100), 100);	  /* clamped to max */
	assert_int_equal(config_int("small", 1, 0, 100), 0);	  /* clamped to min */
	assert_int_equal(config_int("str", 42, 0, 100), 42);	  /* wrong type: fallback */
	assert_int_equal(config_int("frac", 42, 0, 100), 42);	  /* 2.5 is not an integer */
	assert_int_equal(config_int("absent", 420, 0, 100), 100); /* fallback is clamped too */
	assert_true(config_num("frac", 0, 0, 10) == 2.5);
	assert_true(config_num("big", 0, 0, 10.5) == 10.5);
	assert_true(config_num("str", 1.5, 0, 10) == 1.5);
	assert_true(config_bool("flag", false));
	assert_false(config_bool("big", false)); /* 500 is not a boolean */
	assert_int_equal(config_sect_int("health", "rise", 2, 1, 10), 9);
	assert_int_equal(config_sect_int("health", "rise", 2, 1, 5), 5);
	assert_int_equal(config_sect_int("health", "bad", 2, 1, 5), 2);
	assert_int_equal(config_sect_int("nosection", "rise", 2, 1, 5), 2);
	assert_int_equal(config_sect_int("notobj", "rise", 2, 1, 5), 2);
	assert_true(config_sect_num("health", "ratio", 1, 0, 1) == 0.25);
	assert_true(config_sect_num("health", "absent", 0.5, 0, 1) == 0.5);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, setup)
	const struct CMUnitTest tests[] = {
	    T(test_state_dir_from_environment),		T(test_before_any_config),
	    T(test_init_tree_stores_hashed_tokens),	T(test_init_tree_keeps_existing_config),
	    T(test_generated_tokens_are_printed_once),	T(test_refresh_sees_changes),
	    T(test_broken_config_keeps_last_good_settings), T(test_accessors_clamp_and_fall_back),
	};
#undef T
	return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
