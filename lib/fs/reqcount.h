/* reqcount: the only code that touches run/requests/, the web front's request
 * counters behind /metrics' taskgate_http_requests_total and
 * taskgate_http_request_duration_seconds.
 *
 * The processes serving requests are many and short-lived (under CGI one per
 * request), so the counters live in one file per host, run/requests/<host>-<table>.bin,
 * which every process maps shared and adds to with atomic adds: no lock, no
 * system call per request, nothing lost when a process is killed. <table> is a
 * hash of the route table, so a new version with other routes starts new counters
 * (Prometheus reads that as a counter reset) instead of misreading old slots.
 * The file is neither fsync'd nor journalled: after a power cut the counters may
 * start again, which Prometheus handles. Several hosts on one tree each have their
 * own file (shared maps are coherent only within a host); /metrics adds them up. */
#ifndef TASKGATE_REQCOUNT_H
#define TASKGATE_REQCOUNT_H

#include <stdint.h>

#include "base/hist.h"

#define REQCOUNT_ROUTES 64 /* route slots, by index in the caller's route table */
#define REQCOUNT_CODES	24 /* the codes below, then one slot for any other */
extern const int reqcount_codes[REQCOUNT_CODES - 1];

struct reqcount_route {
	uint64_t by_code[REQCOUNT_CODES];
	uint64_t count, sum_us;
	uint64_t b[HIST_BUCKETS]; /* durations, in hist's buckets */
};
struct reqcount {
	struct reqcount_route route[REQCOUNT_ROUTES];
};

/* Counts one request on route slot route (0..REQCOUNT_ROUTES-1) answered with code
 * in us microseconds, in this host's file for the route table table. Failures (no
 * room, a file that is not ours) are silent: counting never stops a request. */
void reqcount_add(uint64_t table, int route, int code, int64_t us);
/* Adds up every host's file for table into *out (zeroed first); 0, or -1 when the
 * folder cannot be read. */
int reqcount_read(uint64_t table, struct reqcount *out);

#endif
