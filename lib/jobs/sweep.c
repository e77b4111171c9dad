#include "jobs/sweep.h"
#include "base/hour.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sched/backend.h"
#include "model/config.h"
#include "sched/cancel.h"
#include "sched/dispatch.h"
#include "sched/expiry.h"
#include "sched/server_health.h"
#include "fs/journal.h"
#include "base/log.h"
#include "model/server.h"
#include "fs/store.h"
#include "fs/taskfiles.h"
#include "fs/taskindex.h"
#include "base/util.h"

void sweep_defaults(struct sweep_opts *o)
{
	o->max_timeouts = 500;
	o->max_dispatch = 200;
	o->max_removals = 5000;
	o->budget_ms = 20000;
}

/* ---- 1. timeouts ---- */

struct timeout_ctx {
	const struct sweep_opts *o;
	struct sweep_summary *s;
	int64_t until, margin_ms;
};

static void cancel_on_backend(const char *server_id, const char *task_id, int attempt)
{
	struct server srv;
	char pid[64];
	if (server_load(server_id, &srv) != STORE_OK)
		return;
	snprintf(pid, sizeof pid, "%s-%d", task_id, attempt);
	/* The backend hears of the end only once the tree has it on disk. */
	if (journal_commit() < 0)
		log_warn("cancel of %s on %s: the state tree could not be made durable", pid,
			 server_id);
	else
		backend_cancel(&srv, pid);
	server_free(&srv);
}

static int check_deadline(const char *id, int entry_attempt, void *arg)
{
	struct timeout_ctx *c = arg;
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK) {
		tindex_active_remove(id, entry_attempt);
		return 0;
	}
	struct task t;
	task_from_doc(doc, &t);
	struct task_attempt *a = task_current_attempt(&t);
	if (entry_attempt && a && entry_attempt < a->n) {
		/* An ended attempt's entry beside its successor's: a leftover. */
		tindex_active_remove(id, entry_attempt);
	} else if (entry_attempt && a && entry_attempt > a->n) {
		/* The claim that wrote it has not written the task yet, or died
		 * before: the same grace as below. */
		if (now_ms() - t.updated_at > 10000)
			tindex_active_remove(id, entry_attempt);
	} else if (t.status != TASK_PROCESSING || !a) {
		/* Written before the task became PROCESSING, removed after it left: a
		 * task in any other state here is a leftover hint. Give a dispatch in
		 * progress a moment before dropping it. */
		if (now_ms() - t.updated_at > 10000)
			tindex_active_remove(id, entry_attempt);
	} else {
		c->s->active++;
		if (t.deadline && now_ms() > t.deadline + c->margin_ms &&
		    (!c->o->max_timeouts || c->s->timed_out < c->o->max_timeouts) &&
		    mono_ms() < c->until) {
			char why[160], server_id[65];
			int attempt = a->n;
			snprintf(server_id, sizeof server_id, "%s", a->server_id);
			snprintf(why, sizeof why, "no result from %s within %d s", server_id,
				 t.timeout_s);
			struct end_request end = {.attempt = attempt, .kind = END_TIMEOUT,
						  .error = why};
			struct buf after = BUF_INIT;
			if (dispatch_end_attempt(id, &end, &after) == END_DONE) {
				c->s->timed_out++;
				yajl_val now_doc = json_parse(after.data, after.len, NULL, NULL);
				if (now_doc && strcmp(json_str_or(now_doc, "status", ""), "FAILED") == 0)
					c->s->failed++;
				if (now_doc)
					yajl_tree_free(now_doc);
				/* Only a server that took the attempt failed to finish it; one
				 * never told (taskgate's process died before or while sending)
				 * is not to blame. */
				if (a->accepted_at) {
					log_info("task %s attempt %d timed out on %s", id, attempt,
						 server_id);
					health_record_passive(server_id, false, 0);
				} else {
					log_info("task %s attempt %d timed out before %s acknowledged "
						 "it: not counted against the server",
						 id, attempt, server_id);
				}
				cancel_on_backend(server_id, id, attempt);
			}
			buf_free(&after);
		}
	}
	task_free(&t);
	yajl_tree_free(doc);
	return 0;
}

/* ---- 4. stale servers ---- */

/* The last sign of life: a heartbeat, a passing check, the registration; a server
 * whose last check answered STARTING counts as alive until its setup grace ends
 * (the health rules judge it), so a long setup is neither stale nor removed. One
 * that never answered gets no such credit. */
static int64_t last_alive(const struct server *s, int64_t setup_grace_ms)
{
	int64_t alive = s->last_heartbeat;
	if (s->last_success_at > alive)
		alive = s->last_success_at;
	if (s->registered_at > alive)
		alive = s->registered_at;
	if (s->health == HEALTH_STARTING && s->setup_since > 0 &&
	    strcmp(s->last_check.verdict, "starting") == 0 &&
	    s->setup_since + setup_grace_ms > alive)
		alive = s->setup_since + setup_grace_ms;
	return alive;
}

struct stale_arg {
	int64_t now, stale_ms, setup_grace_ms;
	bool marked;
};

static int mark_offline_edit(struct server *s, void *arg)
{
	struct stale_arg *a = arg;
	int64_t alive = last_alive(s, a->setup_grace_ms);
	if (s->health == HEALTH_OFFLINE || a->now - alive <= a->stale_ms)
		return STORE_UNCHANGED;
	s->health = HEALTH_OFFLINE;
	s->status_since = a->now;
	s->check_counter = 0;
	a->marked = true;
	return STORE_OK;
}

struct server_ctx {
	struct sweep_summary *s;
	int64_t now, stale_ms, remove_ms, setup_grace_ms;
};

static int check_server(const char *id, void *arg)
{
	struct server_ctx *c = arg;
	struct server srv;
	if (server_load(id, &srv) != STORE_OK)
		return 0;
	int64_t alive = last_alive(&srv, c->setup_grace_ms);
	bool stale = c->now - alive > c->stale_ms;
	bool expired = c->now - alive > c->remove_ms;
	int load = srv.current_load;
	server_free(&srv);
	if (expired && load == 0) {
		if (store_remove("servers", id) == STORE_OK) {
			c->s->unregistered++;
			log_warn("server %s unregistered: no sign of life for %lld s", id,
				 (long long)((c->now - alive) / 1000));
		}
		return 0;
	}
	if (stale) {
		struct stale_arg a = {c->now, c->stale_ms, c->setup_grace_ms, false};
		if (server_update(id, mark_offline_edit, &a, NULL) == STORE_OK && a.marked) {
			c->s->offline++;
			log_warn("server %s offline: no heartbeat or passing check for %lld s", id,
				 (long long)((c->now - alive) / 1000));
		}
	}
	return 0;
}

/* ---- 5. retention ---- */

static bool remove_expired_task(const char *id, int64_t cutoff)
{
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK)
		return true; /* gone already: the index entry can go too */
	bool finished = false;
	int st = task_status_from_name(json_str_or(doc, "status", ""));
	int64_t done_at = json_int_or(doc, "completedAt", 0);
	const char *key = json_str_or(doc, "idempotencyKey", NULL);
	if (st >= 0 && task_status_terminal((enum task_status)st) && done_at && done_at < cutoff) {
		if (key) {
			char kid[65];
			sha256_hex(key, strlen(key), kid);
			store_remove("idempotency", kid);
		}
		/* Files first: a crash between the two leaves a task whose files
		 * answer 404, never files no task points to. */
		if (taskfile_remove_all(id) < 0)
			log_warn("sweep: files of task %s not removed; tried again next time", id);
		else
			finished = store_remove("tasks", id) == STORE_OK;
	}
	yajl_tree_free(doc);
	return finished;
}

struct retention_walk {
	const struct sweep_opts *o;
	struct sweep_summary *s;
	int64_t cutoff, until;
};

static int expire_one(const char *id, void *arg)
{
	struct retention_walk *w = arg;
	if (w->s->removed >= w->o->max_removals || mono_ms() >= w->until)
		return -1;
	if (!remove_expired_task(id, w->cutoff))
		return 0;
	w->s->removed++;
	return 1;
}

/* finished/'s entries follow their tasks: dropped once retention removed them. */
static int drop_if_gone(const char *id, void *arg)
{
	struct retention_walk *w = arg;
	if (mono_ms() >= w->until)
		return -1;
	return store_exists("tasks", id) ? 0 : 1;
}

static void retention(const struct sweep_opts *o, struct sweep_summary *s, int64_t until)
{
	int days = (int)config_sect_int("sweep", "retentionDays", 7, 1, 3650);
	struct retention_walk w = {o, s, now_ms() - (int64_t)days * 86400000, until};
	char cutoff_hour[HOUR_NAME_LEN + 1];
	hour_name(w.cutoff, cutoff_hour);
	tindex_created_expire(cutoff_hour, expire_one, &w);
	tindex_finished_expire(cutoff_hour, drop_if_gone, &w);
}

/* ---- the run ---- */

int sweep_run(const struct sweep_opts *o, struct sweep_summary *s)
{
	int64_t start = mono_ms();
	int64_t until = start + o->budget_ms;
	memset(s, 0, sizeof *s);
	/* Regular checkpoints keep replay short after a crash and make every record
	 * older than the retention below redundant, so no replay can bring back a
	 * task it removes (retention is counted in days, checkpoints in seconds). */
	if (journal_checkpoint_every(config_int("journalCheckpointSeconds", 60, 1, 3600) * 1000) <
	    0)
		log_error("sweep: journal checkpoint failed");

	struct timeout_ctx tc = {o, s, until,
				 config_sect_int("sweep", "clockMarginMs", 2000, 0, 600000)};
	tindex_active_each(check_deadline, &tc);

	s->corrected = dispatch_rebuild_load();

	/* Sends and cancels owed to backends that no worker took (none could start,
	 * or one was killed before its claim). */
	s->dispatched = dispatch_send_pending(o->max_dispatch, until);
	task_cancels_send_pending(o->max_dispatch, until);
	if (mono_ms() < until) {
		int left = (int)(until - mono_ms());
		s->dispatched += dispatch_drain(o->max_dispatch, left);
	}

	/* After the dispatch: a task a server can take now is sent, not expired. */
	if (mono_ms() < until) {
		struct expiry_summary ex;
		queue_expiry_run((int)config_sect_int("sweep", "maxQueueChecks", 5000, 1, 1000000),
				 until, &ex);
		s->expired = ex.expired;
		s->unservable = ex.unservable;
	}

	struct health_cfg hc;
	health_cfg_load(&hc);
	struct server_ctx sc = {
		s, now_ms(),
		config_sect_int("sweep", "staleAfterSeconds", 600, 10, 86400 * 30) * 1000,
		config_sect_int("sweep", "removeAfterSeconds", 7 * 86400, 60, 86400 * 365) * 1000,
		hc.setup_grace_ms,
	};
	if (sc.remove_ms < sc.stale_ms)
		sc.remove_ms = sc.stale_ms;
	store_list("servers", check_server, &sc);

	retention(o, s, until);
	store_clean_temp("servers", 3600);
	store_clean_temp(STORE_ROOT, 3600);

	/* Counted no further than SWEEP_QUEUED_COUNT_MAX: the sweep's cost follows the
	 * active tasks, not the queue (the summary then says "at least"). */
	s->queued = (int)tindex_queue_depth_upto(SWEEP_QUEUED_COUNT_MAX);
	s->elapsed_ms = mono_ms() - start;
	return 0;
}

int sweep_summary_exit(const struct sweep_summary *s)
{
	return s->corrected ? 1 : 0;
}

void sweep_summary_line(const struct sweep_summary *s, int code, char *out, size_t n)
{
	static const char *const words[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
	snprintf(out, n,
		 "TASKGATE SWEEP %s - %d active, %d timed out, %d failed, %d dispatched, %d "
		 "queued, %d load corrections | active=%d timed_out=%d failed=%d dispatched=%d "
		 "queued=%d corrected=%d offline=%d unregistered=%d removed=%d expired=%d "
		 "unservable=%d elapsed_ms=%lld",
		 words[code & 3], s->active, s->timed_out, s->failed, s->dispatched, s->queued,
		 s->corrected, s->active, s->timed_out, s->failed, s->dispatched, s->queued,
		 s->corrected, s->offline, s->unregistered, s->removed, s->expired, s->unservable,
		 s->elapsed_ms);
}
