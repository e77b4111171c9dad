/* cancel: DELETE /api/v2/tasks/:id's rules. A waiting (PENDING or QUEUED) task
 * becomes CANCELLED and leaves the queue; a running one has its attempt ended
 * through dispatch_end_attempt (which frees its slot), and its backend is told
 * to stop afterwards; a CANCELLED one stays as it is; COMPLETED and FAILED are
 * refused by the transition table. */
#ifndef TASKGATE_CANCEL_H
#define TASKGATE_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/task.h"

/* Results besides TASK_ILLEGAL_MOVE and the STORE_ errors; apart from both. */
enum cancel_result {
	CANCEL_DONE = STORE_EDIT_BASE + 70, /* cancelled now, or it already was */
	CANCEL_KEPT_CHANGING,		    /* the task moved under every try; retry */
};

/* What a cancel did, for the answer and for the backend afterwards. */
struct task_cancel {
	char task_id[TASK_ID_LEN + 1];
	enum task_status found; /* the status the task had (why a refusal) */
	bool was_running;	/* a running attempt was ended: tell its backend */
	char server_id[65];	/* that attempt's server, when was_running */
	int attempt;
};

/* Cancels the task. Returns CANCEL_DONE (public_json: the task as it is now),
 * TASK_ILLEGAL_MOVE (it is COMPLETED or FAILED: c->found says which; nothing
 * written), CANCEL_KEPT_CHANGING, or a STORE_ error (NOENT, BUSY, ...). */
int task_cancel(const char *id, struct buf *public_json, struct task_cancel *c);

/* Asks the backends of cancelled running attempts to stop them (the entries
 * cancelling/ holds): requests to remote servers, so a worker makes them after
 * the client has its answer. At most max, until until_mono; returns how many. */
int task_cancels_send_pending(int max, int64_t until_mono);

#endif
