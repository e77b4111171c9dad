/* taskgate-sweep: task timeouts and retries, queue drain, load ledger repair, stale
 * servers and retention, run from cron. All logic lives in lib/sweep.c.
 *
 *   taskgate-sweep [--for S --every S] [--quiet]
 *
 * Exit 0 OK, 1 WARNING (the load ledger needed repair), 3 UNKNOWN (state tree or
 * config unusable, usage error). A copy that finds another one running exits 0. */
#include <stdio.h>

#include "model/config.h"
#include "jobs/cronjob.h"
#include "jobs/sweep.h"
#include "net/http_client.h"

struct job {
	struct sweep_opts so;
	struct sweep_summary sum;
};

static int step(void *arg)
{
	struct job *j = arg;
	config_refresh();
	sweep_run(&j->so, &j->sum);
	return sweep_summary_exit(&j->sum);
}

int main(int argc, char **argv)
{
	struct job j;
	struct cronjob_opts o;
	sweep_defaults(&j.so);
	int rc = cronjob_parse(argc, argv, "sweep",
			       "Times out and retries tasks, drains the queue, repairs loads.",
			       NULL, &o);
	if (rc >= 0)
		return rc;
	struct buf why = BUF_INIT;
	if (cronjob_open_state("sweep", &why) < 0) {
		printf("TASKGATE SWEEP UNKNOWN - %s\n", buf_str(&why));
		buf_free(&why);
		config_free();
		return CRONJOB_UNKNOWN;
	}
	buf_free(&why);
	http_client_init();
	rc = cronjob_run("sweep", &o, step, &j);
	if (rc == CRONJOB_BUSY) {
		rc = CRONJOB_OK;
	} else if (rc == CRONJOB_UNKNOWN) {
		printf("TASKGATE SWEEP UNKNOWN - cannot take the run lock in %s/run\n",
		       config_state_dir());
	} else if (!(o.quiet && rc == CRONJOB_OK)) {
		char line[512];
		sweep_summary_line(&j.sum, rc, line, sizeof line);
		puts(line);
	}
	http_client_cleanup();
	config_free();
	return rc;
}
