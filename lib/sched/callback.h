/* callback: a backend's word on a running attempt, from POST
 * /api/v2/tasks/:id/callback (Cog's webhook, the attempt's secret in the URL) or
 * PUT /api/v2/tasks/:id (the server's callback token, or an operator's).
 *
 * An update is accepted only for an attempt of the task, from a holder of that
 * attempt's secret, of its server's callback token, or of the admin token; it
 * changes something only while that attempt runs. Non-terminal updates (starting,
 * processing, logs) are recorded in .progress; a terminal one ends the attempt
 * through dispatch_end_attempt, and a repeat of it is harmless (Cog retries its
 * terminal webhook). */
#ifndef TASKGATE_CALLBACK_H
#define TASKGATE_CALLBACK_H

#include <stdbool.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/verr.h"
#include "sched/dispatch.h"

struct callback_update {
	bool terminal;
	enum end_kind end; /* when terminal */
	const char *status; /* the backend's word, borrowed from the body */
	const char *logs;   /* borrowed, may be NULL */
	yajl_val output;    /* borrowed: a non-terminal update's output so far, or NULL */
	char *error;	    /* owned: why it failed or was cancelled */
	yajl_val result;    /* owned: output, metrics and a log tail (END_SUCCEEDED) */
};

/* Reads the backend's status vocabulary (Cog's, and the same words for http-json)
 * from body, which must outlive u. -1 with e set when the body says no status
 * this knows. */
int callback_update_parse(yajl_val body, struct callback_update *u, struct verr *e);
void callback_update_free(struct callback_update *u);

/* Who sent the update. */
struct callback_auth {
	int attempt;	    /* the attempt it is for; <= 0: the current one */
	const char *token;  /* ?token=, the attempt's secret; may be NULL */
	const char *bearer; /* Authorization: Bearer; may be NULL */
};

/* Results besides the end_result codes, TASK_ILLEGAL_MOVE and the STORE_ errors;
 * apart from all of them. */
enum callback_result {
	CALLBACK_RECORDED = STORE_EDIT_BASE + 80, /* progress written */
	CALLBACK_UNAUTHENTICATED,	/* no credential for this task and attempt */
	CALLBACK_NO_SUCH_ATTEMPT,	/* authenticated, for an attempt it never had */
	CALLBACK_NOT_RUNNING,		/* progress for an attempt that is not running */
};

/* Checks who sent an update for task id; *attempt receives the attempt it is
 * for. Returns STORE_OK, CALLBACK_UNAUTHENTICATED, CALLBACK_NO_SUCH_ATTEMPT, or a
 * STORE_ error (NOENT, INVALID: no such task). */
int callback_authenticate(const char *id, const struct callback_auth *who, int *attempt);

/* Applies an authenticated update to the attempt. Returns CALLBACK_RECORDED
 * (progress written), CALLBACK_NOT_RUNNING, an end_result (END_DONE: the attempt
 * ended now; END_DUPLICATE; END_NOT_CURRENT), TASK_ILLEGAL_MOVE, or a STORE_
 * error (NOENT: the task vanished since it was authenticated). */
int callback_apply(const char *id, int attempt, const struct callback_update *u);

/* Ends an authenticated attempt whose update was too large to take (bytes over
 * callbackMaxBytes): FAILED at once with that reason, no retry (another server's
 * result would be as large), and not held against the server's health (it
 * answered). Returns what callback_apply() returns. */
int callback_refuse_oversize(const char *id, int attempt, long long bytes, long long max);

#endif
