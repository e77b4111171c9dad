/* statsq: the read side of the statistics — what the routes, /metrics, the status
 * page and the alert rules ask. No locks: documents are replaced atomically and the
 * event logs only grow.
 *
 * Every figure combines the folded hours (stats/hourly, stats/totals.json) with the
 * raw events of the hours not folded yet (the current one, usually), so it is
 * current to the second. Per hour, a query uses the hour's document when it covers
 * the whole hour, else the hour's raw events filtered by time (exact to the
 * millisecond while they are kept, see rollup.h); no hour is ever counted from both.
 *
 * Caches (per process, so a FastCGI worker does not re-read what it already read):
 * parsed documents and totals keyed by (inode, size, mtime), and the raw aggregates
 * of whole hours, extended by parsing only the bytes appended since the last call.
 * A cache is never the truth: every use stats the file first. */
#ifndef TASKGATE_STATSQ_H
#define TASKGATE_STATSQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/server.h"
#include "model/unservable.h"
#include "stats/stats.h"

struct statsq_info {
	int64_t from, to; /* the window actually covered */
	int hours_doc;	  /* hours answered from documents */
	int hours_raw;	  /* hours answered from raw events */
	bool approximate; /* a partial hour had no raw events left: its whole document was used */
};

/* Events with from <= t < to, and the servers' status time over [from, min(to, now)).
 * out is initialised here; the caller frees it. 0, or -1 when the window is empty
 * or inverted (out empty). */
int statsq_window(int64_t from, int64_t to, int64_t now, struct stats_agg *out,
		  struct statsq_info *info);
/* Everything ever folded plus the hours not folded yet (no status time). */
int statsq_all_time(int64_t now, struct stats_agg *out, struct statsq_info *info);
/* n consecutive hours from first_hour (an hour start): out[i] (initialised here)
 * holds hour i, counts and status time (clipped at now). */
int statsq_hours(int64_t first_hour, int n, int64_t now, struct stats_agg *out);

/* Live figures from the indexes and the server registry. */
struct statsq_live {
	size_t queue_depth;   /* entries of queue/ (QUEUED and PENDING tasks) */
	size_t due;	      /* of which are due now (not waiting for a back-off) */
	size_t processing;    /* entries of active/ */
	int64_t oldest_since; /* when the longest-waiting due task was queued (0: none) */
	char oldest_task[40];
	struct server *servers; /* sorted by id */
	size_t nservers;
	int online, degraded, offline, maintenance, starting;
	struct unservable unservable; /* what the last sweep found no server could take */
};
void statsq_live_load(struct statsq_live *l, int64_t now);
void statsq_live_free(struct statsq_live *l);
/* Routable: not in maintenance and online or degraded. */
bool statsq_server_routable(const struct server *s);
/* Routable and serving model (a server listing no models serves all). */
bool statsq_server_serves(const struct server *s, const char *model);

/* ---- helpers shared by the routes ---- */

/* Parses a time given as milliseconds since the epoch ("1700000000000") or RFC 3339
 * ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.250+02:00", "2024-05-01"). */
bool statsq_parse_time(const char *s, int64_t *ms);
/* {"count","average","min","max","p50","p95","p99"} in ms (one decimal). */
void statsq_jg_dist(struct jgen *g, const struct hist *h);
/* key: RFC 3339 text, or null when ms is 0. */
void statsq_jg_time(struct jgen *g, const char *key, int64_t ms);
/* part / whole as a fraction rounded to 4 places (0 when whole is 0). */
double statsq_ratio(uint64_t part, uint64_t whole);

/* Drops the caches (tests; a long-lived process never needs to). */
void statsq_cache_clear(void);

#endif
