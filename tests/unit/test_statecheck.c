/* Unit tests for lib/statecheck.c: a state tree that is group/world writable, or
 * inside the document root without a deny rule, is refused with a sentence that
 * says what to fix; a fix is seen at the next request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/statecheck.h"
#include "testutil.h"

static char *top;	   /* the document root of these tests */
static char state[4096];   /* top/sub/state */
static char outside[4096]; /* top.out: beside, not inside */

static int setup(void **st)
{
	top = tu_mkdtemp();
	char sub[4096];
	snprintf(sub, sizeof sub, "%s/sub", top);
	snprintf(state, sizeof state, "%s/sub/state", top);
	snprintf(outside, sizeof outside, "%s.out", top);
	if (mkdir(sub, 0755) < 0 || mkdir(state, 0750) < 0 || mkdir(outside, 0750) < 0)
		return -1;
	char p[4200];
	snprintf(p, sizeof p, "%s/tasks", state);
	if (mkdir(p, 0750) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/config.json", state);
	if (tu_write_file(p, "{}", 2) < 0)
		return -1;
	statecheck_reset();
	return 0;
}

static int teardown(void **st)
{
	tu_rmtree(top);
	tu_rmtree(outside);
	free(top);
	return 0;
}

/* A request's environment with DOCUMENT_ROOT (NULL: none) and SERVER_SOFTWARE. */
static const char *check(const char *docroot, const char *software)
{
	static char dr[4200], sw[200];
	char *envp[4] = {NULL};
	int n = 0;
	if (docroot) {
		snprintf(dr, sizeof dr, "DOCUMENT_ROOT=%s", docroot);
		envp[n++] = dr;
	}
	if (software) {
		snprintf(sw, sizeof sw, "SERVER_SOFTWARE=%s", software);
		envp[n++] = sw;
	}
	return statecheck_request(state, envp);
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
}

static void test_outside_or_no_docroot_is_fine(void **st)
{
	assert_null(check(NULL, NULL));
	assert_null(check(outside, "Apache/2.4"));
	assert_false(statecheck_refused());
	/* A prefix that is not a folder boundary is not "inside". */
	char sibling[4200];
	snprintf(sibling, sizeof sibling, "%s/sub/sta", top);
	assert_null(check(sibling, NULL));
}

static void test_inside_without_rule_is_refused(void **st)
{
	const char *why = check(top, "Apache/2.4.62 (Debian)");
	assert_non_null(why);
	assert_true(statecheck_refused());
	assert_non_null(strstr(why, "inside the document root"));
	assert_non_null(strstr(why, "Require all denied"));
	assert_non_null(strstr(why, "STATE_DIR"));
	/* A trailing slash or a doubled one in DOCUMENT_ROOT changes nothing. */
	char slashed[4200];
	snprintf(slashed, sizeof slashed, "%s/", top);
	assert_non_null(check(slashed, NULL));
	/* The document root being the tree itself counts as inside. */
	assert_non_null(check(state, NULL));
}

static void test_deny_rules_in_the_tree_or_above(void **st)
{
	put(state, ".htaccess", "Options -Indexes\n");
	assert_non_null(check(top, NULL));
	put(state, ".htaccess", "<IfModule mod_authz_core.c>\n\tRequire all denied\n</IfModule>\n");
	assert_null(check(top, NULL)); /* seen at once: a refusal is not cached */
	assert_false(statecheck_refused());

	statecheck_reset();
	char p[4200];
	snprintf(p, sizeof p, "%s/.htaccess", state);
	unlink(p);
	char sub[4200];
	snprintf(sub, sizeof sub, "%s/sub", top);
	put(sub, ".htaccess", "# Deny from all (commented out)\n");
	assert_non_null(check(top, NULL));
	put(sub, ".htaccess", "  order allow,deny\n  DENY   from   ALL  # old style\n");
	assert_null(check(top, NULL));

	/* Between the tree and the document root only: a rule above it does not count. */
	statecheck_reset();
	snprintf(p, sizeof p, "%s/.htaccess", sub);
	unlink(p);
	put(top, ".htaccess", "Require all denied\n");
	assert_null(check(top, NULL)); /* the document root itself counts */
	assert_non_null(check(sub, NULL));
}

static void test_servers_without_htaccess(void **st)
{
	put(state, ".htaccess", "Require all denied\n");
	assert_null(check(top, "Apache"));
	statecheck_reset();
	const char *why = check(top, "lighttpd/1.4.69");
	assert_non_null(why);
	assert_non_null(strstr(why, "lighttpd/1.4.69 does not read .htaccess"));
	assert_non_null(check(top, "nginx/1.24"));
}

static void test_writable_modes_are_refused(void **st)
{
	assert_int_equal(chmod(state, 0770), 0);
	const char *why = check(NULL, NULL);
	assert_non_null(why);
	assert_non_null(strstr(why, "group or world writable (mode 0770)"));
	assert_non_null(strstr(why, "chmod -R go-w"));
	assert_int_equal(chmod(state, 0750), 0);
	assert_null(check(NULL, NULL));

	char p[4200];
	snprintf(p, sizeof p, "%s/tasks", state);
	statecheck_reset();
	assert_int_equal(chmod(p, 0757), 0);
	why = check(outside, NULL);
	assert_non_null(why);
	assert_non_null(strstr(why, "/tasks in the state tree"));
	assert_int_equal(chmod(p, 0750), 0);

	snprintf(p, sizeof p, "%s/config.json", state);
	assert_int_equal(chmod(p, 0666), 0);
	assert_non_null(check(outside, NULL));
	assert_int_equal(chmod(p, 0640), 0);
	assert_null(check(outside, NULL));
}

static void test_safe_verdict_is_cached(void **st)
{
	assert_null(check(outside, NULL));
	assert_int_equal(chmod(state, 0777), 0);
	assert_null(check(outside, NULL)); /* cached: no stat per request */
	statecheck_reset();
	assert_non_null(check(outside, NULL));
	assert_int_equal(chmod(state, 0750), 0);
}

int main(void)
{
	log_set_program("test_statecheck");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_outside_or_no_docroot_is_fine, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inside_without_rule_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deny_rules_in_the_tree_or_above, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_servers_without_htaccess, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writable_modes_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_safe_verdict_is_cached, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
