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

#endif
