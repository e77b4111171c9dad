#include "jobs/rollup.h"
#include "base/hour.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/alerts.h"
#include "model/config.h"
#include "jobs/cronjob.h"
#include "stats/events.h"
#include "base/log.h"
#include "fs/store.h"
#include "base/util.h"

#define DOC_MAX	   (64u << 20)	/* totals of a big installation stay far below */
#define READ_CHUNK (8u << 20)	/* events are folded in chunks of this size */
#define EVENTS_MAX (4ull << 30) /* an hour's events file beyond this is not read */

static const struct json_limits doc_limits = {
    .max_bytes = DOC_MAX, .max_depth = 16, .max_string = 4096};

static void rel_of(char *out, size_t n, const char *dir, int64_t hour, const char *suffix)
{
	char name[11];
	hour_name(hour, name);
	snprintf(out, n, "%s/%s%s", dir, name, suffix);
}

/* Reads and parses stats/<rel>: STORE_OK, STORE_NOENT, STORE_IO or STORE_CORRUPT. */
static int read_json(const char *rel, yajl_val *out)
{
	struct buf text = BUF_INIT;
	*out = NULL;
	int rc = events_file_read(rel, 0, DOC_MAX + 1, &text, NULL);
	if (rc == STORE_OK) {
		*out = text.len <= DOC_MAX
			   ? json_parse(text.data ? text.data : "", text.len, &doc_limits, NULL)
			   : NULL;
		if (!*out || !YAJL_IS_OBJECT(*out)) {
			if (*out)
				yajl_tree_free(*out);
			*out = NULL;
			rc = STORE_CORRUPT;
		}
	}
	buf_free(&text);
	return rc;
}

/* ---- totals ---- */

void rollup_totals_free(struct rollup_totals *t)
{
	free(t->f);
	stats_agg_free(&t->agg);
	memset(t, 0, sizeof *t);
}

static int cmp_folded_hour(const void *hour, const void *f)
{
	int64_t x = *(const int64_t *)hour, y = ((const struct rollup_folded *)f)->hour;
	return x < y ? -1 : x > y;
}

static size_t folded_at(const struct rollup_totals *t, int64_t hour, bool *found)
{
	return array_search(&hour, t->f, t->n, sizeof *t->f, cmp_folded_hour, found);
}

const struct rollup_folded *rollup_totals_find(const struct rollup_totals *t, int64_t hour)
{
	bool found;
	size_t at = folded_at(t, hour, &found);
	return found ? &t->f[at] : NULL;
}

static void folded_set(struct rollup_totals *t, int64_t hour, uint64_t bytes)
{
	bool found;
	size_t at = folded_at(t, hour, &found);
	if (!found)
		t->f = array_insert(t->f, &t->n, &t->cap, sizeof *t->f, at, 64);
	t->f[at].hour = hour;
	t->f[at].bytes = bytes;
}

static void folded_del(struct rollup_totals *t, int64_t hour)
{
	bool found;
	size_t at = folded_at(t, hour, &found);
	if (!found)
		return;
	memmove(&t->f[at], &t->f[at + 1], (t->n - at - 1) * sizeof *t->f);
	t->n--;
}

int rollup_totals_load(struct rollup_totals *t)
{
	memset(t, 0, sizeof *t);
	stats_agg_init(&t->agg);
	yajl_val doc;
	int rc = read_json("totals.json", &doc);
	if (rc == STORE_CORRUPT)
		log_error("stats: stats/totals.json does not parse; it will be rebuilt from the "
			  "hourly documents");
	if (rc != STORE_OK)
		return rc;
	yajl_val f = json_get(doc, "folded");
	for (size_t i = 0; f && YAJL_IS_OBJECT(f) && i < f->u.object.len; i++) {
		int64_t hour;
		yajl_val v = f->u.object.values[i];
		if (hour_parse(f->u.object.keys[i], &hour) && YAJL_IS_INTEGER(v) &&
		    YAJL_GET_INTEGER(v) >= 0)
			folded_set(t, hour, (uint64_t)YAJL_GET_INTEGER(v));
	}
	stats_agg_from_json(doc, &t->agg);
	long long l = json_int_or(doc, "lines", 0), b = json_int_or(doc, "bad", 0);
	t->agg.lines = l > 0 ? (uint64_t)l : 0;
	t->agg.bad = b > 0 ? (uint64_t)b : 0;
	yajl_tree_free(doc);
	return STORE_OK;
}

void rollup_totals_to_json(const struct rollup_totals *t, struct jgen *g)
{
	jg_obj(g);
	jg_kint(g, "version", 1);
	jg_kint(g, "hours", (long long)t->n);
	jg_key(g, "folded");
	jg_obj(g);
	for (size_t i = 0; i < t->n; i++) {
		char name[11];
		hour_name(t->f[i].hour, name);
		jg_kint(g, name, (long long)t->f[i].bytes);
	}
	jg_obj_end(g);
	jg_kint(g, "lines", (long long)t->agg.lines);
	jg_kint(g, "bad", (long long)t->agg.bad);
	stats_agg_to_json(&t->agg, g, true);
	jg_obj_end(g);
}

static int totals_save(const struct rollup_totals *t)
{
	struct jgen g;
	jg_init(&g);
	rollup_totals_to_json(t, &g);
	int rc = events_file_write_json("", "totals.json", &g);
	jg_free(&g);
	return rc;
}

/* ---- hourly documents ---- */

void rollup_doc_free(struct rollup_doc *d)
{
	stats_agg_free(&d->agg);
	stats_state_free(&d->state);
	memset(d, 0, sizeof *d);
}

int rollup_doc_load(int64_t hour, struct rollup_doc *d)
{
	char rel[64], name[11];
	memset(d, 0, sizeof *d);
	stats_agg_init(&d->agg);
	rel_of(rel, sizeof rel, "hourly", hour, ".json");
	yajl_val doc;
	int rc = read_json(rel, &doc);
	if (rc != STORE_OK)
		return rc;
	hour_name(hour, name);
	if (strcmp(json_str_or(doc, "hour", ""), name) != 0) {
		yajl_tree_free(doc);
		return STORE_CORRUPT;
	}
	d->hour = hour;
	yajl_val src = json_get(doc, "source");
	long long b = json_int_or(src, "bytes", 0), l = json_int_or(src, "lines", 0),
		  bad = json_int_or(src, "bad", 0);
	d->bytes = b > 0 ? (uint64_t)b : 0;
	d->lines = l > 0 ? (uint64_t)l : 0;
	d->bad = bad > 0 ? (uint64_t)bad : 0;
	stats_agg_from_json(doc, &d->agg);
	d->agg.lines = d->lines;
	d->agg.bad = d->bad;
	stats_state_from_json(json_get(doc, "state"), &d->state);
	yajl_tree_free(doc);
	return STORE_OK;
}

void rollup_doc_to_json(const struct rollup_doc *d, struct jgen *g)
{
	char name[11];
	hour_name(d->hour, name);
	jg_obj(g);
	jg_kint(g, "version", 1);
	jg_kstr(g, "hour", name);
	jg_kint(g, "start", d->hour);
	jg_kint(g, "end", d->hour + HOUR_MS);
	jg_key(g, "source");
	jg_obj(g);
	jg_kint(g, "bytes", (long long)d->bytes);
	jg_kint(g, "lines", (long long)d->lines);
	jg_kint(g, "bad", (long long)d->bad);
	jg_obj_end(g);
	stats_agg_to_json(&d->agg, g, true);
	jg_key(g, "state");
	stats_state_to_json(&d->state, g);
	jg_obj_end(g);
}

/* Turns a raw aggregate (counts and timelines of the whole hour) into a document. */
static void doc_finish(int64_t hour, const struct stats_agg *raw, const struct stats_state *start,
		       struct rollup_doc *d)
{
	d->hour = hour;
	d->lines = raw->lines;
	d->bad = raw->bad;
	stats_agg_merge(&d->agg, raw);
	stats_account_status(raw, start, hour, hour + HOUR_MS, &d->agg, &d->state);
}

void rollup_doc_build(int64_t hour, const char *text, size_t len, const struct stats_state *start,
		      struct rollup_doc *d)
{
	struct stats_agg raw;
	memset(d, 0, sizeof *d);
	stats_agg_init(&d->agg);
	stats_agg_init(&raw);
	stats_fold_text(&raw, text, len, true, INT64_MIN, INT64_MAX);
	doc_finish(hour, &raw, start, d);
	d->bytes = len;
	stats_agg_free(&raw);
}

/* Folds the events file of hour in chunks; d->bytes is the size it had when we
 * started (lines appended meanwhile are left for a re-fold). */
static int doc_from_events(int64_t hour, const struct stats_state *start, struct rollup_doc *d)
{
	char rel[64];
	struct stats_agg raw;
	struct buf chunk = BUF_INIT;
	struct events_fileinfo fi;
	memset(d, 0, sizeof *d);
	stats_agg_init(&d->agg);
	stats_agg_init(&raw);
	rel_of(rel, sizeof rel, "events", hour, ".jsonl");
	int rc = events_file_info(rel, &fi);
	uint64_t size = rc == STORE_OK ? fi.size : 0, off = 0;
	if (size > EVENTS_MAX) {
		log_error("stats: %s is larger than %llu bytes; only its start is folded", rel,
			  (unsigned long long)EVENTS_MAX);
		size = EVENTS_MAX;
	}
	while (rc == STORE_OK && off < size) {
		size_t keep = chunk.len;
		uint64_t want = size - off < READ_CHUNK ? size - off : READ_CHUNK;
		rc = events_file_read(rel, off, want, &chunk, NULL);
		if (rc != STORE_OK)
			break;
		if (chunk.len == keep) {
			rc = STORE_IO; /* shrank under us: not a log we understand */
			break;
		}
		off += chunk.len - keep;
		bool last = off >= size;
		size_t used =
		    stats_fold_text(&raw, chunk.data, chunk.len, last, INT64_MIN, INT64_MAX);
		memmove(chunk.data, chunk.data + used, chunk.len - used);
		chunk.len -= used;
		chunk.data[chunk.len] = '\0';
	}
	if (rc == STORE_NOENT)
		rc = STORE_OK; /* an hour without events folds to an empty document */
	if (rc == STORE_OK) {
		doc_finish(hour, &raw, start, d);
		d->bytes = size;
	} else {
		log_error("stats: cannot read %s: %s", rel, store_strerror(rc));
	}
	buf_free(&chunk);
	stats_agg_free(&raw);
	return rc;
}

static int doc_save(const struct rollup_doc *d)
{
	char name[20];
	struct jgen g;
	hour_name(d->hour, name);
	strcat(name, ".json");
	jg_init(&g);
	rollup_doc_to_json(d, &g);
	int rc = events_file_write_json("hourly", name, &g);
	jg_free(&g);
	return rc;
}

/* A document that does not parse is derived data: set it aside so that the hour is
 * folded again from its events. */
static void doc_discard(int64_t hour)
{
	char rel[64];
	rel_of(rel, sizeof rel, "hourly", hour, ".json");
	log_error("stats: stats/%s does not parse; removed (the hour is folded again from "
		  "its events if they are still kept)",
		  rel);
	events_file_remove(rel);
}

/* ---- sorted hour lists ---- */

static void hours_insert(int64_t **v, size_t *n, int64_t h)
{
	if (events_hours_has(*v, *n, h))
		return;
	*v = realloc(*v, (*n + 1) * sizeof **v);
	if (!*v)
		abort();
	size_t i = *n;
	while (i > 0 && (*v)[i - 1] > h) {
		(*v)[i] = (*v)[i - 1];
		i--;
	}
	(*v)[i] = h;
	(*n)++;
}

/* ---- rebuilding and checking ---- */

/* totals := the sum of every readable document (those in docs[]); unreadable ones
 * are discarded. */
static void rebuild_from_docs(struct rollup_totals *t, const int64_t *docs, size_t ndocs)
{
	rollup_totals_free(t);
	stats_agg_init(&t->agg);
	for (size_t i = 0; i < ndocs; i++) {
		struct rollup_doc d;
		int rc = rollup_doc_load(docs[i], &d);
		if (rc == STORE_OK) {
			stats_agg_merge(&t->agg, &d.agg);
			folded_set(t, docs[i], d.bytes);
		} else if (rc == STORE_CORRUPT) {
			doc_discard(docs[i]);
		}
		rollup_doc_free(&d);
	}
}

/* totals := the sum of the documents of the hours it lists. */
static int resum_listed(struct rollup_totals *t)
{
	stats_agg_free(&t->agg);
	stats_agg_init(&t->agg);
	for (size_t i = 0; i < t->n; i++) {
		struct rollup_doc d;
		int rc = rollup_doc_load(t->f[i].hour, &d);
		if (rc != STORE_OK) {
			rollup_doc_free(&d);
			return rc;
		}
		stats_agg_merge(&t->agg, &d.agg);
		rollup_doc_free(&d);
	}
	return STORE_OK;
}

int rollup_rebuild(void)
{
	struct rollup_totals t = {0};
	int64_t *docs;
	size_t ndocs = events_list_hours("hourly", ".json", &docs);
	rebuild_from_docs(&t, docs, ndocs);
	int rc = totals_save(&t);
	rollup_totals_free(&t);
	free(docs);
	return rc == STORE_OK ? 0 : -1;
}

static void describe_diff(const struct stats_agg *want, const struct stats_agg *have,
			  struct buf *report)
{
	for (int i = 0; i < ST_TYPES; i++)
		if (want->all.n[i] != have->all.n[i])
			buf_printf(report, "%s: totals %llu, documents %llu\n", stats_type_key[i],
				   (unsigned long long)have->all.n[i],
				   (unsigned long long)want->all.n[i]);
	if (!hist_equal(&want->all.run, &have->all.run))
		buf_adds(report, "run-time histogram differs\n");
	if (!hist_equal(&want->all.wait, &have->all.wait))
		buf_adds(report, "queue-wait histogram differs\n");
	if (want->nmodels != have->nmodels || want->nservers != have->nservers)
		buf_printf(report, "models %zu/%zu, servers %zu/%zu (totals/documents)\n",
			   have->nmodels, want->nmodels, have->nservers, want->nservers);
}

int rollup_check(struct buf *report)
{
	struct rollup_totals t;
	int rc = rollup_totals_load(&t);
	if (rc != STORE_OK && rc != STORE_NOENT) {
		buf_printf(report, "stats/totals.json: %s\n", store_strerror(rc));
		rollup_totals_free(&t);
		return rc == STORE_CORRUPT ? 1 : -1;
	}
	int bad = 0;
	struct stats_agg sum;
	stats_agg_init(&sum);
	for (size_t i = 0; i < t.n; i++) {
		struct rollup_doc d;
		char name[11];
		hour_name(t.f[i].hour, name);
		rc = rollup_doc_load(t.f[i].hour, &d);
		if (rc != STORE_OK) {
			buf_printf(report, "hour %s is listed but its document is %s\n", name,
				   rc == STORE_NOENT ? "missing" : store_strerror(rc));
			bad = 1;
		} else {
			if (d.bytes != t.f[i].bytes) {
				buf_printf(report,
					   "hour %s: listed with %llu bytes, document has "
					   "%llu\n",
					   name, (unsigned long long)t.f[i].bytes,
					   (unsigned long long)d.bytes);
				bad = 1;
			}
			stats_agg_merge(&sum, &d.agg);
		}
		rollup_doc_free(&d);
	}
	if (!stats_agg_equal(&sum, &t.agg)) {
		buf_adds(report, "totals differ from the sum of the listed documents:\n");
		describe_diff(&sum, &t.agg, report);
		bad = 1;
	}
	int64_t *docs;
	size_t ndocs = events_list_hours("hourly", ".json", &docs);
	for (size_t i = 0; i < ndocs; i++)
		if (!rollup_totals_find(&t, docs[i])) {
			char name[11];
			hour_name(docs[i], name);
			buf_printf(report,
				   "hour %s has a document that totals do not list yet "
				   "(the next run adds it)\n",
				   name);
		}
	free(docs);
	stats_agg_free(&sum);
	rollup_totals_free(&t);
	return bad;
}

/* ---- the run ---- */

void (*rollup_crash_hook)(const char *point);

static void crash_point(const char *point)
{
	if (rollup_crash_hook)
		rollup_crash_hook(point);
}

struct todo {
	int64_t hour;
	bool refold;
};

/* The state at the end of the latest document before hour (empty if none), minus
 * servers that are no longer registered. */
static void state_before(int64_t hour, const int64_t *docs, size_t ndocs,
			 const struct rollup_doc *last, struct stats_state *out)
{
	stats_state_free(out);
	int64_t prev = -1;
	for (size_t i = 0; i < ndocs && docs[i] < hour; i++)
		prev = docs[i];
	if (prev < 0)
		return;
	if (last && last->hour == prev) {
		stats_state_copy(out, &last->state);
	} else {
		struct rollup_doc d;
		if (rollup_doc_load(prev, &d) == STORE_OK)
			stats_state_copy(out, &d.state);
		rollup_doc_free(&d);
	}
	size_t keep = 0;
	for (size_t i = 0; i < out->n; i++)
		if (store_exists("servers", out->v[i].id))
			out->v[keep++] = out->v[i];
	out->n = keep;
}

int rollup_run(const struct rollup_opts *o, struct rollup_result *r)
{
	memset(r, 0, sizeof *r);
	int64_t now = o->now ? o->now : now_ms();
	int64_t started = mono_ms();
	long long grace =
	    o->grace_s >= 0 ? o->grace_s : config_sect_int("stats", "graceSeconds", 120, 0, 86400);
	long long keep = o->keep_days >= 0
			     ? o->keep_days
			     : config_sect_int("stats", "eventsRetentionDays", 30, 0, 36500);
	int64_t limit = hour_floor(now - grace * 1000); /* hours before it are finished */

	/* A killed run may have left half-written temp files; we hold the run lock, so
	 * no writer of these folders is alive. */
	events_clean_temp("hourly");
	events_clean_temp("");

	struct rollup_totals t;
	int trc = rollup_totals_load(&t);
	bool dirty = false;
	int64_t *docs = NULL, *evs = NULL;
	size_t ndocs = events_list_hours("hourly", ".json", &docs);
	struct todo *todo = NULL;
	size_t ntodo = 0;
	struct rollup_doc last = {0};
	struct stats_state start = {0};

	/* I1 needs every listed hour's document; if one vanished, recount from scratch. */
	bool lost = false;
	for (size_t i = 0; i < t.n && !lost; i++)
		lost = !events_hours_has(docs, ndocs, t.f[i].hour);
	if (lost || (trc != STORE_OK && ndocs > 0)) {
		if (lost)
			log_warn("stats: a folded hour's document is missing; totals are "
				 "recomputed from the documents");
		rebuild_from_docs(&t, docs, ndocs);
		r->rebuilt = true;
		dirty = true;
	} else {
		/* Documents a crashed run wrote but did not list: count them now. */
		for (size_t i = 0; i < ndocs; i++) {
			if (rollup_totals_find(&t, docs[i]))
				continue;
			struct rollup_doc d;
			int rc = rollup_doc_load(docs[i], &d);
			if (rc == STORE_OK) {
				stats_agg_merge(&t.agg, &d.agg);
				folded_set(&t, docs[i], d.bytes);
				r->recovered++;
				dirty = true;
			} else if (rc == STORE_CORRUPT) {
				doc_discard(docs[i]);
			}
			rollup_doc_free(&d);
		}
	}
	/* The document list again: discarded ones are gone. */
	free(docs);
	ndocs = events_list_hours("hourly", ".json", &docs);

	/* What is there to fold: finished hours never folded, or grown since. */
	size_t nevs = events_list_hours("events", ".jsonl", &evs);
	todo = calloc(nevs + 1, sizeof *todo);
	if (!todo)
		abort();
	for (size_t i = 0; i < nevs && evs[i] < limit; i++) {
		char rel[64];
		struct events_fileinfo fi;
		rel_of(rel, sizeof rel, "events", evs[i], ".jsonl");
		if (events_file_info(rel, &fi) != STORE_OK)
			continue;
		const struct rollup_folded *f = rollup_totals_find(&t, evs[i]);
		if (!f || f->bytes != fi.size) {
			if (o->max_hours > 0 && (int)ntodo >= o->max_hours) {
				r->pending++;
				continue;
			}
			todo[ntodo].hour = evs[i];
			todo[ntodo].refold = f != NULL;
			ntodo++;
		}
	}

	/* I2: a listed hour's document changes only after totals stop listing it. */
	bool any_refold = false;
	for (size_t i = 0; i < ntodo; i++)
		if (todo[i].refold) {
			folded_del(&t, todo[i].hour);
			any_refold = true;
		}
	if (any_refold) {
		int rc = resum_listed(&t);
		if (rc == STORE_OK)
			rc = totals_save(&t);
		if (rc != STORE_OK) {
			log_error("stats: cannot prepare the re-fold: %s", store_strerror(rc));
			r->errors++;
			goto out;
		}
		dirty = false;
		crash_point("unlisted");
	}

	for (size_t i = 0; i < ntodo; i++) {
		if (o->budget_ms > 0 && mono_ms() - started > o->budget_ms) {
			r->pending += (int)(ntodo - i);
			break;
		}
		if (cronjob_stopping()) {
			r->pending += (int)(ntodo - i);
			break;
		}
		struct rollup_doc d;
		state_before(todo[i].hour, docs, ndocs, &last, &start);
		int rc = doc_from_events(todo[i].hour, &start, &d);
		if (rc == STORE_OK)
			rc = doc_save(&d);
		if (rc != STORE_OK) {
			rollup_doc_free(&d);
			r->errors++;
			break;
		}
		stats_agg_merge(&t.agg, &d.agg);
		folded_set(&t, d.hour, d.bytes);
		dirty = true;
		r->lines += d.lines;
		r->bad += d.bad;
		if (todo[i].refold)
			r->refolded++;
		else
			r->folded++;
		hours_insert(&docs, &ndocs, d.hour);
		rollup_doc_free(&last);
		last = d;
		crash_point("document");
	}
	crash_point("totals");
	if (dirty && totals_save(&t) != STORE_OK)
		r->errors++;

	/* Retention: raw files of hours that are folded as they are now. */
	if (keep > 0 && r->errors == 0) {
		int64_t cutoff = hour_floor(now) - keep * 24 * HOUR_MS;
		for (size_t i = 0; i < nevs && evs[i] < cutoff && evs[i] < limit; i++) {
			char rel[64];
			struct events_fileinfo fi;
			const struct rollup_folded *f = rollup_totals_find(&t, evs[i]);
			rel_of(rel, sizeof rel, "events", evs[i], ".jsonl");
			if (f && events_file_info(rel, &fi) == STORE_OK && fi.size == f->bytes &&
			    events_file_remove(rel) == STORE_OK)
				r->removed++;
		}
	}
out:
	rollup_doc_free(&last);
	stats_state_free(&start);
	free(todo);
	free(evs);
	free(docs);
	rollup_totals_free(&t);
	return r->errors ? -1 : 0;
}

void rollup_piggyback(void)
{
	if (!json_bool_or(json_get(config_doc(), "piggyback"), "enabled", true))
		return;
	int every = (int)config_sect_int("piggyback", "rollupSeconds", 300, 10, 86400);
	int fd = cronjob_piggyback_begin(ROLLUP_JOB, every);
	if (fd < 0)
		return;
	struct rollup_opts o = ROLLUP_OPTS_DEFAULT;
	struct rollup_result r;
	o.max_hours = 6;
	o.budget_ms = 1000;
	int rc = rollup_run(&o, &r);
	struct alerts_opts ao = ALERTS_OPTS_DEFAULT;
	ao.max_notify = 3;
	ao.timeout_ms = 2000;
	struct alerts_result ar;
	alerts_run(&ao, &ar);
	cronjob_piggyback_end(ROLLUP_JOB, fd, rc == 0);
}
