/* sweep: the periodic TaskInstance work, in bounded steps.
 *
 *  1. PROCESSING tasks past their deadline (plus a clock margin): the attempt ends
 *     (slot released exactly once, Cog told to cancel), then a retry with backoff
 *     on another server where possible, or FAILED after maxAttempts;
 *  2. the ledger: each server's currentLoad against its PROCESSING tasks; a
 *     difference seen twice, a moment apart, is drift and is corrected (a single
 *     sighting may be a reservation whose task is being written right now);
 *  3. QUEUED tasks whose nextAttemptAt has come are dispatched while capacity lasts;
 *     then those that waited longer than their queueTimeoutSeconds are FAILED, and
 *     those no registered server could take are recorded (sched/expiry.h);
 *  4. servers with no heartbeat and no successful check for staleAfter go offline,
 *     and are unregistered after removeAfter (never while tasks run on them);
 *  5. finished tasks older than retentionDays are removed (their stats stay).
 * Cost is O(active tasks + queued tasks + servers): the history of finished tasks
 * is only touched in hours that have expired. */
#ifndef TASKGATE_SWEEP_H
#define TASKGATE_SWEEP_H

#include <stddef.h>
#include <stdint.h>

struct sweep_opts {
	int max_timeouts;   /* attempts ended per run; 0 = no limit */
	int max_dispatch;   /* queued tasks dispatched per run */
	int max_removals;   /* expired tasks removed per run */
	int budget_ms;	    /* stop starting new work after this long */
};

#define SWEEP_QUEUED_COUNT_MAX 1000

struct sweep_summary {
	int active;	     /* PROCESSING tasks seen */
	int timed_out;	     /* attempts ended by their deadline */
	int failed;	     /* of those, tasks that gave up */
	int dispatched;	     /* queued tasks sent */
	int corrected;	     /* servers whose load was repaired */
	int offline;	     /* servers marked offline as stale */
	int unregistered;    /* servers removed after removeAfter */
	int removed;	     /* expired tasks deleted */
	int expired;	     /* queued tasks FAILED for waiting longer than queueTimeoutSeconds */
	int unservable;	     /* queued tasks no registered server could take */
	int queued;	     /* queue depth after the run, counted up to SWEEP_QUEUED_COUNT_MAX */
	long long elapsed_ms;
};

void sweep_defaults(struct sweep_opts *o);
int sweep_run(const struct sweep_opts *o, struct sweep_summary *s);
/* "TASKGATE SWEEP OK - 3 active, 1 timed out, ... | active=3 ..." */
void sweep_summary_line(const struct sweep_summary *s, int code, char *out, size_t n);
/* OK, or WARNING when the ledger needed repair. */
int sweep_summary_exit(const struct sweep_summary *s);

#endif
