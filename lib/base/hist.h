/* hist: a fixed, log-spaced histogram of durations in milliseconds.
 *
 * Every histogram in taskgate has the same buckets (1-2.5-5 per decade, 5 ms to
 * 2500 s, then +Inf), so histograms of different hours, models and servers add up
 * bucket by bucket, and /metrics can expose them as Prometheus histograms without
 * conversion. Alongside the buckets: count, sum, min and max (all exact), so the
 * average is exact and a percentile never lies outside the observed range.
 *
 * Percentiles interpolate linearly inside the bucket that holds the rank
 * (rank = q * count, as Prometheus' histogram_quantile), with the bucket's edges
 * narrowed to [min, max]: ten observations of exactly 1200 ms give p50 = p99 = 1200.
 * The error is otherwise bounded by the bucket width (a factor 2 to 2.5).
 * Pure: no I/O, no clock. */
#ifndef TASKGATE_HIST_H
#define TASKGATE_HIST_H

#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"

#define HIST_FINITE  18		       /* finite upper bounds */
#define HIST_BUCKETS (HIST_FINITE + 1) /* + the +Inf bucket */

/* Upper bounds (inclusive, "le") in ms: 5, 10, 25, 50, 100, ..., 2500000. */
extern const int64_t hist_bounds_ms[HIST_FINITE];

struct hist {
	uint64_t count;
	int64_t sum;		  /* ms */
	int64_t min, max;	  /* meaningful when count > 0 */
	uint64_t b[HIST_BUCKETS]; /* per bucket, not cumulative */
};

#define HIST_INIT                                                                                  \
	{                                                                                          \
		0, 0, 0, 0,                                                                        \
		{                                                                                  \
			0                                                                          \
		}                                                                                  \
	}

/* Index of the bucket that holds ms (negative values count as 0). */
int hist_bucket_of(int64_t ms);
void hist_add(struct hist *h, int64_t ms);
void hist_merge(struct hist *into, const struct hist *from);
bool hist_equal(const struct hist *a, const struct hist *b);
/* The q-quantile (0 < q <= 1) in ms, 0 when empty. */
double hist_quantile(const struct hist *h, double q);
/* sum / count, 0 when empty. */
double hist_mean(const struct hist *h);

/* {"count":n,"sum":ms,"min":ms,"max":ms,"buckets":[...HIST_BUCKETS counts]} */
void hist_to_json(const struct hist *h, struct jgen *g);
/* Reads what hist_to_json wrote; false (and *h zeroed) if v is not such an object. */
bool hist_from_json(yajl_val v, struct hist *h);

#endif
