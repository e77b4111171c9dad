#include "base/hist.h"

#include <string.h>

const int64_t hist_bounds_ms[HIST_FINITE] = {
    5,	  10,	 25,	50,    100,    250,    500,    1000,	2500,
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

int hist_bucket_of(int64_t ms)
{
	int lo = 0, hi = HIST_FINITE; /* first bound >= ms, HIST_FINITE if none */
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (hist_bounds_ms[mid] >= ms)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void hist_add(struct hist *h, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (h->count == 0 || ms < h->min)
		h->min = ms;
	if (h->count == 0 || ms > h->max)
		h->max = ms;
	h->count++;
	h->sum += ms;
	h->b[hist_bucket_of(ms)]++;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	if (from->count == 0)
		return;
	if (into->count == 0 || from->min < into->min)
		into->min = from->min;
	if (into->count == 0 || from->max > into->max)
		into->max = from->max;
	into->count += from->count;
	into->sum += from->sum;
	for (int i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
}

bool hist_equal(const struct hist *a, const struct hist *b)
{
	if (a->count != b->count || a->sum != b->sum)
		return false;
	if (a->count && (a->min != b->min || a->max != b->max))
		return false;
	return memcmp(a->b, b->b, sizeof a->b) == 0;
}

double hist_mean(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

double hist_quantile(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0.0;
	if (q <= 0)
		return (double)h->min;
	if (q >= 1)
		return (double)h->max;
	double rank = q * (double)h->count;
	uint64_t before = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		if (h->b[i] == 0)
			continue;
		if ((double)(before + h->b[i]) >= rank) {
			double lo = i == 0 ? 0.0 : (double)hist_bounds_ms[i - 1];
			double hi = i == HIST_FINITE ? (double)h->max : (double)hist_bounds_ms[i];
			if (lo < (double)h->min)
				lo = (double)h->min;
			if (hi > (double)h->max)
				hi = (double)h->max;
			if (hi < lo)
				hi = lo;
			return lo + (hi - lo) * ((rank - (double)before) / (double)h->b[i]);
		}
		before += h->b[i];
	}
	return (double)h->max; /* counts disagree with count: be conservative */
}

void hist_to_json(const struct hist *h, struct jgen *g)
{
	jg_obj(g);
	jg_kint(g, "count", (long long)h->count);
	jg_kint(g, "sum", (long long)h->sum);
	jg_kint(g, "min", h->count ? (long long)h->min : 0);
	jg_kint(g, "max", h->count ? (long long)h->max : 0);
	jg_key(g, "buckets");
	jg_arr(g);
	for (int i = 0; i < HIST_BUCKETS; i++)
		jg_int(g, (long long)h->b[i]);
	jg_arr_end(g);
	jg_obj_end(g);
}

bool hist_from_json(yajl_val v, struct hist *h)
{
	memset(h, 0, sizeof *h);
	yajl_val arr = json_get(v, "buckets");
	if (!v || !YAJL_IS_OBJECT(v) || !arr || !YAJL_IS_ARRAY(arr) ||
	    arr->u.array.len != HIST_BUCKETS)
		return false;
	uint64_t total = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		yajl_val x = arr->u.array.values[i];
		if (!YAJL_IS_INTEGER(x) || YAJL_GET_INTEGER(x) < 0) {
			memset(h, 0, sizeof *h);
			return false;
		}
		h->b[i] = (uint64_t)YAJL_GET_INTEGER(x);
		total += h->b[i];
	}
	long long count = json_int_or(v, "count", -1);
	if (count < 0 || (uint64_t)count != total) {
		memset(h, 0, sizeof *h);
		return false;
	}
	h->count = (uint64_t)count;
	h->sum = json_int_or(v, "sum", 0);
	h->min = h->count ? json_int_or(v, "min", 0) : 0;
	h->max = h->count ? json_int_or(v, "max", 0) : 0;
	return true;
}
