/* idempotency: the Idempotency-Key records of POST /api/v2/tasks.
 *
 * A record is idempotency/<sha256 of the key>.json: {"taskId", "bodyHash" (the
 * sha256 of the request body), "createdAt"}. The key itself is never stored
 * here (the task keeps it, privately). A record is claimed before its task is
 * stored, so two requests with one key race for the record, not for the task. */
#ifndef TASKGATE_IDEMPOTENCY_H
#define TASKGATE_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#include "model/task.h"

#define IDEMPOTENCY_KEY_MAX 255

enum idem_claim {
	IDEM_NEW,	  /* the key is this task's now: store the task */
	IDEM_REPLAY,	  /* an earlier request with this body made *existing */
	IDEM_MISMATCH,	  /* the key was used with a different body */
	IDEM_IN_PROGRESS, /* the first request with the key is still storing its task */
	IDEM_ERROR,	  /* the state tree failed (logged by the store) */
};

/* 1 to IDEMPOTENCY_KEY_MAX bytes. */
bool idempotency_key_valid(const char *key);

/* Claims key for task_id, or finds the task an earlier request with it created
 * (its id into existing, for IDEM_REPLAY). A record whose task never appeared
 * within 30 s is taken over: its creator died before storing the task. */
enum idem_claim idempotency_claim(const char *key, const char *body, size_t body_len,
				  const char *task_id, char existing[TASK_ID_LEN + 1]);

#endif
