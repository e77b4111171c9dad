/* Unit tests for the transition table in lib/model/task.c and the codes around it:
 * task_set_status follows task_transition_allowed for every pair of states, a
 * refused move leaves the task as it was, an edit that makes one writes nothing,
 * and the end results of dispatch are apart from the store's codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/store.h"
#include "model/task.h"
#include "sched/dispatch.h"
#include "testutil.h"

static void test_set_status_follows_the_table(void **state)
{
	(void)state;
	int allowed = 0;
	for (int from = 0; from < TASK_STATUS_COUNT; from++) {
		for (int to = 0; to < TASK_STATUS_COUNT; to++) {
			struct task t;
			memset(&t, 0, sizeof t);
			snprintf(t.id, sizeof t.id, "t-%d-%d", from, to);
			t.status = (enum task_status)from;
			t.updated_at = 5;
			t.completed_at = 7;
			bool legal = task_transition_allowed(t.status, (enum task_status)to);
			bool moved = task_set_status(&t, (enum task_status)to, 1000);
			assert_int_equal(moved, legal);
			if (!moved) {
				assert_int_equal(t.status, from);
				assert_int_equal(t.updated_at, 5);
				assert_int_equal(t.completed_at, 7);
				continue;
			}
			allowed++;
			assert_int_equal(t.status, to);
			assert_int_equal(t.updated_at, 1000);
			assert_int_equal(t.completed_at,
					 task_status_terminal((enum task_status)to) ? 1000 : 0);
		}
	}
	assert_true(allowed > 0 && allowed < TASK_STATUS_COUNT * TASK_STATUS_COUNT);
}

static void test_the_moves_the_api_relies_on(void **state)
{
	(void)state;
	/* Nothing leaves COMPLETED; a retry re-queues FAILED and CANCELLED only. */
	for (int to = 0; to < TASK_STATUS_COUNT; to++)
		assert_false(task_transition_allowed(TASK_COMPLETED, (enum task_status)to));
	assert_true(task_transition_allowed(TASK_FAILED, TASK_QUEUED));
	assert_true(task_transition_allowed(TASK_CANCELLED, TASK_QUEUED));
	assert_false(task_transition_allowed(TASK_FAILED, TASK_CANCELLED));
	assert_false(task_transition_allowed(TASK_CANCELLED, TASK_CANCELLED));
	assert_true(task_transition_allowed(TASK_QUEUED, TASK_CANCELLED));
	assert_true(task_transition_allowed(TASK_PROCESSING, TASK_QUEUED));
	assert_false(task_transition_allowed(TASK_STATUS_COUNT, TASK_QUEUED));
	assert_false(task_transition_allowed(TASK_QUEUED, TASK_STATUS_COUNT));
}

static int requeue_edit(struct task *t, void *arg)
{
	(void)arg;
	if (!task_set_status(t, TASK_QUEUED, 2000))
		return TASK_ILLEGAL_MOVE;
	return STORE_OK;
}

static void test_an_illegal_move_writes_nothing(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp();
	assert_int_equal(store_init(dir), 0);
	const char *id = "0f8fad5b-d9cb-469f-a165-70867728950e";
	const char *doc = "{\"id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\","
			  "\"status\":\"COMPLETED\",\"request\":{\"model\":\"m\",\"input\":1},"
			  "\"updatedAt\":3000,\"completedAt\":3000}";
	assert_int_equal(store_create("tasks", id, doc, strlen(doc)), STORE_OK);
	struct buf before = BUF_INIT, after = BUF_INIT, pub = BUF_INIT;
	assert_int_equal(store_load_text("tasks", id, &before), STORE_OK);
	assert_int_equal(task_update(id, requeue_edit, NULL, &pub), TASK_ILLEGAL_MOVE);
	assert_int_equal(store_load_text("tasks", id, &after), STORE_OK);
	assert_string_equal(buf_str(&after), buf_str(&before));
	assert_int_equal(pub.len, 0); /* no task "as written" to show */
	buf_free(&before);
	buf_free(&after);
	buf_free(&pub);
	tu_rmtree(dir);
	free(dir);
}

/* A store error must never read as an end result (a vanished task once read as
 * "not the current attempt"), nor a refused move as either. */
static void test_end_results_are_apart_from_store_codes(void **state)
{
	(void)state;
	const int ends[] = {END_DONE, END_NOT_CURRENT, END_DUPLICATE};
	const int stores[] = {STORE_OK,	     STORE_NOENT, STORE_EXISTS, STORE_INVALID,
			      STORE_CORRUPT, STORE_BUSY,  STORE_IO,	STORE_UNCHANGED,
			      TASK_ILLEGAL_MOVE};
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		assert_true(ends[i] > STORE_EDIT_BASE);
		for (size_t k = 0; k < sizeof stores / sizeof stores[0]; k++)
			assert_int_not_equal(ends[i], stores[k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_status_follows_the_table),
		cmocka_unit_test(test_the_moves_the_api_relies_on),
		cmocka_unit_test(test_an_illegal_move_writes_nothing),
		cmocka_unit_test(test_end_results_are_apart_from_store_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
