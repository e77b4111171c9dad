#include "sched/requeue.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "stats/events.h"

struct requeue_arg {
	enum task_status found;
	char model[129];
};

static int requeue_edit(struct task *t, void *arg)
{
	struct requeue_arg *r = arg;
	r->found = t->status;
	snprintf(r->model, sizeof r->model, "%s", t->model);
	/* The table lets a running task re-queue (a failed attempt's retry), which is
	 * not this request's to do. */
	if (!task_status_terminal(t->status))
		return REQUEUE_NOT_ENDED;
	int64_t now = now_ms();
	if (!task_set_status(t, TASK_QUEUED, now))
		return TASK_ILLEGAL_MOVE;
	t->failures = 0; /* a fresh budget of attempts */
	t->result = NULL;
	free(t->error);
	t->error = NULL;
	t->avoid_server[0] = '\0';
	t->queued_at = now;
	t->next_attempt_at = 0;
	t->deadline = 0;
	return task_queue_entry_add(t);
}

int task_requeue(const char *id, struct buf *public_json, enum task_status *found)
{
	struct requeue_arg r = {.found = TASK_PENDING};
	int rc = task_update(id, requeue_edit, &r, public_json);
	*found = r.found;
	if (rc != STORE_OK)
		return rc;
	struct task view = {0};
	snprintf(view.id, sizeof view.id, "%s", id);
	view.model = r.model;
	events_task("retried", &view, NULL, 0);
	log_info("task %s re-queued by request", id);
	return STORE_OK;
}
