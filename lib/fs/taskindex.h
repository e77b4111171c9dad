/* taskindex: the small folders that let dispatch, the sweep and listings avoid
 * reading every task ever stored.
 *
 *   queue/<prio>/<bucket>/<queuedAt>-<notBefore>-<id>
 *                          QUEUED (and PENDING) tasks by priority (high first), then
 *                          in 65.5 s buckets, then FIFO; notBefore holds back retries
 *                          (lib/fs/queueindex.c)
 *   active/<id>.<attempt>  PROCESSING tasks by running attempt (the sweep's work
 *                          list); one name per attempt, so the end of attempt n
 *                          can never remove the entry of attempt n+1 (older trees:
 *                          active/<id>, read as attempt 0)
 *   created/<YYYYMMDDHH>/<MM>/<createdAt>-<id>
 *                          every task by creation hour and minute (listings,
 *                          retention; lib/fs/createdindex.c)
 *   finished/<STATUS>/<YYYYMMDDHH>/<MM>/<createdAt>-<id>
 *                          the same, per terminal status (filtered listings)
 *   sending/<id>.<attempt> attempts placed on a server that a worker has still
 *                          to send
 *   cancelling/<id>.<attempt>  cancelled attempts whose backend a worker has still
 *                          to tell
 *
 * Entries are empty files and only hints: the task file is the truth. Crash order
 * keeps hints conservative: an entry is written (durably) before the task moves
 * into the state it indexes, and removed after the task has left it, so a crash
 * leaves at worst a stale entry, which readers check and drop. */
#ifndef TASKGATE_TASKINDEX_H
#define TASKGATE_TASKINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


/* Task ids are a UUID's text (model/task.h's TASK_ID_LEN is the same number). */
#define TINDEX_ID_LEN 36
#define TINDEX_KEY_MAX 128

/* Writes the queue entry of task id (priority, queued_at, not_before ms) and its
 * name into key (TINDEX_KEY_MAX bytes). 0 or a STORE_ code. */
int tindex_queue_add(const char *id, int priority, int64_t queued_at, int64_t not_before,
		     char key[TINDEX_KEY_MAX]);
/* Removes the entry named key (no error if already gone). */
void tindex_queue_remove(const char *key);

struct tindex_entry {
	char key[TINDEX_KEY_MAX];   /* the entry's path under queue/ (the task's queueKey) */
	char order[TINDEX_KEY_MAX]; /* sorts in dispatch order */
	char id[TINDEX_ID_LEN + 1];
	int64_t queued_at;  /* when the task was (last) queued */
	int64_t not_before; /* not dispatched before (a retry's back-off), 0 = at once */
};
/* When the entry's task began to wait for a server: queued, or due again after a
 * back-off (the queue wait of the statistics and of queue expiry). */
static inline int64_t tindex_entry_waiting_since(const struct tindex_entry *e)
{
	return e->not_before > e->queued_at ? e->not_before : e->queued_at;
}
/* Reads up to max queue entries in dispatch order, from the first priority's first
 * buckets only (so the cost follows max, not the queue); returns how many (caller
 * frees *out). */
size_t tindex_queue_list(struct tindex_entry **out, size_t max);
size_t tindex_queue_depth(void);
/* The same, counting no further than max (a cost bounded by max, not the queue). */
size_t tindex_queue_depth_upto(size_t max);
/* True when no entry waits: stops at the first name, so it costs the same for a
 * queue of ten entries or a million. */
bool tindex_queue_empty(void);

/* The entry of attempt n of task id (attempt 0: an older tree's active/<id>). */
int tindex_active_add(const char *id, int attempt);
void tindex_active_remove(const char *id, int attempt);
/* Calls fn for each active entry (its task and attempt); stops when fn returns
 * non-zero. A task may appear twice for a moment (a stale entry of an attempt
 * that ended beside its next one): readers that count check the attempt. */
int tindex_active_each(int (*fn)(const char *id, int attempt, void *arg), void *arg);

int tindex_created_add(const char *id, int64_t created_at);
void tindex_created_remove(const char *id, int64_t created_at);

struct tindex_created_item {
	char id[TINDEX_ID_LEN + 1];
	char key[TINDEX_KEY_MAX]; /* "<createdAt>-<id>": a cursor resuming after it */
};
/* Up to max tasks newest first, strictly older than after_key (a key returned
 * before, "" for the newest), reading only the folders that hold them: the hours,
 * then one hour's minutes, then those minutes' entries. Returns how many. */
size_t tindex_created_walk(const char *after_key, struct tindex_created_item *out, size_t max);

/* finished/<status>/: the same index for the tasks that ended in status (COMPLETED,
 * FAILED, CANCELLED), written when a task reaches it and removed when a retry takes
 * it out; a hint like the others (a listing checks each task's status). */
int tindex_finished_add(const char *status, const char *id, int64_t created_at);
void tindex_finished_remove(const char *status, const char *id, int64_t created_at);
size_t tindex_finished_walk(const char *status, const char *after_key,
			    struct tindex_created_item *out, size_t max);
/* Retention of every finished/<status>/ as tindex_created_expire does for
 * created/ (fn answers for each entry's task; nothing is counted). */
void tindex_finished_expire(const char *before_hour, int (*fn)(const char *id, void *arg),
			    void *arg);

/* Retention: walks the entries of the creation hours wholly older than before_hour
 * (a base/hour.h name); only those folders are opened, so history costs nothing
 * until it expires. fn(id, arg) answers 1 when the task is gone (its entry is then
 * removed), 0 to keep the entry, -1 to stop the walk (a budget spent). Folders
 * left empty are removed. Returns how many entries were removed. */
size_t tindex_created_expire(const char *before_hour, int (*fn)(const char *id, void *arg),
			     void *arg);

/* ---- work folders (sending/, cancelling/): what a worker still owes a backend.
 * An entry is written after the task file that makes it due (a worker finding
 * it must find the work), and claimed by the worker that does the work by
 * removing it (one remover wins); a crash between the task file and the entry, or
 * a worker killed after its claim, leaves the attempt to its deadline, like any
 * lost answer. */
enum tindex_work { TINDEX_SEND = 0, TINDEX_CANCEL = 1 };
struct tindex_work_item {
	char id[TINDEX_ID_LEN + 1];
	int attempt;
};
int tindex_work_add(enum tindex_work w, const char *id, int attempt);
/* True when this caller removed the entry and so owns its work. */
bool tindex_work_claim(enum tindex_work w, const char *id, int attempt);
/* Up to max entries (any order of the folder's first max, sorted); caller frees. */
size_t tindex_work_list(enum tindex_work w, struct tindex_work_item **out, size_t max);
/* Claims up to max entries, until until_mono (mono_ms()), and calls act for each
 * claimed one; returns how many act said it did. */
int tindex_work_take(enum tindex_work w, int max, int64_t until_mono,
		     bool (*act)(const struct tindex_work_item *it, void *arg), void *arg);
bool tindex_work_empty(enum tindex_work w);

/* run/drain-wanted: a request that freed a slot (or queued a task some server may
 * take) asks the workers for a drain; a worker takes the request (one taker wins)
 * and drains. */
void tindex_drain_request(void);
bool tindex_drain_take(void);
bool tindex_drain_requested(void);

#endif
