/* rollupdoc: the rollup's documents, the folded form of the event log, and their
 * readers (the queries of stats/statsq.c and the rollup job both read them).
 *
 *   stats/events/<H>.jsonl   raw events of hour H (stats/events.c appends)
 *   stats/hourly/<H>.json    the folded hour: counts, histograms, status time, the
 *                            servers' state at the hour's end, and "source": the
 *                            byte size of the events file it was folded from
 *   stats/totals.json        "folded": {H: bytes} and the sum of those hours' documents
 *
 * Writing them, and the invariants that make writing crash-safe, are the rollup job's
 * (jobs/rollup.h). */
#ifndef TASKGATE_ROLLUPDOC_H
#define TASKGATE_ROLLUPDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "stats/stats.h"

struct rollup_folded {
	int64_t hour;
	uint64_t bytes; /* size of the events file when it was folded (0: none) */
};

struct rollup_totals {
	struct rollup_folded *f; /* ascending */
	size_t n, cap;
	struct stats_agg agg;
};

struct rollup_doc {
	int64_t hour;
	uint64_t bytes, lines, bad;
	struct stats_agg agg;	  /* with status time */
	struct stats_state state; /* at the hour's end */
};

void rollup_totals_free(struct rollup_totals *t);
/* STORE_OK, STORE_NOENT (empty totals), STORE_CORRUPT (empty totals, logged). */
int rollup_totals_load(struct rollup_totals *t);
/* The folded record of hour, or NULL. */
const struct rollup_folded *rollup_totals_find(const struct rollup_totals *t, int64_t hour);
/* Lists hour as folded from bytes of events (replacing an earlier record), or not. */
void rollup_totals_set(struct rollup_totals *t, int64_t hour, uint64_t bytes);
void rollup_totals_del(struct rollup_totals *t, int64_t hour);
void rollup_totals_to_json(const struct rollup_totals *t, struct jgen *g);

void rollup_doc_free(struct rollup_doc *d);
/* STORE_OK, STORE_NOENT, STORE_IO or STORE_CORRUPT (the hour does not match). */
int rollup_doc_load(int64_t hour, struct rollup_doc *d);
void rollup_doc_to_json(const struct rollup_doc *d, struct jgen *g);
/* Turns a raw aggregate (counts and timelines of the whole hour) into d, status time
 * starting from start (may be NULL). d must be initialised. */
void rollup_doc_finish(int64_t hour, const struct stats_agg *raw, const struct stats_state *start,
		       struct rollup_doc *d);
/* Folds the raw lines text[0..len) of hour into d (status time over the whole hour
 * from start, which may be NULL). Pure. */
void rollup_doc_build(int64_t hour, const char *text, size_t len, const struct stats_state *start,
		      struct rollup_doc *d);

#endif
