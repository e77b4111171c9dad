/* rollup: folding finished hours of the event log into hourly documents and running
 * totals (the TaskInstanceStats' storage).
 *
 * The documents (stats/hourly/<H>.json, stats/totals.json) and their readers are in
 * stats/rollupdoc.h, so that queries can read them without this job; what runs the
 * fold, writes the documents and evaluates the alerts afterwards lives here.
 *
 * An hour is folded once it is finished: its end lies more than graceSeconds (config
 * "stats", default 120) in the past, so writers that stamped an event just before the
 * hour ended have long finished appending.
 *
 * Invariants (what makes a run idempotent and a crash harmless):
 *   I1 totals.agg == the sum of the documents of the hours listed in totals.folded;
 *   I2 the document of a listed hour is never rewritten while it is listed.
 * A first fold writes the hour's document (atomically), then totals. A crash between
 * the two leaves a document that totals does not list: the next run adds it
 * ("recovered") instead of folding the hour again. A listed hour whose events file has
 * grown since (a late writer) is re-folded: first totals without it (recomputed from
 * the other documents), then the new document, then totals with it. totals.json
 * missing or unreadable is rebuilt from the documents. Nothing is ever counted twice
 * or lost, whatever instant a crash (or kill -9) hits; `taskgate-rollup --check`
 * recomputes I1 from the documents and reports any difference.
 *
 * Each document carries the servers' state at its end; the next hour's status time
 * starts from the latest earlier document's state. Raw event files of folded hours
 * are deleted after eventsRetentionDays (config "stats", default 30; 0 keeps them);
 * while they exist, queries over part of an hour are exact to the millisecond. */
#ifndef TASKGATE_ROLLUP_H
#define TASKGATE_ROLLUP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "stats/rollupdoc.h"

#define ROLLUP_JOB "rollup"

struct rollup_opts {
	int64_t now;	   /* 0: the clock */
	int grace_s;	   /* -1: config stats.graceSeconds (default 120) */
	int max_hours;	   /* fold at most this many hours in one run (0: all) */
	int keep_days;	   /* -1: config stats.eventsRetentionDays (default 30); 0 keeps */
	int64_t budget_ms; /* stop folding after this long (0: no limit) */
};
#define ROLLUP_OPTS_DEFAULT                                                                        \
	{                                                                                          \
		0, -1, 0, -1, 0                                                                    \
	}

struct rollup_result {
	int folded;    /* hours folded for the first time */
	int refolded;  /* hours folded again after their events file grew */
	int recovered; /* documents a crashed run had written, now counted */
	int pending;   /* finished hours left for the next run (bounds) */
	int removed;   /* raw event files deleted by retention */
	bool rebuilt;  /* totals were recomputed from the documents */
	uint64_t lines, bad;
	int errors; /* files that could not be written or read (logged) */
};

/* One run (the caller holds the run lock). 0, or -1 when the state could not be
 * written (r->errors > 0; what was written is consistent). */
int rollup_run(const struct rollup_opts *o, struct rollup_result *r);
/* Recomputes the sum of the listed hours' documents and compares it with totals.
 * 0 consistent, 1 not (differences described in report), -1 unreadable. */
int rollup_check(struct buf *report);
/* Rewrites totals.json from the documents. 0 or -1. */
int rollup_rebuild(void);

/* For tests: when set, called at each point where a crash must be harmless
 * ("unlisted": totals without the hours to re-fold were written; "document": one
 * hour's document was written; "totals": before the final totals are written). A
 * test's forked child _exit()s there to simulate kill -9. */
extern void (*rollup_crash_hook)(const char *point);

/* In a worker (jobs/worker.h): when the rollup is overdue (config
 * piggyback.rollupSeconds, default 300; nothing when piggyback.enabled is false) and
 * nobody runs it, one bounded run (6 hours, about a second) plus the alert rules
 * (at most 3 webhook POSTs of 2 s), under the run lock. True when it ran. */
bool rollup_piggyback(void);
/* Whether rollup_piggyback() would find the rollup overdue (a stamp's read). */
bool rollup_piggyback_due(void);

#endif
