/* requeue: POST|GET /api/v2/tasks/:id/retry's rules. A FAILED or CANCELLED task
 * goes back to the queue with a fresh budget of attempts; a task still under way
 * is refused, and so is a COMPLETED one (by the transition table). */
#ifndef TASKGATE_REQUEUE_H
#define TASKGATE_REQUEUE_H

#include "base/buf.h"
#include "model/task.h"

/* The task has not ended (PENDING, QUEUED or PROCESSING): nothing to retry. */
#define REQUEUE_NOT_ENDED (STORE_EDIT_BASE + 73)

/* Re-queues the task. Returns STORE_OK (public_json: the task as written),
 * REQUEUE_NOT_ENDED or TASK_ILLEGAL_MOVE (*found says what it is; nothing
 * written), or a STORE_ error. */
int task_requeue(const char *id, struct buf *public_json, enum task_status *found);

#endif
