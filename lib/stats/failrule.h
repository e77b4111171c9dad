/* failrule: the one failure-rate rule, evaluated for the alert rules (stats/alerts.c,
 * kind failure_rate) and for the findings of the report and status page
 * (stats/findings.c).
 *
 * The two count different things on purpose, and the difference is a parameter here:
 *   a server's rate is over attempts: the errors among the attempts it processed
 *     (stats_group_errors / stats_group_processed), since a retried or timed-out
 *     attempt is the server's failure even when the task later succeeds elsewhere;
 *   a model's (or everything's) rate is over tasks: failed among the finished ones
 *     (completed + failed), since the client sees tasks, not attempts.
 * The other difference is the threshold's edge: an alert fires above it, a finding
 * is reported from it on. */
#ifndef TASKGATE_FAILRULE_H
#define TASKGATE_FAILRULE_H

#include <stdbool.h>
#include <stdint.h>

#include "stats/stats.h"

enum failrule_unit {
	FAILRULE_ATTEMPTS, /* a server's processed attempts */
	FAILRULE_TASKS	   /* finished tasks */
};

struct failrule {
	enum failrule_unit unit;
	uint64_t min_finished; /* fewer finished than this never breaches */
	double threshold_pct;
	bool at_threshold; /* a rate equal to the threshold breaches (else only above it) */
};

struct failrate {
	uint64_t failed, finished;
	double pct; /* 100 * failed / finished; 0 when nothing finished */
	bool breached;
};

/* The rule over the group g (NULL: a group with nothing in it). */
void failrule_eval(const struct failrule *rule, const struct stats_group *g, struct failrate *out);

#endif
