/* findings: the plain-language part of the performance report and the status page
 * ("gpu-3 failed 40% of its tasks in the last hour (4 of 10)"). Pure: it reads a
 * window's aggregate, the window before it and the live figures, and writes sentences.
 *
 * Rules, in the order they are reported (critical first, then warnings, then notes):
 *   no routable server at all (critical) / none registered (warning);
 *   queued tasks that want what no registered server offers (warning: "3 tasks
 *     want group 'cpu' that no server has", from model/unservable.h);
 *   a server that failed >= failurePct (default 20%; critical from 50%) of at least
 *     minTasks (default 5) attempts in the window;
 *   a model whose finished tasks failed at that rate;
 *   a server offline (warning) or degraded (note), not in maintenance;
 *   the oldest due task waited more than 5 minutes (warning);
 *   the queue wait's p95 in the window above 60 s (note);
 *   a server whose p95 run time is more than twice the median of the servers' p95s
 *     (note; needs two servers with minTasks attempts);
 *   completed tasks fell by half or more against the window before (note; needs 10);
 *   nothing of the above: "no problems found" (note). */
#ifndef TASKGATE_FINDINGS_H
#define TASKGATE_FINDINGS_H

#include <stddef.h>
#include <stdint.h>

#include "stats/stats.h"
#include "stats/statsq.h"

enum finding_level { FINDING_INFO = 0, FINDING_WARNING, FINDING_CRITICAL };
extern const char *const finding_level_name[3];

struct finding {
	enum finding_level level;
	char subject[130]; /* server id, model or "" */
	char text[400];
};

struct findings_input {
	const struct stats_agg *win;
	const struct stats_agg *prev; /* may be NULL */
	const struct statsq_live *live;
	int64_t window_ms;
	int64_t now;
	int min_tasks;	    /* 0: 5 */
	double failure_pct; /* 0: 20 */
};

/* "in the last hour", "in the last 6 hours", "in the last 15 minutes". */
void findings_window_phrase(int64_t window_ms, char *out, size_t n);
/* "12 s", "7 min", "2.5 h" */
void findings_duration(int64_t ms, char *out, size_t n);
/* Returns how many findings are in *out (caller frees; never 0). */
size_t findings_build(const struct findings_input *in, struct finding **out);

#endif
