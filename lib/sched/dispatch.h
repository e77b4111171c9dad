/* dispatch: moving tasks onto servers and off them again — the TaskInstance's
 * flows from the seed design, over files.
 *
 * The ledger rule: a server's currentLoad goes +1 when a slot is reserved for an
 * attempt (under the server's lock, together with the capacity check) and -1
 * exactly once when that attempt ends, by whichever process moved the task out of
 * PROCESSING for that attempt (only one can: the move happens under the task's
 * lock and checks the attempt number). A crash between the two steps leaves the
 * load too high, never too low; dispatch_rebuild_load() recomputes it from the
 * PROCESSING tasks.
 *
 * Locks are never nested: a server's lock is taken and released, then a task's. */
#ifndef TASKGATE_DISPATCH_H
#define TASKGATE_DISPATCH_H

#include <stdbool.h>

#include "base/buf.h"
#include "base/json.h"
#include "fs/store.h"
#include "model/task.h"

/* An attempt that has a reserved slot and must now be sent to its backend. The
 * secret is derived from the task id and attempt (model/auth.h); the task file
 * keeps only its hash. */
struct dispatch_send {
	char task_id[TASK_ID_LEN + 1];
	char server_id[65];
	int attempt; /* 0: nothing to send */
	char secret[33];
	bool room_seen; /* placement saw a server with a free slot (a drain may use it) */
};

/* Stores a freshly validated (PENDING) task: PROCESSING on a reserved server when
 * one fits now (then send is filled, and the send is owed in sending/ for a
 * worker), else QUEUED. public_json
 * receives the stored task. Returns STORE_OK or the store error (nothing stored,
 * nothing reserved). */
int dispatch_place_new(struct task *t, struct dispatch_send *send, struct buf *public_json);

/* Sends one attempt and acts on the answer (completes a synchronous result, fails
 * a rejected task, re-queues on busy or error). Returns true if the attempt ended
 * here (a slot was freed or the task re-queued), so the caller should drain. */
bool dispatch_send(const struct dispatch_send *send);

/* Sends the attempts owed in sending/ (placed by a request, which never sends
 * them itself): at most max, until until_mono (mono_ms()). Returns how many were
 * sent. Run by the workers (jobs/worker.h) and the sweep. */
int dispatch_send_pending(int max, int64_t until_mono);

/* Places queued tasks on servers with free slots and sends them: at most
 * max_tasks, within about budget_ms. Returns how many were dispatched. */
int dispatch_drain(int max_tasks, int budget_ms);

enum end_kind {
	END_SUCCEEDED, /* result arrived */
	END_FAILED,    /* the backend ran it and reports failure: no retry */
	END_REJECTED,  /* the backend refused the input: no retry */
	END_ERROR,     /* dispatch or backend error: retry while attempts remain */
	END_TIMEOUT,   /* deadline passed: retry while attempts remain */
	END_BUSY,      /* the backend had no slot: re-queue, not counted as a failure */
	END_CANCELLED, /* cancelled by the client or the backend */
};

struct end_request {
	int attempt;		/* must be the task's current attempt */
	enum end_kind kind;
	yajl_val result;	/* END_SUCCEEDED (borrowed) */
	const char *error;	/* why, for FAILED/REJECTED/ERROR/TIMEOUT */
	const char *logs;	/* backend logs, may be NULL */
	int delay_ms;		/* re-queue delay hint for END_BUSY (Retry-After) */
};

/* Above the store's codes (and apart from every edit code), so that a store error
 * such as STORE_NOENT can never be read as one of these. */
enum end_result {
	END_DONE = STORE_EDIT_BASE + 60, /* the attempt ended now; the slot was released */
	END_NOT_CURRENT, /* the attempt is not the task's running one (changed nothing) */
	END_DUPLICATE,	 /* the same terminal outcome was already recorded */
};

/* Ends an attempt under the task's lock, then releases its slot. Returns an
 * end_result, TASK_ILLEGAL_MOVE (a bug, logged; nothing written), or a STORE_
 * error (NOENT when the task is gone, BUSY, IO, CORRUPT). public_json (may be
 * NULL) receives the task after the change. */
int dispatch_end_attempt(const char *task_id, const struct end_request *req,
			 struct buf *public_json);

/* Releases one slot of the server's ledger (never below 0). */
void dispatch_release_slot(const char *server_id);

/* Recomputes every server's currentLoad from the PROCESSING tasks (active index).
 * Returns how many servers were corrected; each correction is logged. */
int dispatch_rebuild_load(void);

/* Builds the callback URL of an attempt into out. */
void dispatch_callback_url(const char *task_id, int attempt, const char *secret,
			   struct buf *out);

#endif
