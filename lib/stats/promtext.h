/* promtext: the Prometheus text exposition format, version 0.0.4.
 *
 * Rules kept here so no caller has to remember them: every metric family gets one
 * "# HELP" and one "# TYPE" line before its samples, and all its samples follow in
 * one block; label values escape backslash, double quote and newline; HELP text
 * escapes backslash and newline; values are Go-style floats ("+Inf", "NaN", no
 * thousands separators); histograms have cumulative _bucket samples with an "le"
 * label ending in le="+Inf", then _sum and _count, and the +Inf bucket equals
 * _count. Pure (appends to a buf). */
#ifndef TASKGATE_PROMTEXT_H
#define TASKGATE_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/hist.h"

#define PROMTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom_label {
	const char *name;
	const char *value;
};

/* "# HELP name help\n# TYPE name type\n"; type: counter, gauge, histogram, untyped. */
void prom_family(struct buf *out, const char *name, const char *type, const char *help);
/* name{l1="v1",...} value\n (no braces when nlabels is 0). */
void prom_sample(struct buf *out, const char *name, const struct prom_label *labels, size_t nlabels,
		 double value);
/* The samples of one histogram (durations in ms exposed in seconds): name_bucket{...,
 * le="..."} for every bound and +Inf, name_sum, name_count. */
void prom_histogram(struct buf *out, const char *name, const struct prom_label *labels,
		    size_t nlabels, const struct hist *h);
/* The same from its parts: per-bucket counts (hist's buckets), count, and the sum
 * in seconds (for sums finer than hist's milliseconds). */
void prom_histogram_parts(struct buf *out, const char *name, const struct prom_label *labels,
			  size_t nlabels, const uint64_t b[HIST_BUCKETS], uint64_t count,
			  double sum_seconds);
/* Value text: integers exactly, others with up to 15 significant digits. */
void prom_value(char *out, size_t n, double v);
void prom_escape_label(struct buf *out, const char *value);

#endif
