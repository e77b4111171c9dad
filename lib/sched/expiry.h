/* expiry: queued tasks that waited too long, and queued tasks nobody can take.
 *
 * A task waits in the queue at most its queueTimeoutSeconds (the request's, or
 * tasks.queueTimeoutSeconds; 0 = for ever), counted from when it was last queued
 * or, after a back-off, from when it became due again (as the queue wait of the
 * statistics). Past that it is FAILED with "no eligible server within N s: <why>",
 * the why in lb/lbwhy.h's words. The same walk finds the tasks no registered server
 * could ever take and writes model/unservable.h's document.
 *
 * Cost: up to max queue entries per run (the head of each priority first, oldest
 * first, as tindex_queue_list reads them), one task file each; a queue longer
 * than max is checked as far as max reaches. The servers are read once a run. */
#ifndef TASKGATE_EXPIRY_H
#define TASKGATE_EXPIRY_H

#include <stdint.h>

struct expiry_summary {
	int checked;	/* queued tasks looked at */
	int expired;	/* of them, FAILED for waiting too long */
	int unservable; /* of them, tasks no registered server could take */
};

/* Checks up to max due queue entries, stopping at until_mono (mono_ms()). */
void queue_expiry_run(int max, int64_t until_mono, struct expiry_summary *s);

#endif
