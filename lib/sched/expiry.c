#include "sched/expiry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "lb/lbwhy.h"
#include "model/server.h"
#include "model/task.h"
#include "model/unservable.h"
#include "stats/events.h"

/* The expiry changes nothing unless the task is still the one the walk saw. */
#define EXPIRY_MOVED (STORE_EDIT_BASE + 74)
/* Servers read for the reasons (as many as a listing shows). */
#define EXPIRY_SERVERS_MAX 10000

struct expire_arg {
	const char *queue_key;
	const char *why;
	struct task view; /* model and id, for the event */
	char model[129];
};

static int expire_edit(struct task *t, void *arg)
{
	struct expire_arg *x = arg;
	bool waiting = t->status == TASK_QUEUED || t->status == TASK_PENDING;
	/* Dispatched, cancelled or re-queued since the walk read it. */
	if (!waiting || strcmp(t->queue_key, x->queue_key) != 0)
		return EXPIRY_MOVED;
	if (!task_set_status(t, TASK_FAILED, now_ms()))
		return TASK_ILLEGAL_MOVE;
	snprintf(x->model, sizeof x->model, "%s", t->model);
	t->queue_key[0] = '\0';
	t->next_attempt_at = 0;
	task_set_error(t, "%s", x->why);
	return STORE_OK;
}

static bool expire(const char *id, const char *queue_key, const char *why)
{
	struct expire_arg x = {.queue_key = queue_key, .why = why};
	if (task_update(id, expire_edit, &x, NULL) != STORE_OK)
		return false;
	tindex_queue_remove(queue_key);
	snprintf(x.view.id, sizeof x.view.id, "%s", id);
	x.view.model = x.model;
	events_task("failed", &x.view, NULL, 0);
	log_info("task %s failed in the queue: %s", id, why);
	return true;
}

static void check_one(const struct tindex_entry *e, int64_t since, const struct server_list *fleet,
		      struct unservable *u, struct expiry_summary *s)
{
	yajl_val doc;
	if (task_load_doc(e->id, &doc) != STORE_OK)
		return;
	struct task t;
	task_from_doc(doc, &t);
	bool waiting = t.status == TASK_QUEUED || t.status == TASK_PENDING;
	/* A stale hint (the task moved on) is the dispatcher's to drop. */
	if (waiting && strcmp(t.queue_key, e->key) == 0) {
		s->checked++;
		struct lb_task want = {.model = t.model, .group = t.group, .tags = &t.tags};
		struct lb_unmet unmet;
		lb_unmet(fleet->v, fleet->n, &want, &unmet);
		int64_t waited = now_ms() - since;
		bool expired = false;
		if (t.queue_timeout_s > 0 && waited > (int64_t)t.queue_timeout_s * 1000) {
			char reason[420], why[512];
			lb_why_waiting(fleet->v, fleet->n, &want, reason, sizeof reason);
			snprintf(why, sizeof why, "no eligible server within %d s: %s",
				 t.queue_timeout_s, reason);
			expired = expire(t.id, e->key, why);
			s->expired += expired;
		}
		/* An expired task waits for nobody any more. */
		if (!expired && unmet.kind != LB_MET && unmet.kind != LB_UNMET_NO_SERVER) {
			char text[400];
			lb_unmet_text(&unmet, &want, text, sizeof text);
			unservable_add(u, text, t.model ? t.model : "", t.id, since);
			s->unservable++;
		}
	}
	task_free(&t);
	yajl_tree_free(doc);
}

void queue_expiry_run(int max, int64_t until_mono, struct expiry_summary *s)
{
	memset(s, 0, sizeof *s);
	struct unservable u;
	memset(&u, 0, sizeof u);
	struct tindex_entry *e = NULL;
	/* (An empty queue is not listed: tindex_queue_list() would hand qsort() NULL.) */
	size_t n = tindex_queue_empty() ? 0 : tindex_queue_list(&e, (size_t)max);
	struct server_list fleet = {0};
	if (n)
		server_list_load(&fleet, EXPIRY_SERVERS_MAX);
	int64_t now = now_ms();
	bool complete = true;
	for (size_t i = 0; i < n; i++) {
		if (mono_ms() >= until_mono) {
			complete = false;
			break;
		}
		int64_t since = tindex_entry_waiting_since(&e[i]);
		if (since > now)
			continue; /* backing off before a retry: not waiting for a server */
		check_one(&e[i], since, &fleet, &u, s);
	}
	/* A walk cut short by the budget saw only part of the queue: keep what the
	 * last whole walk found rather than report less than is there. */
	if (complete && unservable_save(&u) == STORE_IO)
		log_warn("expiry: the unservable tasks could not be recorded");
	server_list_free(&fleet);
	free(e);
}
