#include "jobs/afterwork.h"

#include "base/json.h"
#include "base/util.h"
#include "fs/taskindex.h"
#include "jobs/cronjob.h"
#include "jobs/health.h"
#include "jobs/rollup.h"
#include "jobs/sweep.h"
#include "model/config.h"
#include "sched/cancel.h"
#include "sched/dispatch.h"

/* Each round takes at most this many owed sends and cancels, so a round stays
 * short and the periodic work and drains get their turn. */
#define ROUND_SENDS 64

static bool piggyback_on(void)
{
	return json_bool_or(json_get(config_doc(), "piggyback"), "enabled", true);
}

static int sweep_every(void)
{
	return (int)config_sect_int("piggyback", "sweepSeconds", 30, 1, 86400);
}

static int health_every(void)
{
	return (int)config_sect_int("piggyback", "healthSeconds", 30, 1, 86400);
}

bool afterwork_periodic_due(void)
{
	return piggyback_on() && (cronjob_overdue("sweep", sweep_every()) ||
				  cronjob_overdue("health", health_every()) ||
				  rollup_piggyback_due());
}

/* One bounded step of each overdue job; returns how many ran. */
static int periodic(void)
{
	if (!piggyback_on())
		return 0;
	int ran = 0;
	int fd = cronjob_piggyback_begin("sweep", sweep_every());
	if (fd >= 0) {
		struct sweep_opts o = {.max_timeouts = 20, .max_dispatch = 20,
				       .max_removals = 200, .budget_ms = 2000};
		struct sweep_summary sum;
		sweep_run(&o, &sum);
		cronjob_piggyback_end("sweep", fd, true);
		ran++;
	}
	fd = cronjob_piggyback_begin("health", health_every());
	if (fd >= 0) {
		struct health_opts o = {.max_checks = 20};
		struct health_summary sum;
		health_run(&o, &sum);
		cronjob_piggyback_end("health", fd, true);
		ran++;
	}
	ran += rollup_piggyback();
	return ran;
}

static int round_of_work(void *arg, int64_t until_mono)
{
	(void)arg;
	int did = dispatch_send_pending(ROUND_SENDS, until_mono);
	did += task_cancels_send_pending(ROUND_SENDS, until_mono);
	int64_t left = until_mono - mono_ms();
	if (left > 0 && tindex_drain_take() && !tindex_queue_empty()) {
		int batch = (int)config_sect_int("tasks", "drainBatch", 16, 1, 1000);
		int n = dispatch_drain(batch, (int)(left < 5000 ? left : 5000));
		if (n >= batch)
			tindex_drain_request(); /* more may fit: the next round goes on */
		did += n;
	}
	did += periodic();
	return did;
}

static bool work_pending(void *arg)
{
	(void)arg;
	return !tindex_work_empty(TINDEX_SEND) || !tindex_work_empty(TINDEX_CANCEL) ||
	       tindex_drain_requested();
}

/* Where owed sends, owed cancels and drain requests appear (fs/taskindex.h). */
static const char *const work_dirs[] = {"sending", "cancelling", "run", NULL};

const struct worker_work afterwork = {round_of_work, work_pending, work_dirs, NULL};
