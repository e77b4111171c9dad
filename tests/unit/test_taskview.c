/* Unit tests for lib/model/taskview.c and the member table in lib/model/task.c:
 * every member of the stored form is in the table (and every table entry is in
 * the stored form), the streamed public form of a stored task equals
 * task_to_public's output byte for byte, keeps request data whose keys look like
 * private members, never shows a private member or one the table lacks, and
 * refuses damaged text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/task.h"
#include "model/taskview.h"

static yajl_val parse(const char *text)
{
	struct buf err = BUF_INIT;
	yajl_val v = json_parse(text, strlen(text), NULL, &err);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", buf_str(&err), text);
	buf_free(&err);
	return v;
}

/* A task with every member set, two attempts with secrets, and request data
 * that uses the private members' names as its own keys. */
static void sample_task(struct task *t, yajl_val *input, yajl_val *result)
{
	memset(t, 0, sizeof *t);
	*input = parse("{\"prompt\":\"h\\u00e9llo \\\"q\\\"\",\"queueKey\":\"mine\","
		       "\"secretHash\":{\"deep\":[1,2.5,-3e2,true,null]},"
		       "\"history\":[{\"secretHash\":\"user data\"}]}");
	*result = parse("{\"output\":[\"a\",\"b\"],\"metrics\":{\"predict_time\":0.25}}");
	snprintf(t->id, sizeof t->id, "0f8fad5b-d9cb-469f-a165-70867728950e");
	t->status = TASK_COMPLETED;
	t->model = strdup("resnet");
	t->input = *input;
	t->result = *result;
	t->priority = 3;
	t->timeout_s = 60;
	t->max_attempts = 3;
	t->affinity_key = strdup("user-7");
	t->group = strdup("gpu");
	strlist_add(&t->tags, "a100");
	t->idempotency_key = strdup("key-1");
	t->error = strdup("first attempt failed");
	t->logs = strdup("step 1\nstep 2\n");
	t->backend_status = strdup("processing");
	t->progress_output = *result; /* borrowed, like result */
	snprintf(t->server_id, sizeof t->server_id, "s2");
	t->attempts = 2;
	t->failures = 1;
	t->created_at = 1000;
	t->updated_at = 3000;
	t->completed_at = 3000;
	t->queued_at = 1000;
	snprintf(t->avoid_server, sizeof t->avoid_server, "s1");
	snprintf(t->queue_key, sizeof t->queue_key, "q-key");
	struct task_attempt *a = task_add_attempt(t, "s1", 1100);
	a->ended_at = 1500;
	snprintf(a->outcome, sizeof a->outcome, "error");
	a->error = strdup("connection refused");
	snprintf(a->secret_hash, sizeof a->secret_hash, "sha256:%064d", 1);
	a = task_add_attempt(t, "s2", 2000);
	a->ended_at = 3000;
	snprintf(a->outcome, sizeof a->outcome, "succeeded");
	snprintf(a->secret_hash, sizeof a->secret_hash, "sha256:%064d", 2);
}

static void render(const struct task *t, bool stored, struct buf *out)
{
	struct jgen g;
	jg_init(&g);
	if (stored)
		task_to_doc(t, &g);
	else
		task_to_public(t, &g);
	assert_int_equal(jg_finish(&g, out), 0);
	jg_free(&g);
}

static void test_equals_task_to_public(void **state)
{
	(void)state;
	struct task t;
	yajl_val input, result;
	sample_task(&t, &input, &result);
	struct buf stored = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
	render(&t, true, &stored);
	render(&t, false, &want);
	struct jgen g;
	jg_init(&g);
	assert_int_equal(taskview_public(stored.data, stored.len, &g), 0);
	assert_int_equal(jg_finish(&g, &got), 0);
	jg_free(&g);
	assert_string_equal(buf_str(&got), buf_str(&want));
	/* The stored form did hold the secrets; the view does not. */
	assert_non_null(strstr(buf_str(&stored), "sha256:"));
	assert_null(strstr(buf_str(&got), "sha256:"));
	assert_null(strstr(buf_str(&got), "key-1"));
	assert_null(strstr(buf_str(&got), "q-key"));
	assert_null(strstr(buf_str(&got), "avoidServer"));
	/* Request data named like private members is the client's and stays. */
	assert_non_null(strstr(buf_str(&got), "\"queueKey\":\"mine\""));
	assert_non_null(strstr(buf_str(&got), "\"secretHash\":\"user data\""));
	assert_non_null(strstr(buf_str(&got), "-3e2"));
	buf_free(&stored);
	buf_free(&want);
	buf_free(&got);
	task_free(&t);
	yajl_tree_free(input);
	yajl_tree_free(result);
}

/* Walks a stored object by the table, marking the members seen; fails on a
 * member the table lacks. */
static void check_members(yajl_val obj, enum task_part in, bool *seen, const char *where)
{
	for (size_t i = 0; i < obj->u.object.len; i++) {
		const char *key = obj->u.object.keys[i];
		yajl_val v = obj->u.object.values[i];
		const struct task_member_info *m = task_member_find(in, key, strlen(key));
		if (!m)
			fail_msg("the stored form has %s.%s, which task.c's member table lacks: "
				 "add it there, saying whether the API may show it",
				 where, key);
		seen[m - task_member_info(TM_ID)] = true;
		if (m->holds == TASK_PART_REQUEST || m->holds == TASK_PART_PROGRESS) {
			assert_true(YAJL_IS_OBJECT(v));
			check_members(v, m->holds, seen, key);
		} else if (m->holds == TASK_PART_HISTORY) {
			assert_true(YAJL_IS_ARRAY(v));
			for (size_t k = 0; k < v->u.array.len; k++)
				check_members(v->u.array.values[k], TASK_PART_ATTEMPT, seen,
					      "history[]");
		}
	}
}

static void test_every_stored_member_is_in_the_table(void **state)
{
	(void)state;
	struct task t;
	yajl_val input, result;
	sample_task(&t, &input, &result);
	struct buf stored = BUF_INIT;
	render(&t, true, &stored);
	yajl_val doc = parse(buf_str(&stored));
	bool seen[TASK_MEMBER_COUNT] = {false};
	check_members(doc, TASK_PART_TASK, seen, "task");
	/* ... and the table names nothing the store no longer writes (the sample
	 * sets every member). */
	for (int m = 0; m < TASK_MEMBER_COUNT; m++)
		if (!seen[m])
			fail_msg("the table's member '%s' is not in the stored form",
				 task_member_info((enum task_member)m)->key);
	yajl_tree_free(doc);
	buf_free(&stored);
	task_free(&t);
	yajl_tree_free(input);
	yajl_tree_free(result);
}

/* Whatever the table marks private is in neither public form. */
static void test_private_members_are_in_no_public_form(void **state)
{
	(void)state;
	struct task t;
	yajl_val input, result;
	sample_task(&t, &input, &result);
	struct buf stored = BUF_INIT, pub = BUF_INIT, view = BUF_INIT;
	render(&t, true, &stored);
	render(&t, false, &pub);
	struct jgen g;
	jg_init(&g);
	assert_int_equal(taskview_public(stored.data, stored.len, &g), 0);
	assert_int_equal(jg_finish(&g, &view), 0);
	jg_free(&g);
	int privates = 0;
	for (int m = 0; m < TASK_MEMBER_COUNT; m++) {
		const struct task_member_info *mi = task_member_info((enum task_member)m);
		if (mi->public)
			continue;
		privates++;
		char quoted[80];
		snprintf(quoted, sizeof quoted, "\"%s\":", mi->key);
		const char *in_stored = strstr(buf_str(&stored), quoted);
		assert_non_null(in_stored);
		/* The sample's input uses some private names as its own keys: look
		 * only past the request. */
		const char *after_req = strstr(buf_str(&pub), "\"result\":");
		assert_non_null(after_req);
		if (strstr(after_req, quoted))
			fail_msg("task_to_public shows the private member '%s'", mi->key);
		after_req = strstr(buf_str(&view), "\"result\":");
		assert_non_null(after_req);
		if (strstr(after_req, quoted))
			fail_msg("taskview shows the private member '%s'", mi->key);
	}
	assert_true(privates >= 4);
	assert_null(task_member_find(TASK_PART_TASK, "nosuch", 6));
	assert_null(task_member_info(TASK_MEMBER_COUNT));
	buf_free(&stored);
	buf_free(&pub);
	buf_free(&view);
	task_free(&t);
	yajl_tree_free(input);
	yajl_tree_free(result);
}

static void test_private_containers_are_skipped_whole(void **state)
{
	(void)state;
	const char *doc = "{\"id\":\"x\",\"queueKey\":{\"a\":[1,{\"b\":2}]},\"history\":[{"
			  "\"attempt\":1,\"secretHash\":[\"s\",{\"t\":1}],\"outcome\":null}],"
			  "\"avoidServer\":\"s1\",\"attempts\":1.50,\"notInTheTable\":{\"x\":1},"
			  "\"request\":{\"input\":{\"queueKey\":1},\"secret\":2}}";
	struct buf got = BUF_INIT;
	struct jgen g;
	jg_init(&g);
	assert_int_equal(taskview_public(doc, strlen(doc), &g), 0);
	assert_int_equal(jg_finish(&g, &got), 0);
	jg_free(&g);
	assert_string_equal(buf_str(&got),
			    "{\"id\":\"x\",\"history\":[{\"attempt\":1,\"outcome\":null}],"
			    "\"attempts\":1.50,\"request\":{\"input\":{\"queueKey\":1}}}");
	buf_free(&got);
}

static void expect_refused(const char *text)
{
	struct jgen g;
	jg_init(&g);
	assert_int_equal(taskview_public(text, strlen(text), &g), -1);
	jg_free(&g);
}

static void test_damaged_text_is_refused(void **state)
{
	(void)state;
	expect_refused("");
	expect_refused("{\"id\":\"x\"");
	expect_refused("{\"id\":\"x\"} trailing");
	expect_refused("[1,2]");
	expect_refused("\"just a string\"");
	expect_refused("42");
	expect_refused("{\"id\":\"\xff\xfe\"}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_stored_member_is_in_the_table),
		cmocka_unit_test(test_private_members_are_in_no_public_form),
		cmocka_unit_test(test_equals_task_to_public),
		cmocka_unit_test(test_private_containers_are_skipped_whole),
		cmocka_unit_test(test_damaged_text_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
