#include "stats/statsq.h"
#include "base/hour.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "fs/statsfile.h"
#include "fs/store.h"
#include "stats/rollupdoc.h"
#include "model/task.h"
#include "fs/taskindex.h"
#include "base/util.h"

#define DOC_CACHE	     64
#define RAW_CACHE	     4
#define CARRY_LOOKBACK_HOURS 48 /* unfolded hours before a window that set its start state */
#define RAW_MAX		     (4ull << 30)
#define LIVE_SERVERS_MAX     10000

static uint64_t tick;

/* ---- documents ---- */

static struct {
	bool used;
	int64_t hour;
	struct file_stamp fi;
	struct rollup_doc d;
	uint64_t tick;
} doc_cache[DOC_CACHE];

static const struct rollup_doc *doc_get(int64_t hour)
{
	char rel[64];
	struct file_stamp fi;
	statsfile_hour_rel(rel, sizeof rel, STATSFILE_HOURLY, hour, ".json");
	if (statsfile_info(rel, &fi) != STORE_OK)
		return NULL;
	int victim = 0;
	for (int i = 0; i < DOC_CACHE; i++) {
		if (doc_cache[i].used && doc_cache[i].hour == hour) {
			if (file_stamp_same(&doc_cache[i].fi, &fi)) {
				doc_cache[i].tick = ++tick;
				return &doc_cache[i].d;
			}
			victim = i; /* replaced since: reload into the same slot */
			goto load;
		}
		/* Prefer a free slot, else the least recently used. */
		if (!doc_cache[i].used ||
		    (doc_cache[victim].used && doc_cache[i].tick < doc_cache[victim].tick))
			victim = i;
	}
load:
	if (doc_cache[victim].used)
		rollup_doc_free(&doc_cache[victim].d);
	doc_cache[victim].used = false;
	if (rollup_doc_load(hour, &doc_cache[victim].d) != STORE_OK) {
		rollup_doc_free(&doc_cache[victim].d);
		return NULL;
	}
	doc_cache[victim].used = true;
	doc_cache[victim].hour = hour;
	doc_cache[victim].fi = fi;
	doc_cache[victim].tick = ++tick;
	return &doc_cache[victim].d;
}

/* ---- totals ---- */

static struct {
	bool used;
	struct file_stamp fi;
	struct rollup_totals t;
} totals_cache;

static const struct rollup_totals *totals_get(void)
{
	struct file_stamp fi;
	if (statsfile_info("totals.json", &fi) != STORE_OK) {
		if (totals_cache.used)
			rollup_totals_free(&totals_cache.t);
		totals_cache.used = false;
		return NULL;
	}
	if (totals_cache.used && file_stamp_same(&totals_cache.fi, &fi))
		return &totals_cache.t;
	if (totals_cache.used)
		rollup_totals_free(&totals_cache.t);
	totals_cache.used = false;
	if (rollup_totals_load(&totals_cache.t) != STORE_OK) {
		rollup_totals_free(&totals_cache.t);
		return NULL;
	}
	totals_cache.used = true;
	totals_cache.fi = fi;
	return &totals_cache.t;
}

/* ---- raw events ---- */

static struct {
	bool used;
	int64_t hour;
	struct file_stamp file; /* identity of the file folded so far */
	uint64_t off;		/* bytes of it folded */
	struct stats_agg agg;
	uint64_t tick;
} raw_cache[RAW_CACHE];

/* Whole hour, unfiltered; NULL when the hour has no events file. */
static const struct stats_agg *raw_get(int64_t hour)
{
	char rel[64];
	struct file_stamp fi;
	statsfile_hour_rel(rel, sizeof rel, STATSFILE_EVENTS, hour, ".jsonl");
	if (statsfile_info(rel, &fi) != STORE_OK)
		return NULL;
	int at = -1, victim = 0;
	for (int i = 0; i < RAW_CACHE; i++) {
		if (raw_cache[i].used && raw_cache[i].hour == hour)
			at = i;
		if (!raw_cache[i].used ||
		    (raw_cache[victim].used && raw_cache[i].tick < raw_cache[victim].tick))
			victim = i;
	}
	/* Event files only grow: the same inode, not shorter, extends what was folded. */
	const struct file_stamp *was = at >= 0 ? &raw_cache[at].file : NULL;
	if (was && (was->dev != fi.dev || was->ino != fi.ino || raw_cache[at].off > fi.size)) {
		stats_agg_free(&raw_cache[at].agg); /* a different file now: start over */
		raw_cache[at].used = false;
		victim = at;
		at = -1;
	}
	if (at < 0) {
		at = victim;
		if (raw_cache[at].used)
			stats_agg_free(&raw_cache[at].agg);
		stats_agg_init(&raw_cache[at].agg);
		raw_cache[at].used = true;
		raw_cache[at].hour = hour;
		raw_cache[at].file = fi;
		raw_cache[at].off = 0;
	}
	raw_cache[at].tick = ++tick;
	if (fi.size > raw_cache[at].off && raw_cache[at].off < RAW_MAX) {
		struct buf text = BUF_INIT;
		uint64_t want = fi.size - raw_cache[at].off;
		if (statsfile_read(rel, raw_cache[at].off, want, &text, NULL) == STORE_OK &&
		    text.len)
			raw_cache[at].off += stats_fold_text(&raw_cache[at].agg, text.data,
							     text.len, false, INT64_MIN, INT64_MAX);
		buf_free(&text);
	}
	return &raw_cache[at].agg;
}

/* Events of the hour with from <= t < to (not cached); false if no events file. */
static bool raw_filtered(int64_t hour, int64_t from, int64_t to, struct stats_agg *out)
{
	char rel[64];
	struct buf text = BUF_INIT;
	statsfile_hour_rel(rel, sizeof rel, STATSFILE_EVENTS, hour, ".jsonl");
	int rc = statsfile_read(rel, 0, RAW_MAX, &text, NULL);
	if (rc == STORE_OK && text.len)
		stats_fold_text(out, text.data, text.len, false, from, to);
	buf_free(&text);
	return rc == STORE_OK;
}

void statsq_cache_clear(void)
{
	for (int i = 0; i < DOC_CACHE; i++)
		if (doc_cache[i].used)
			rollup_doc_free(&doc_cache[i].d);
	for (int i = 0; i < RAW_CACHE; i++)
		if (raw_cache[i].used)
			stats_agg_free(&raw_cache[i].agg);
	if (totals_cache.used)
		rollup_totals_free(&totals_cache.t);
	memset(doc_cache, 0, sizeof doc_cache);
	memset(raw_cache, 0, sizeof raw_cache);
	memset(&totals_cache, 0, sizeof totals_cache);
}

/* ---- windows ---- */

struct lists {
	int64_t *docs, *evs;
	size_t ndocs, nevs;
};

static void swap_state(struct stats_state *a, struct stats_state *b)
{
	struct stats_state t = *a;
	*a = *b;
	*b = t;
}

/* Status time of raw (may be NULL) over [from, to) from carry; carry moves on. */
static void advance(const struct stats_agg *raw, struct stats_state *carry, int64_t from,
		    int64_t to, struct stats_agg *part)
{
	struct stats_state next = {0};
	stats_account_status(raw, carry, from, to, part, &next);
	swap_state(carry, &next);
	stats_state_free(&next);
}

/* The servers' state at the start of hour. */
static void state_at(int64_t hour, const struct lists *l, struct stats_state *carry)
{
	int64_t prev = -1;
	for (size_t i = 0; i < l->ndocs && l->docs[i] < hour; i++)
		prev = l->docs[i];
	stats_state_free(carry);
	if (prev >= 0) {
		const struct rollup_doc *d = doc_get(prev);
		if (d)
			stats_state_copy(carry, &d->state);
	}
	int64_t since = hour - CARRY_LOOKBACK_HOURS * HOUR_MS;
	if (since < prev + HOUR_MS)
		since = prev + HOUR_MS;
	for (size_t i = 0; i < l->nevs && l->evs[i] < hour; i++) {
		if (l->evs[i] < since || statsfile_hours_has(l->docs, l->ndocs, l->evs[i]))
			continue;
		const struct stats_agg *raw = raw_get(l->evs[i]);
		struct stats_agg scratch;
		stats_agg_init(&scratch);
		advance(raw, carry, l->evs[i], l->evs[i] + HOUR_MS, &scratch);
		stats_agg_free(&scratch);
	}
}

/* One hour's part of a window [cf, ct) (within the hour) into part. */
static void contribute(int64_t hour, int64_t cf, int64_t ct, int64_t now, const struct lists *l,
		       struct stats_state *carry, struct stats_agg *part, struct statsq_info *info)
{
	int64_t hour_end = hour + HOUR_MS;
	int64_t st_to = ct < now ? ct : now;
	if (st_to < cf)
		st_to = cf;
	bool whole = cf == hour && (ct >= hour_end || ct >= now);
	const struct rollup_doc *doc =
	    hour_end <= now && statsfile_hours_has(l->docs, l->ndocs, hour) ? doc_get(hour) : NULL;
	bool raw_exists = statsfile_hours_has(l->evs, l->nevs, hour);

	if (doc && (whole || !raw_exists)) {
		stats_agg_merge(part, &doc->agg);
		stats_state_copy(carry, &doc->state);
		info->hours_doc++;
		if (!whole)
			info->approximate = true;
		return;
	}
	if (raw_exists) {
		if (whole) {
			const struct stats_agg *raw = raw_get(hour);
			if (raw) {
				stats_agg_merge(part, raw);
				advance(raw, carry, cf, st_to, part);
				info->hours_raw++;
				return;
			}
		} else {
			struct stats_agg raw;
			stats_agg_init(&raw);
			if (raw_filtered(hour, cf, ct, &raw)) {
				stats_agg_merge(part, &raw);
				advance(&raw, carry, cf, st_to, part);
				stats_agg_free(&raw);
				info->hours_raw++;
				return;
			}
			stats_agg_free(&raw);
		}
	}
	advance(NULL, carry, cf, st_to, part); /* a quiet hour: states carry on */
}

static int walk(int64_t from, int64_t to, int64_t now, struct stats_agg *total,
		struct stats_agg *hours, int64_t first_hour, int nhours, struct statsq_info *info)
{
	struct lists l;
	struct statsq_info scratch;
	if (!info)
		info = &scratch;
	memset(info, 0, sizeof *info);
	info->from = from;
	info->to = to;
	if (to <= from)
		return -1;
	l.ndocs = statsfile_list_hours(STATSFILE_HOURLY, ".json", &l.docs);
	l.nevs = statsfile_list_hours(STATSFILE_EVENTS, ".jsonl", &l.evs);
	int64_t known = INT64_MAX;
	if (l.ndocs)
		known = l.docs[0];
	if (l.nevs && l.evs[0] < known)
		known = l.evs[0];
	int64_t start = from > known ? from : known;
	if (start < to && start < now) {
		struct stats_state carry = {0};
		int64_t h0 = hour_floor(start);
		state_at(h0, &l, &carry);
		for (int64_t h = h0; h < to && h < now; h += HOUR_MS) {
			int64_t cf = start > h ? start : h;
			int64_t ct = to < h + HOUR_MS ? to : h + HOUR_MS;
			struct stats_agg part;
			stats_agg_init(&part);
			contribute(h, cf, ct, now, &l, &carry, &part, info);
			if (total)
				stats_agg_merge(total, &part);
			if (hours && h >= first_hour) {
				int64_t i = (h - first_hour) / HOUR_MS;
				if (i < nhours)
					stats_agg_merge(&hours[i], &part);
			}
			stats_agg_free(&part);
		}
		stats_state_free(&carry);
	}
	free(l.docs);
	free(l.evs);
	return 0;
}

int statsq_window(int64_t from, int64_t to, int64_t now, struct stats_agg *out,
		  struct statsq_info *info)
{
	stats_agg_init(out);
	return walk(from, to, now, out, NULL, 0, 0, info);
}

int statsq_hours(int64_t first_hour, int n, int64_t now, struct stats_agg *out)
{
	for (int i = 0; i < n; i++)
		stats_agg_init(&out[i]);
	return walk(first_hour, first_hour + (int64_t)n * HOUR_MS, now, NULL, out, first_hour,
		    n, NULL);
}

int statsq_all_time(int64_t now, struct stats_agg *out, struct statsq_info *info)
{
	struct statsq_info scratch;
	if (!info)
		info = &scratch;
	memset(info, 0, sizeof *info);
	info->to = now;
	stats_agg_init(out);
	const struct rollup_totals *t = totals_get();
	if (t) {
		stats_agg_merge(out, &t->agg);
		info->hours_doc = (int)t->n;
		if (t->n)
			info->from = t->f[0].hour;
	}
	int64_t *evs;
	size_t nevs = statsfile_list_hours(STATSFILE_EVENTS, ".jsonl", &evs);
	for (size_t i = 0; i < nevs; i++) {
		if (t && rollup_totals_find(t, evs[i]))
			continue;
		const struct stats_agg *raw = raw_get(evs[i]);
		if (!raw)
			continue;
		stats_agg_merge(out, raw);
		info->hours_raw++;
		if (!info->from || evs[i] < info->from)
			info->from = evs[i];
	}
	/* Status time is not an all-time figure: keep only counts. */
	for (size_t i = 0; i < out->nservers; i++) {
		memset(out->servers[i].status_ms, 0, sizeof out->servers[i].status_ms);
		out->servers[i].changes = 0;
	}
	free(evs);
	return 0;
}

/* ---- live figures ---- */

bool statsq_server_routable(const struct server *s)
{
	return !s->maintenance && server_health_routable(s->health);
}

bool statsq_server_serves(const struct server *s, const char *model)
{
	if (!statsq_server_routable(s))
		return false;
	return !model || !*model || s->models.n == 0 || strlist_has(&s->models, model);
}

static int count_one(const char *id, int attempt, void *arg)
{
	(void)id;
	(void)attempt;
	(*(size_t *)arg)++;
	return 0;
}

struct waiting {
	int64_t since;
	char id[TASK_ID_LEN + 1];
};

static int cmp_waiting(const void *a, const void *b)
{
	int64_t x = ((const struct waiting *)a)->since, y = ((const struct waiting *)b)->since;
	return x < y ? -1 : x > y;
}

/* Is the queue entry's task still queued (entries are hints)? */
static bool still_queued(const char *id)
{
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK)
		return false;
	const char *st = json_str_or(doc, "status", "");
	bool q = strcmp(st, "QUEUED") == 0 || strcmp(st, "PENDING") == 0;
	yajl_tree_free(doc);
	return q;
}

void statsq_live_load(struct statsq_live *l, int64_t now)
{
	memset(l, 0, sizeof *l);
	struct tindex_entry *e = NULL;
	/* (An empty queue is not listed: tindex_queue_list() hands qsort() a NULL array
	 * then, which UBSan reports.) */
	size_t n = tindex_queue_depth() ? tindex_queue_list(&e, 100000) : 0;
	l->queue_depth = n;
	struct waiting *w = calloc(n + 1, sizeof *w);
	if (!w)
		abort();
	size_t nw = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t since = tindex_entry_waiting_since(&e[i]);
		if (since > now)
			continue; /* backing off before a retry: not waiting for a server */
		w[nw].since = since;
		snprintf(w[nw].id, sizeof w[nw].id, "%s", e[i].id);
		nw++;
	}
	l->due = nw;
	qsort(w, nw, sizeof *w, cmp_waiting);
	/* The oldest few are checked against their task files (a stale hint would
	 * make the queue look stuck). */
	for (size_t i = 0; i < nw && i < 8; i++)
		if (still_queued(w[i].id)) {
			l->oldest_since = w[i].since;
			snprintf(l->oldest_task, sizeof l->oldest_task, "%s", w[i].id);
			break;
		}
	free(w);
	free(e);
	tindex_active_each(count_one, &l->processing);

	char(*ids)[STORE_ID_MAX + 1];
	size_t nids = store_list_ids("servers", LIVE_SERVERS_MAX, &ids);
	l->servers = calloc(nids + 1, sizeof *l->servers);
	if (!l->servers)
		abort();
	for (size_t i = 0; i < nids; i++) {
		struct server *s = &l->servers[l->nservers];
		if (server_load(ids[i], s) != STORE_OK)
			continue;
		l->nservers++;
		if (s->maintenance)
			l->maintenance++;
		else if (s->health == HEALTH_ONLINE)
			l->online++;
		else if (s->health == HEALTH_DEGRADED)
			l->degraded++;
		else if (s->health == HEALTH_STARTING)
			l->starting++;
		else
			l->offline++;
	}
	free(ids);
	unservable_load(&l->unservable);
}

void statsq_live_free(struct statsq_live *l)
{
	for (size_t i = 0; i < l->nservers; i++)
		server_free(&l->servers[i]);
	free(l->servers);
	memset(l, 0, sizeof *l);
}

/* ---- helpers shared by the routes ---- */

bool statsq_parse_time(const char *s, int64_t *ms)
{
	if (!s || !*s)
		return false;
	size_t n = strlen(s);
	if (strspn(s, "0123456789") == n) {
		if (n > 15)
			return false;
		*ms = strtoll(s, NULL, 10);
		return true;
	}
	int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
		return false;
	const char *p = s + 10;
	long frac_ms = 0;
	int64_t offset_s = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		used = 0;
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &used) != 3 || used != 8)
			return false;
		p += 9;
		if (*p == '.') {
			long scale = 100;
			p++;
			if (*p < '0' || *p > '9')
				return false;
			for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
				frac_ms += (*p - '0') * scale;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om;
			used = 0;
			if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &used) != 2 || used != 5 ||
			    oh > 23 || om > 59)
				return false;
			offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
			p += 6;
		} else {
			return false;
		}
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
		return false;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t < 0)
		return false;
	*ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
	return *ms >= 0;
}

void statsq_jg_dist(struct jgen *g, const struct hist *h)
{
	jg_obj(g);
	jg_kint(g, "count", (long long)h->count);
	stats_jg_knum(g, "average", hist_mean(h), 1);
	jg_kint(g, "min", h->count ? (long long)h->min : 0);
	jg_kint(g, "max", h->count ? (long long)h->max : 0);
	stats_jg_knum(g, "p50", hist_quantile(h, 0.50), 1);
	stats_jg_knum(g, "p95", hist_quantile(h, 0.95), 1);
	stats_jg_knum(g, "p99", hist_quantile(h, 0.99), 1);
	jg_obj_end(g);
}

void statsq_jg_time(struct jgen *g, const char *key, int64_t ms)
{
	char t[32];
	if (ms <= 0) {
		jg_key(g, key);
		jg_null(g);
		return;
	}
	format_time_ms(ms, t);
	jg_kstr(g, key, t);
}

double statsq_ratio(uint64_t part, uint64_t whole)
{
	if (!whole)
		return 0;
	return round((double)part / (double)whole * 10000.0) / 10000.0;
}
