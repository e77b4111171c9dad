/* metrics: the Prometheus text exposition of GET /metrics. Counters are all-time
 * (folded totals plus the raw events of the hours not folded yet), so they only grow;
 * histograms use the fixed buckets of base/hist.h in seconds; gauges are read live
 * from the indexes and the server registry. */
#ifndef TASKGATE_METRICS_H
#define TASKGATE_METRICS_H

#include <stdint.h>

#include "base/buf.h"
#include "stats/stats.h"
#include "stats/statsq.h"

/* What the exposition is made from (filled by metrics_text). */
struct metrics_input {
	int64_t now;
	int64_t rollup_last_run; /* ms, 0: never */
	const char *version;
	struct stats_agg a;
	struct statsq_info info;
	struct statsq_live live;
};

/* Replaces out with the whole exposition. rollup_last_run: when the rollup last ran
 * (0: never); version: the taskgate_build_info label. */
void metrics_text(struct buf *out, int64_t now, int64_t rollup_last_run, const char *version);

/* A route as the request metrics label it. */
struct metrics_route {
	const char *method, *pattern;
};
/* Appends taskgate_http_requests_total{method,route,code} and
 * taskgate_http_request_duration_seconds{method,route} from every host's counters
 * (fs/reqcount) for the table of n routes (slot n: requests no route took, labelled
 * route=""), whose hash is table. */
void metrics_requests_text(struct buf *out, uint64_t table, const struct metrics_route *routes,
			   size_t n);

#endif
