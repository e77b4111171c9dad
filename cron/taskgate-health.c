/* taskgate-health: the ServerInstance health checks, run from cron (and usable as a
 * Nagios plugin). All logic lives in lib/jobs/health.c and lib/jobs/cronjob.c.
 *
 *   taskgate-health [--for S --every S] [--quiet] [--all] [--max N]
 *
 * Prints one line, "TASKGATE HEALTH OK - 3 up, 0 degraded, 0 down | up=3 ...", for
 * the last run (nothing with --quiet when OK). Exit 0 OK, 1 WARNING (something
 * degraded or down, something up), 2 CRITICAL (servers exist, none up), 3 UNKNOWN
 * (state tree or config.json unusable, usage error). A copy that finds another one
 * running exits 0 at once without a word. When a server comes back from offline,
 * queued tasks are dispatched (bounded) right after the run. */
#include <stdio.h>

#include "model/config.h"
#include "jobs/failover.h"
#include "jobs/cronjob.h"
#include "sched/dispatch.h"
#include "jobs/health.h"
#include "net/http_client.h"

/* Queued work placed after a server came back: bounded, so the health run stays a
 * bounded step (the sweep and request completions drain the rest). */
#define DRAIN_MAX_TASKS 100
#define DRAIN_BUDGET_MS 5000

struct job {
	struct health_opts ho;
	struct health_summary sum;
	bool came_back;
};

static void on_change(const char *server_id, enum server_health from, enum server_health to,
		      void *arg)
{
	struct job *j = arg;
	if (!server_health_routable(from) && server_health_routable(to))
		j->came_back = true;
	failover_on_health_change(server_id, from, to, NULL); /* what every program does */
}

static int step(void *arg)
{
	struct job *j = arg;
	/* An operator's edit of config.json applies from the next run; a broken edit
	 * keeps the last good copy (config_refresh logs it). */
	config_refresh();
	j->came_back = false;
	health_run(&j->ho, &j->sum);
	/* Once per run, after every server lock is released, not once per server. */
	if (j->came_back)
		dispatch_drain(DRAIN_MAX_TASKS, DRAIN_BUDGET_MS);
	return health_summary_exit(&j->sum);
}

int main(int argc, char **argv)
{
	struct job j = {0};
	bool all = false;
	long max_checks = 0;
	const struct cronjob_option extra[] = {
	    {"all", NULL, "check every server now, not only those due", &all, NULL, 0, 0},
	    {"max", "N", "check at most N servers per run, most overdue first", NULL, &max_checks,
	     0, 1000000},
	    {0},
	};
	struct cronjob_opts o;
	int rc = cronjob_parse(argc, argv, "health",
			       "Checks the registered inference servers (HAProxy rise/fall).",
			       extra, &o);
	if (rc >= 0)
		return rc;
	j.ho.all = all;
	j.ho.max_checks = (int)max_checks;
	j.ho.on_change = on_change;
	j.ho.on_change_arg = &j;

	struct buf why = BUF_INIT;
	if (cronjob_open_state("health", &why) < 0) {
		printf("TASKGATE HEALTH UNKNOWN - %s\n", buf_str(&why));
		buf_free(&why);
		config_free();
		return CRONJOB_UNKNOWN;
	}
	buf_free(&why);
	if (http_client_init() < 0) {
		printf("TASKGATE HEALTH UNKNOWN - libcurl does not initialise\n");
		config_free();
		return CRONJOB_UNKNOWN;
	}

	rc = cronjob_run("health", &o, step, &j);
	if (rc == CRONJOB_BUSY) {
		rc = CRONJOB_OK; /* another copy is doing the work */
	} else if (rc == CRONJOB_UNKNOWN) {
		printf("TASKGATE HEALTH UNKNOWN - cannot take the run lock in %s/run\n",
		       config_state_dir());
	} else if (!(o.quiet && rc == CRONJOB_OK)) {
		struct buf line = BUF_INIT;
		health_summary_line(&j.sum, &line);
		puts(buf_str(&line));
		buf_free(&line);
	}
	http_client_cleanup();
	config_free();
	return rc;
}
