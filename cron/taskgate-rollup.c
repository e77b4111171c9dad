/* taskgate-rollup: folds finished hours of the event log into stats/hourly and
 * stats/totals.json, then evaluates the alert rules (webhook on every change). All
 * logic lives in lib/rollup.c, lib/alerts.c and lib/cronjob.c.
 *
 *   taskgate-rollup [--for S --every S] [--quiet] [--max-hours N] [--no-alerts]
 *   taskgate-rollup --check      verify totals against the hourly documents
 *   taskgate-rollup --rebuild    rewrite totals from the hourly documents
 *
 * Prints one line, "TASKGATE ROLLUP OK - 3 hours folded, 0 alerts firing | folded=3
 * ...". With --quiet it prints nothing unless a run failed or an alert fired or
 * resolved. Exit 0 OK, 1 WARNING (alerts firing, or unreadable event lines), 2 CRITICAL
 * (the stats tree could not be written; --check: inconsistent), 3 UNKNOWN (state tree
 * or config.json unusable, usage error). A copy that finds another one running exits
 * 0 at once. */
#include <stdio.h>
#include <string.h>

#include "stats/alerts.h"
#include "model/config.h"
#include "jobs/cronjob.h"
#include "jobs/rollup.h"
#include "net/http_client.h"

struct job {
	long max_hours;
	bool no_alerts;
	struct rollup_result last;
	struct alerts_result alerts;
	/* over the whole --for loop */
	int folded, refolded, recovered, changes;
	bool failed;
};

static int step(void *arg)
{
	struct job *j = arg;
	struct rollup_opts o = ROLLUP_OPTS_DEFAULT;
	o.max_hours = (int)j->max_hours;
	config_refresh();
	int rc = rollup_run(&o, &j->last);
	j->folded += j->last.folded;
	j->refolded += j->last.refolded;
	j->recovered += j->last.recovered;
	memset(&j->alerts, 0, sizeof j->alerts);
	if (!j->no_alerts) {
		struct alerts_opts ao = ALERTS_OPTS_DEFAULT;
		if (alerts_run(&ao, &j->alerts) < 0)
			rc = -1;
		j->changes += j->alerts.fired + j->alerts.resolved;
	}
	if (rc < 0) {
		j->failed = true;
		return CRONJOB_CRITICAL;
	}
	return j->alerts.firing > 0 || j->last.bad > 0 ? CRONJOB_WARNING : CRONJOB_OK;
}

static void summary(const struct job *j, int rc)
{
	static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
	const struct rollup_result *r = &j->last;
	printf("TASKGATE ROLLUP %s - %d hour%s folded", names[rc >= 0 && rc <= 3 ? rc : 3],
	       j->folded, j->folded == 1 ? "" : "s");
	if (j->refolded)
		printf(", %d re-folded", j->refolded);
	if (j->recovered)
		printf(", %d recovered", j->recovered);
	if (r->pending)
		printf(", %d left for the next run", r->pending);
	if (r->bad)
		printf(", %llu unreadable event lines", (unsigned long long)r->bad);
	if (r->errors)
		printf(", %d write errors", r->errors);
	if (!j->no_alerts)
		printf(", %d alert%s firing", j->alerts.firing, j->alerts.firing == 1 ? "" : "s");
	printf(" | folded=%d refolded=%d recovered=%d pending=%d lines=%llu bad=%llu "
	       "removed=%d firing=%d fired=%d resolved=%d notified=%d\n",
	       j->folded, j->refolded, j->recovered, r->pending, (unsigned long long)r->lines,
	       (unsigned long long)r->bad, r->removed, j->alerts.firing, j->alerts.fired,
	       j->alerts.resolved, j->alerts.notified);
}

int main(int argc, char **argv)
{
	struct job j = {0};
	bool check = false, rebuild = false;
	const struct cronjob_option extra[] = {
	    {"max-hours", "N", "fold at most N hours per run (0: all; default 0)", NULL,
	     &j.max_hours, 0, 1000000},
	    {"no-alerts", NULL, "do not evaluate the alert rules", &j.no_alerts, NULL, 0, 0},
	    {"check", NULL, "verify totals.json against the hourly documents and exit", &check,
	     NULL, 0, 0},
	    {"rebuild", NULL, "rewrite totals.json from the hourly documents and exit", &rebuild,
	     NULL, 0, 0},
	    {0},
	};
	struct cronjob_opts o;
	int rc = cronjob_parse(argc, argv, ROLLUP_JOB,
			       "Folds finished hours of the event log into hourly documents and "
			       "totals, and evaluates the alert rules.",
			       extra, &o);
	if (rc >= 0)
		return rc;

	struct buf why = BUF_INIT;
	if (cronjob_open_state(ROLLUP_JOB, &why) < 0) {
		printf("TASKGATE ROLLUP UNKNOWN - %s\n", buf_str(&why));
		buf_free(&why);
		config_free();
		return CRONJOB_UNKNOWN;
	}
	buf_free(&why);

	if (check || rebuild) {
		/* Under the run lock, so a running fold is not caught half way. */
		int fd = cronjob_lock(ROLLUP_JOB);
		if (fd < 0) {
			printf("TASKGATE ROLLUP UNKNOWN - another rollup is running; try again\n");
			config_free();
			return CRONJOB_UNKNOWN;
		}
		if (rebuild) {
			rc = rollup_rebuild() == 0 ? CRONJOB_OK : CRONJOB_CRITICAL;
			printf("TASKGATE ROLLUP %s - totals %s\n", rc ? "CRITICAL" : "OK",
			       rc ? "could not be rewritten" : "rebuilt from the hourly documents");
		} else {
			struct buf report = BUF_INIT;
			int c = rollup_check(&report);
			rc = c == 0 ? CRONJOB_OK : c > 0 ? CRONJOB_CRITICAL : CRONJOB_UNKNOWN;
			printf("TASKGATE ROLLUP %s - totals %s\n",
			       rc == CRONJOB_OK		? "OK"
			       : rc == CRONJOB_CRITICAL ? "CRITICAL"
							: "UNKNOWN",
			       c == 0 ? "match the hourly documents"
				      : "do not match the hourly documents");
			fputs(buf_str(&report), stdout);
			buf_free(&report);
		}
		cronjob_unlock(fd);
		config_free();
		return rc;
	}

	if (http_client_init() < 0) {
		printf("TASKGATE ROLLUP UNKNOWN - libcurl does not initialise\n");
		config_free();
		return CRONJOB_UNKNOWN;
	}
	rc = cronjob_run(ROLLUP_JOB, &o, step, &j);
	if (rc == CRONJOB_BUSY) {
		rc = CRONJOB_OK; /* another copy is doing the work */
	} else if (rc == CRONJOB_UNKNOWN) {
		printf("TASKGATE ROLLUP UNKNOWN - cannot take the run lock in %s/run\n",
		       config_state_dir());
	} else if (!o.quiet || j.failed || j.changes > 0) {
		summary(&j, rc);
	}
	http_client_cleanup();
	config_free();
	return rc;
}
