/* task: the TaskInstance object — one submitted task, stored as tasks/<ab>/<id>.json.
 *
 * Lifecycle: PENDING -> QUEUED -> PROCESSING -> COMPLETED | FAILED, plus CANCELLED;
 * task_transition_allowed() is the one table of legal moves. Every change stamps
 * updatedAt (and completedAt on a terminal state).
 *
 * Ownership: struct task owns its strings. `input` and `result` are parsed JSON
 * values borrowed from whoever parsed them (the stored document during an update,
 * the request body during creation); they must outlive the struct's use. */
#ifndef TASKGATE_TASK_H
#define TASKGATE_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/strlist.h"
#include "base/verr.h"
#include "fs/store.h"

enum task_status {
	TASK_PENDING = 0,
	TASK_QUEUED,
	TASK_PROCESSING,
	TASK_COMPLETED,
	TASK_FAILED,
	TASK_CANCELLED,
	TASK_STATUS_COUNT
};

#define TASK_ID_LEN 36
/* queueTimeoutSeconds at most (30 days); 0 = never. */
#define QUEUE_TIMEOUT_MAX (30 * 86400)
#define TASK_LOG_TAIL 4096 /* bytes of backend logs kept beside the result */

struct task_attempt {
	int n;
	char server_id[65];
	int64_t started_at, ended_at; /* ended_at 0 while running */
	/* When the server acknowledged the attempt (took the prediction), 0 before: an
	 * attempt it never heard of that runs out of time is taskgate's loss, not the
	 * server's failure. */
	int64_t accepted_at;
	char outcome[16]; /* "" running, "succeeded", "failed", "error", "timeout", "busy", "cancelled" */
	char *error;
	char secret_hash[72]; /* "sha256:<hex>" of this attempt's callback secret */
};

struct task {
	char id[TASK_ID_LEN + 1];
	enum task_status status;
	/* request */
	char *model;
	yajl_val input; /* borrowed */
	int priority;
	int timeout_s;
	int max_attempts;
	int queue_timeout_s; /* longest wait in QUEUED before it fails; 0 = never */
	char *affinity_key; /* may be NULL */
	char *group;	    /* may be NULL */
	struct strlist tags;
	char *idempotency_key; /* may be NULL */
	/* outcome */
	yajl_val result; /* borrowed; NULL until there is one */
	char *error;	 /* may be NULL */
	char *logs;	 /* tail of the backend's logs, may be NULL */
	char *backend_status; /* last non-terminal status a backend reported */
	/* The output so far of a running attempt (Cog's output events: the list of
	 * what the model yielded), borrowed like result: from the stored document,
	 * or from the update being recorded. NULL when none. */
	yajl_val progress_output;
	/* placement */
	char server_id[65]; /* "" when not assigned */
	int attempts;	    /* dispatches made */
	int failures;	    /* attempts that ended in error or timeout (count against maxAttempts) */
	int64_t created_at, updated_at, completed_at, queued_at, deadline, next_attempt_at;
	char avoid_server[65]; /* the server of the last failed attempt: retry elsewhere */
	char queue_key[128];   /* name of this task's entry in queue/, "" when not queued */
	struct task_attempt *history;
	int nhistory;
};

/* The edit code of a move the transition table refuses: nothing is written, and an
 * API request answers 409. Distinct from every other STORE_EDIT_BASE code. */
#define TASK_ILLEGAL_MOVE (STORE_EDIT_BASE + 50)

/* The stored document's members, one entry each in task.c's table, which says
 * under which object the member sits, its key, whether the API may show it, and
 * what its value holds. task_to_doc and task_to_public write keys only through
 * the table, and taskview copies only the members the table marks public, so a
 * member's visibility is decided in one place; test_taskview fails when the
 * stored form has a member the table lacks. */
enum task_part {
	TASK_PART_VALUE,   /* any JSON value, copied as it is (input, result, ...) */
	TASK_PART_TASK,	   /* the task object itself */
	TASK_PART_REQUEST, /* the "request" object */
	TASK_PART_PROGRESS, /* the "progress" object */
	TASK_PART_HISTORY, /* the "history" array (of attempt objects) */
	TASK_PART_ATTEMPT, /* one element of "history" */
};

enum task_member {
	TM_ID,
	TM_STATUS,
	TM_REQUEST,
	TM_REQ_MODEL,
	TM_REQ_INPUT,
	TM_REQ_PRIORITY,
	TM_REQ_TIMEOUT,
	TM_REQ_MAX_ATTEMPTS,
	TM_REQ_QUEUE_TIMEOUT,
	TM_REQ_AFFINITY_KEY,
	TM_REQ_GROUP,
	TM_REQ_TAGS,
	TM_RESULT,
	TM_ERROR,
	TM_SERVER_ID,
	TM_ATTEMPTS,
	TM_FAILURES,
	TM_CREATED_AT,
	TM_UPDATED_AT,
	TM_COMPLETED_AT,
	TM_PRIORITY,
	TM_DEADLINE,
	TM_NEXT_ATTEMPT_AT,
	TM_QUEUED_AT,
	TM_PROGRESS,
	TM_PROG_STATUS,
	TM_PROG_LOGS,
	TM_PROG_OUTPUT,
	TM_HISTORY,
	TM_ATT_NUMBER,
	TM_ATT_SERVER_ID,
	TM_ATT_STARTED_AT,
	TM_ATT_ENDED_AT,
	TM_ATT_ACCEPTED_AT,
	TM_ATT_OUTCOME,
	TM_ATT_ERROR,
	TM_ATT_SECRET_HASH,
	TM_IDEMPOTENCY_KEY,
	TM_AVOID_SERVER,
	TM_QUEUE_KEY,
	TASK_MEMBER_COUNT
};

struct task_member_info {
	enum task_part in;    /* the object the member belongs to */
	const char *key;
	size_t key_len;	      /* strlen(key): GET compares it for every key it copies */
	bool public;	      /* shown by the API; false: only the store sees it */
	enum task_part holds; /* what its value is */
};

const struct task_member_info *task_member_info(enum task_member m);
/* The member of part `in` named by the len bytes at key, or NULL if there is none. */
const struct task_member_info *task_member_find(enum task_part in, const char *key,
						size_t len);
/* The same, searching from *hint (0 at first) and leaving it just past the match:
 * task_to_doc writes the members in table order, so a reader of a stored document
 * finds each member at the first look. */
const struct task_member_info *task_member_find_from(enum task_part in, const char *key,
						     size_t len, size_t *hint);

const char *task_status_name(enum task_status s);
int task_status_from_name(const char *name); /* -1 if unknown */
bool task_status_terminal(enum task_status s);
bool task_transition_allowed(enum task_status from, enum task_status to);
/* Moves to `to` and stamps times. An illegal move is a bug of the caller: it is
 * logged, t is left as it was, and false is returned; an edit then returns
 * TASK_ILLEGAL_MOVE so nothing is written. */
bool task_set_status(struct task *t, enum task_status to, int64_t now)
	__attribute__((warn_unused_result));

/* Validates a POST /api/v2/tasks body. t->input borrows from body. */
int task_from_request(yajl_val body, struct task *t, struct verr *e);
/* Reads a stored document; input/result borrow from doc. */
void task_from_doc(yajl_val doc, struct task *t);
void task_to_doc(const struct task *t, struct jgen *g);
/* API form: no secrets. */
void task_to_public(const struct task *t, struct jgen *g);
void task_free(struct task *t);

/* The running attempt (last history entry) or NULL. */
struct task_attempt *task_current_attempt(struct task *t);
struct task_attempt *task_attempt_by_number(struct task *t, int n);
/* Appends a new running attempt on server_id; returns it. */
struct task_attempt *task_add_attempt(struct task *t, const char *server_id, int64_t now);
void task_set_error(struct task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keeps only the last TASK_LOG_TAIL bytes (on a UTF-8 boundary). */
void task_set_logs(struct task *t, const char *logs);

/* Writes t's entry in queue/ (by priority, queuedAt and nextAttemptAt) and sets
 * t->queue_key to its name. 0 or a STORE_ code. */
int task_queue_entry_add(struct task *t);

/* Loads tasks/<id>. */
int task_load_doc(const char *id, yajl_val *doc);
/* Locked read-modify-write. fn sees the task (input/result borrowed from the stored
 * document) and returns STORE_OK to write, anything else to leave it. When public
 * is not NULL the task as written (or as found, on STORE_UNCHANGED) is appended to
 * it in API form. */
typedef int task_edit_fn(struct task *t, void *arg);
int task_update(const char *id, task_edit_fn *fn, void *arg, struct buf *public_json);
/* The same without the fsyncs, for a fact whose loss in a crash errs on the safe
 * side (an attempt's acceptedAt: a lost one only spares the server a mark). */
int task_update_hint(const char *id, task_edit_fn *fn, void *arg);

#endif
