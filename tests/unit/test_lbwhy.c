/* Unit tests for lib/lb/lbwhy.c: which wish nobody meets, and the words for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lb/lbwhy.h"

/* A server with comma-separated models, groups and tags ("" for none). */
static void make(struct server *s, const char *id, const char *models, const char *groups,
		 const char *tags, enum server_health health, int load, int max)
{
	memset(s, 0, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", id);
	const char *lists[3] = {models, groups, tags};
	struct strlist *into[3] = {&s->models, &s->groups, &s->tags};
	for (int k = 0; k < 3; k++) {
		char copy[256];
		snprintf(copy, sizeof copy, "%s", lists[k]);
		for (char *save = NULL, *w = strtok_r(copy, ",", &save); w;
		     w = strtok_r(NULL, ",", &save))
			strlist_add(into[k], w);
	}
	s->health = health;
	s->current_load = load;
	s->max_concurrent = max;
}

#define FLEET 4
static struct server fleet[FLEET];

static int setup(void **state)
{
	(void)state;
	make(&fleet[0], "gpu-1", "sd,llama", "gpu", "a100", HEALTH_ONLINE, 2, 2);
	make(&fleet[1], "gpu-2", "sd", "gpu", "a100,fast", HEALTH_OFFLINE, 0, 2);
	make(&fleet[2], "cpu-1", "whisper", "cpu", "", HEALTH_ONLINE, 0, 4);
	make(&fleet[3], "any-1", "", "edge", "", HEALTH_STARTING, 0, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < FLEET; i++)
		server_free(&fleet[i]);
	return 0;
}

static void unmet_text(const struct lb_task *t, size_t n, char *out, size_t len)
{
	struct lb_unmet u;
	lb_unmet(fleet, n, t, &u);
	lb_unmet_text(&u, t, out, len);
}

static void test_unmet(void **state)
{
	(void)state;
	char out[400];
	struct strlist tags = {0};

	/* any-1 lists no models, so it serves every model: only its group keeps it out. */
	struct lb_task t = {.model = "sd", .group = "cpu"};
	struct lb_unmet u;
	lb_unmet(fleet, FLEET, &t, &u);
	assert_int_equal(u.kind, LB_UNMET_GROUP);
	assert_false(u.anywhere); /* cpu-1 is in group cpu, for another model */
	unmet_text(&t, FLEET, out, sizeof out);
	assert_string_equal(out, "group 'cpu' that no server for model 'sd' has");

	t = (struct lb_task){.model = "sd", .group = "tpu"};
	unmet_text(&t, FLEET, out, sizeof out);
	assert_string_equal(out, "group 'tpu' that no server has");

	/* Without any-1, nobody serves "flux". */
	t = (struct lb_task){.model = "flux"};
	unmet_text(&t, FLEET - 1, out, sizeof out);
	assert_string_equal(out, "model 'flux' that no server serves");
	unmet_text(&t, FLEET, out, sizeof out);
	assert_string_equal(out, ""); /* any-1 serves it */

	strlist_add(&tags, "a100");
	strlist_add(&tags, "h100");
	t = (struct lb_task){.model = "sd", .group = "gpu", .tags = &tags};
	lb_unmet(fleet, FLEET, &t, &u);
	assert_int_equal(u.kind, LB_UNMET_TAG);
	assert_string_equal(u.value, "h100");
	assert_true(u.anywhere);
	unmet_text(&t, FLEET, out, sizeof out);
	assert_string_equal(out, "tag 'h100' that no server has");
	strlist_free(&tags);

	/* "fast" exists, on gpu-2 only, which does not serve llama. */
	strlist_add(&tags, "fast");
	t = (struct lb_task){.model = "llama", .group = "gpu", .tags = &tags};
	unmet_text(&t, FLEET, out, sizeof out);
	assert_string_equal(out, "tag 'fast' that no server for model 'llama' in group 'gpu' has");
	strlist_free(&tags);

	t = (struct lb_task){.model = "sd"};
	lb_unmet(NULL, 0, &t, &u);
	assert_int_equal(u.kind, LB_UNMET_NO_SERVER);
}

static void test_why_waiting(void **state)
{
	(void)state;
	char out[400];
	struct lb_task t = {.model = "sd", .group = "gpu"};
	lb_why_waiting(fleet, FLEET, &t, out, sizeof out);
	assert_string_equal(out, "the 2 servers that could take it are 1 full, 1 offline");

	t = (struct lb_task){.model = "whisper"};
	lb_why_waiting(fleet, FLEET, &t, out, sizeof out);
	assert_string_equal(out, "the 2 servers that could take it are 1 starting, 1 free now");

	t = (struct lb_task){.model = "sd", .group = "tpu"};
	lb_why_waiting(fleet, FLEET, &t, out, sizeof out);
	assert_string_equal(out, "it wants group 'tpu' that no server has");

	lb_why_waiting(NULL, 0, &t, out, sizeof out);
	assert_string_equal(out, "no server is registered");

	/* A short buffer is cut, never overrun. */
	char small[12];
	t = (struct lb_task){.model = "sd", .group = "gpu"};
	lb_why_waiting(fleet, FLEET, &t, small, sizeof small);
	assert_int_equal(strlen(small), sizeof small - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_unmet, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_why_waiting, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
