#include "sched/cancel.h"


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/journal.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "model/server.h"
#include "sched/backend.h"
#include "sched/dispatch.h"
#include "stats/events.h"

/* Tries before giving up on a task that changes under every one. */
#define CANCEL_ROUNDS 3
/* The task moved between the look and the change: look again. */
#define CANCEL_MOVED (STORE_EDIT_BASE + 72)

/* The task as seen without its lock: which path a cancel takes. */
struct sighting {
	enum task_status status;
	int attempt;
	char server_id[65];
};

static int look(const char *id, struct sighting *s)
{
	yajl_val doc;
	int rc = task_load_doc(id, &doc);
	if (rc != STORE_OK)
		return rc;
	struct task t;
	task_from_doc(doc, &t);
	struct task_attempt *a = task_current_attempt(&t);
	s->status = t.status;
	s->attempt = a ? a->n : 0;
	snprintf(s->server_id, sizeof s->server_id, "%s", a ? a->server_id : "");
	task_free(&t);
	yajl_tree_free(doc);
	return STORE_OK;
}

static int cancel_running(const char *id, const struct sighting *s, struct buf *public_json,
			  struct task_cancel *c)
{
	struct end_request end = {.attempt = s->attempt, .kind = END_CANCELLED};
	int rc = dispatch_end_attempt(id, &end, public_json);
	if (rc == END_NOT_CURRENT || rc == END_DUPLICATE)
		return CANCEL_MOVED;
	if (rc != END_DONE)
		return rc;
	/* Owed once the end is written: a worker tells the backend. A crash before the
	 * entry leaves the prediction to run out; its answer is refused. */
	if (tindex_work_add(TINDEX_CANCEL, id, s->attempt) != STORE_OK)
		log_warn("task %s: the backend's cancel could not be recorded", id);
	c->was_running = true;
	c->attempt = s->attempt;
	snprintf(c->server_id, sizeof c->server_id, "%s", s->server_id);
	log_info("task %s cancelled while running on %s", id, s->server_id);
	return CANCEL_DONE;
}

struct waiting_arg {
	struct task_cancel *c;
	char queue_key[128];
	char model[129];
};

static int cancel_waiting_edit(struct task *t, void *arg)
{
	struct waiting_arg *w = arg;
	w->c->found = t->status;
	if (t->status == TASK_CANCELLED)
		return STORE_UNCHANGED;
	if (t->status == TASK_PROCESSING)
		return CANCEL_MOVED; /* dispatched since the look */
	/* The table refuses COMPLETED and FAILED. */
	if (!task_set_status(t, TASK_CANCELLED, now_ms()))
		return TASK_ILLEGAL_MOVE;
	snprintf(w->queue_key, sizeof w->queue_key, "%s", t->queue_key);
	snprintf(w->model, sizeof w->model, "%s", t->model);
	t->queue_key[0] = '\0';
	t->next_attempt_at = 0;
	task_set_error(t, "cancelled");
	return STORE_OK;
}

static int cancel_waiting(const char *id, struct buf *public_json, struct task_cancel *c)
{
	struct waiting_arg w = {.c = c};
	int rc = task_update(id, cancel_waiting_edit, &w, public_json);
	if (rc == STORE_UNCHANGED)
		return CANCEL_DONE;
	if (rc != STORE_OK)
		return rc;
	tindex_queue_remove(w.queue_key);
	struct task view = {0};
	snprintf(view.id, sizeof view.id, "%s", id);
	view.model = w.model;
	events_task("cancelled", &view, NULL, 0);
	log_info("task %s cancelled while queued", id);
	return CANCEL_DONE;
}

int task_cancel(const char *id, struct buf *public_json, struct task_cancel *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->task_id, sizeof c->task_id, "%s", id);
	for (int round = 0; round < CANCEL_ROUNDS; round++) {
		struct sighting s;
		int rc = look(id, &s);
		if (rc != STORE_OK)
			return rc;
		c->found = s.status;
		buf_reset(public_json);
		rc = s.status == TASK_PROCESSING ? cancel_running(id, &s, public_json, c)
						 : cancel_waiting(id, public_json, c);
		if (rc != CANCEL_MOVED)
			return rc;
	}
	return CANCEL_KEPT_CHANGING;
}

/* The server of attempt n of task id, if that attempt ended cancelled. */
static bool cancelled_on(const char *id, int n, struct server *srv)
{
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK)
		return false;
	struct task t;
	task_from_doc(doc, &t);
	const struct task_attempt *a = task_attempt_by_number(&t, n);
	bool cancelled = a && strcmp(a->outcome, "cancelled") == 0 &&
			 server_load(a->server_id, srv) == STORE_OK;
	task_free(&t);
	yajl_tree_free(doc);
	return cancelled;
}

/* A kill after the claim leaves the backend to finish the prediction; its late
 * answer is refused (the attempt is over). */
static bool tell_backend(const struct tindex_work_item *it, void *arg)
{
	(void)arg;
	struct server srv;
	if (!cancelled_on(it->id, it->attempt, &srv))
		return false;
	char prediction_id[64];
	snprintf(prediction_id, sizeof prediction_id, "%s-%d", it->id, it->attempt);
	/* The backend hears of the cancel only once the tree has it on disk. */
	if (journal_commit() < 0)
		log_warn("cancel of %s on %s: the state tree could not be made durable",
			 prediction_id, srv.id);
	else
		backend_cancel(&srv, prediction_id);
	server_free(&srv);
	return true;
}

int task_cancels_send_pending(int max, int64_t until_mono)
{
	return tindex_work_take(TINDEX_CANCEL, max, until_mono, tell_backend, NULL);
}
