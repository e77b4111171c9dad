#include "stats/promtext.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "stats/stats.h"

void prom_value(char *out, size_t n, double v)
{
	if (isnan(v))
		snprintf(out, n, "NaN");
	else if (isinf(v))
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(out, n, "%.0f", v);
	else
		snprintf(out, n, "%.15g", v);
}

void prom_escape_label(struct buf *out, const char *value)
{
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\')
			buf_adds(out, "\\\\");
		else if (*p == '"')
			buf_adds(out, "\\\"");
		else if (*p == '\n')
			buf_adds(out, "\\n");
		else
			buf_addch(out, *p);
	}
}

static void escape_help(struct buf *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			buf_adds(out, "\\\\");
		else if (*p == '\n')
			buf_adds(out, "\\n");
		else
			buf_addch(out, *p);
	}
}

void prom_family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s ", name);
	escape_help(out, help);
	buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void labels_open(struct buf *out, const struct prom_label *labels, size_t n,
			const char *extra_name, const char *extra_value)
{
	if (n == 0 && !extra_name)
		return;
	buf_addch(out, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addch(out, ',');
		buf_printf(out, "%s=\"", labels[i].name);
		prom_escape_label(out, labels[i].value);
		buf_addch(out, '"');
	}
	if (extra_name) {
		if (n)
			buf_addch(out, ',');
		buf_printf(out, "%s=\"%s\"", extra_name, extra_value);
	}
	buf_addch(out, '}');
}

void prom_sample(struct buf *out, const char *name, const struct prom_label *labels, size_t nlabels,
		 double value)
{
	char v[64];
	prom_value(v, sizeof v, value);
	buf_adds(out, name);
	labels_open(out, labels, nlabels, NULL, NULL);
	buf_printf(out, " %s\n", v);
}

void prom_histogram_parts(struct buf *out, const char *name, const struct prom_label *labels,
			  size_t nlabels, const uint64_t b[HIST_BUCKETS], uint64_t count,
			  double sum_seconds)
{
	char le[32], v[64];
	uint64_t cum = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		cum += b[i];
		if (i < HIST_FINITE)
			stats_fmt_num(le, sizeof le, (double)hist_bounds_ms[i] / 1000.0, 3);
		else
			snprintf(le, sizeof le, "+Inf");
		buf_printf(out, "%s_bucket", name);
		labels_open(out, labels, nlabels, "le", le);
		buf_printf(out, " %llu\n", (unsigned long long)cum);
	}
	prom_value(v, sizeof v, sum_seconds);
	buf_printf(out, "%s_sum", name);
	labels_open(out, labels, nlabels, NULL, NULL);
	buf_printf(out, " %s\n", v);
	buf_printf(out, "%s_count", name);
	labels_open(out, labels, nlabels, NULL, NULL);
	buf_printf(out, " %llu\n", (unsigned long long)count);
}

void prom_histogram(struct buf *out, const char *name, const struct prom_label *labels,
		    size_t nlabels, const struct hist *h)
{
	prom_histogram_parts(out, name, labels, nlabels, h->b, h->count, (double)h->sum / 1000.0);
}
