#include "jobs/failover.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/taskindex.h"
#include "model/task.h"
#include "sched/dispatch.h"

struct down_ctx {
	const char *server_id;
	int ended, seen;
	int64_t until;
};

static int end_if_on_server(const char *id, int attempt, void *arg)
{
	(void)attempt; /* the task file says which attempt runs */
	struct down_ctx *c = arg;
	if (c->seen++ >= FAILOVER_MAX_TASKS * 10 || c->ended >= FAILOVER_MAX_TASKS ||
	    mono_ms() >= c->until)
		return 1; /* the rest keep their deadlines */
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK)
		return 0;
	struct task t;
	task_from_doc(doc, &t);
	struct task_attempt *a = task_current_attempt(&t);
	if (t.status == TASK_PROCESSING && a && !a->ended_at &&
	    strcmp(a->server_id, c->server_id) == 0) {
		char why[128];
		snprintf(why, sizeof why, "server %s went offline", c->server_id);
		/* Only the current attempt ends: one that moved on meanwhile is
		 * refused as not current, and left alone. */
		struct end_request end = {.attempt = a->n, .kind = END_ERROR, .error = why};
		if (dispatch_end_attempt(id, &end, NULL) == END_DONE) {
			c->ended++;
			log_info("task %s attempt %d: %s; retried elsewhere", id, end.attempt, why);
		}
	}
	task_free(&t);
	yajl_tree_free(doc);
	return 0;
}

int failover_server_down(const char *server_id)
{
	struct down_ctx c = {.server_id = server_id, .until = mono_ms() + FAILOVER_BUDGET_MS};
	tindex_active_each(end_if_on_server, &c);
	/* The ended tasks wait for their retry: a drain sends them where they fit. */
	if (c.ended)
		tindex_drain_request();
	return c.ended;
}

void failover_on_health_change(const char *server_id, enum server_health from,
			       enum server_health to, void *arg)
{
	(void)arg;
	/* A server that answers STARTING after being up has restarted: what ran on
	 * it is gone, as on one gone offline. */
	bool was = server_health_routable(from), is = server_health_routable(to);
	if (was && !is)
		failover_server_down(server_id);
	else if (!was && is)
		tindex_drain_request();
}
