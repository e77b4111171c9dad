/* retry: Cloud Tasks' backoff. Delay before retry n (n >= 1 failures so far):
 *   min(maxBackoff, minBackoff * 2^min(n-1, maxDoublings) * max(1, n - maxDoublings))
 * i.e. doubling maxDoublings times, then growing linearly, capped; plus jitter. */
#ifndef TASKGATE_RETRY_H
#define TASKGATE_RETRY_H

#include <stdint.h>

struct retry_policy {
	int64_t min_backoff_ms;
	int64_t max_backoff_ms;
	int max_doublings;
	double jitter; /* fraction: 0.1 = up to +-10% */
};

/* Defaults, overridden by config.json section "retry"
 * {minBackoffMs, maxBackoffMs, maxDoublings, jitter}. */
void retry_policy_load(struct retry_policy *p);
/* The delay without jitter. */
int64_t retry_delay_ms(const struct retry_policy *p, int failures);
/* With jitter; rnd01 is a uniform random number in [0, 1). */
int64_t retry_delay_jittered_ms(const struct retry_policy *p, int failures, double rnd01);

#endif
