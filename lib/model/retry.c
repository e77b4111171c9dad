#include "model/retry.h"

#include "model/config.h"

void retry_policy_load(struct retry_policy *p)
{
	p->min_backoff_ms = config_sect_int("retry", "minBackoffMs", 1000, 0, 86400000);
	p->max_backoff_ms = config_sect_int("retry", "maxBackoffMs", 300000, 0, 86400000);
	if (p->max_backoff_ms < p->min_backoff_ms)
		p->max_backoff_ms = p->min_backoff_ms;
	p->max_doublings = (int)config_sect_int("retry", "maxDoublings", 5, 0, 30);
	p->jitter = config_sect_num("retry", "jitter", 0.1, 0, 1);
}

int64_t retry_delay_ms(const struct retry_policy *p, int failures)
{
	if (failures < 1)
		failures = 1;
	int doublings = failures - 1 < p->max_doublings ? failures - 1 : p->max_doublings;
	int64_t linear = failures - p->max_doublings > 1 ? failures - p->max_doublings : 1;
	int64_t d = p->min_backoff_ms;
	for (int i = 0; i < doublings && d < p->max_backoff_ms; i++)
		d *= 2;
	if (d < p->max_backoff_ms && linear > 1)
		d = d > p->max_backoff_ms / linear ? p->max_backoff_ms : d * linear;
	return d < p->max_backoff_ms ? d : p->max_backoff_ms;
}

int64_t retry_delay_jittered_ms(const struct retry_policy *p, int failures, double rnd01)
{
	int64_t d = retry_delay_ms(p, failures);
	double factor = 1.0 + p->jitter * (2.0 * rnd01 - 1.0);
	int64_t j = (int64_t)((double)d * factor);
	return j < 0 ? 0 : j;
}
