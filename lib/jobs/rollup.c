#include "jobs/rollup.h"
#include "base/hour.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/alerts.h"
#include "model/config.h"
#include "jobs/cronjob.h"
#include "fs/statsfile.h"
#include "base/log.h"
#include "fs/store.h"
#include "base/util.h"

#define READ_CHUNK (8u << 20)	/* events are folded in chunks of this size */
#define EVENTS_MAX (4ull << 30) /* an hour's events file beyond this is not read */

static int totals_save(const struct rollup_totals *t)
{
	struct jgen g;
	jg_init(&g);
	rollup_totals_to_json(t, &g);
	int rc = statsfile_write_json("", "totals.json", &g);
	jg_free(&g);
	return rc;
}

/* Folds the events file of hour in chunks; d->bytes is the size it had when we
 * started (lines appended meanwhile are left for a re-fold). */
static int doc_from_events(int64_t hour, const struct stats_state *start, struct rollup_doc *d)
{
	char rel[64];
	struct stats_agg raw;
	struct buf chunk = BUF_INIT;
	struct file_stamp fi;
	memset(d, 0, sizeof *d);
	stats_agg_init(&d->agg);
	stats_agg_init(&raw);
	statsfile_hour_rel(rel, sizeof rel, STATSFILE_EVENTS, hour, ".jsonl");
	int rc = statsfile_info(rel, &fi);
	uint64_t size = rc == STORE_OK ? fi.size : 0, off = 0;
	if (size > EVENTS_MAX) {
		log_error("stats: %s is larger than %llu bytes; only its start is folded", rel,
			  (unsigned long long)EVENTS_MAX);
		size = EVENTS_MAX;
	}
	while (rc == STORE_OK && off < size) {
		size_t keep = chunk.len;
		uint64_t want = size - off < READ_CHUNK ? size - off : READ_CHUNK;
		rc = statsfile_read(rel, off, want, &chunk, NULL);
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
		rollup_doc_finish(hour, &raw, start, d);
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
	int rc = statsfile_write_json(STATSFILE_HOURLY, name, &g);
	jg_free(&g);
	return rc;
}

/* A document that does not parse is derived data: set it aside so that the hour is
 * folded again from its events. */
static void doc_discard(int64_t hour)
{
	char rel[64];
	statsfile_hour_rel(rel, sizeof rel, STATSFILE_HOURLY, hour, ".json");
	log_error("stats: stats/%s does not parse; removed (the hour is folded again from "
		  "its events if they are still kept)",
		  rel);
	statsfile_remove(rel);
}

/* ---- sorted hour lists ---- */

static void hours_insert(int64_t **v, size_t *n, int64_t h)
{
	if (statsfile_hours_has(*v, *n, h))
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
			rollup_totals_set(t, docs[i], d.bytes);
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
	size_t ndocs = statsfile_list_hours(STATSFILE_HOURLY, ".json", &docs);
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
	size_t ndocs = statsfile_list_hours(STATSFILE_HOURLY, ".json", &docs);
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

/* One run's working state; run_begin() sets it up, run_end() frees it. */
struct run {
	const struct rollup_opts *o;
	struct rollup_result *r;
	int64_t now, started;
	int64_t limit;	/* hours before it are finished */
	long long keep; /* days of raw events to keep (0: all) */
	struct rollup_totals t;
	int totals_rc;			/* how loading totals went */
	bool dirty;			/* t differs from totals.json */
	int64_t *docs, *evs;		/* hours with a document, with an events file */
	size_t ndocs, nevs;
	struct todo *todo;
	size_t ntodo;
	struct rollup_doc last;	  /* the latest document written (its state carries) */
	struct stats_state start; /* the servers' state the next fold starts from */
};

static void run_begin(struct run *x, const struct rollup_opts *o, struct rollup_result *r)
{
	memset(x, 0, sizeof *x);
	memset(r, 0, sizeof *r);
	x->o = o;
	x->r = r;
	x->now = o->now ? o->now : now_ms();
	x->started = mono_ms();
	long long grace =
	    o->grace_s >= 0 ? o->grace_s : config_sect_int("stats", "graceSeconds", 120, 0, 86400);
	x->keep = o->keep_days >= 0 ? o->keep_days
				    : config_sect_int("stats", "eventsRetentionDays", 30, 0, 36500);
	x->limit = hour_floor(x->now - grace * 1000);

	/* A killed run may have left half-written temp files; we hold the run lock, so
	 * no writer of these folders is alive. */
	statsfile_clean_temp(STATSFILE_HOURLY);
	statsfile_clean_temp("");
	x->totals_rc = rollup_totals_load(&x->t);
	x->ndocs = statsfile_list_hours(STATSFILE_HOURLY, ".json", &x->docs);
}

static void run_end(struct run *x)
{
	rollup_doc_free(&x->last);
	stats_state_free(&x->start);
	free(x->todo);
	free(x->evs);
	free(x->docs);
	rollup_totals_free(&x->t);
}

/* Documents a crashed run wrote but did not list: count them now. */
static void recover_unlisted(struct run *x)
{
	for (size_t i = 0; i < x->ndocs; i++) {
		if (rollup_totals_find(&x->t, x->docs[i]))
			continue;
		struct rollup_doc d;
		int rc = rollup_doc_load(x->docs[i], &d);
		if (rc == STORE_OK) {
			stats_agg_merge(&x->t.agg, &d.agg);
			rollup_totals_set(&x->t, x->docs[i], d.bytes);
			x->r->recovered++;
			x->dirty = true;
		} else if (rc == STORE_CORRUPT) {
			doc_discard(x->docs[i]);
		}
		rollup_doc_free(&d);
	}
}

/* Makes totals agree with the documents (I1) before anything is folded. */
static void reconcile(struct run *x)
{
	/* I1 needs every listed hour's document; if one vanished, recount from scratch. */
	bool lost = false;
	for (size_t i = 0; i < x->t.n && !lost; i++)
		lost = !statsfile_hours_has(x->docs, x->ndocs, x->t.f[i].hour);
	if (lost || (x->totals_rc != STORE_OK && x->ndocs > 0)) {
		if (lost)
			log_warn("stats: a folded hour's document is missing; totals are "
				 "recomputed from the documents");
		rebuild_from_docs(&x->t, x->docs, x->ndocs);
		x->r->rebuilt = true;
		x->dirty = true;
	} else {
		recover_unlisted(x);
	}
	/* The document list again: discarded ones are gone. */
	free(x->docs);
	x->ndocs = statsfile_list_hours(STATSFILE_HOURLY, ".json", &x->docs);
}

/* What is there to fold: finished hours never folded, or grown since. */
static void plan(struct run *x)
{
	x->nevs = statsfile_list_hours(STATSFILE_EVENTS, ".jsonl", &x->evs);
	x->todo = calloc(x->nevs + 1, sizeof *x->todo);
	if (!x->todo)
		abort();
	for (size_t i = 0; i < x->nevs && x->evs[i] < x->limit; i++) {
		char rel[64];
		struct file_stamp fi;
		statsfile_hour_rel(rel, sizeof rel, STATSFILE_EVENTS, x->evs[i], ".jsonl");
		if (statsfile_info(rel, &fi) != STORE_OK)
			continue;
		const struct rollup_folded *f = rollup_totals_find(&x->t, x->evs[i]);
		if (f && f->bytes == fi.size)
			continue;
		if (x->o->max_hours > 0 && (int)x->ntodo >= x->o->max_hours) {
			x->r->pending++;
			continue;
		}
		x->todo[x->ntodo].hour = x->evs[i];
		x->todo[x->ntodo].refold = f != NULL;
		x->ntodo++;
	}
}

/* I2: a listed hour's document changes only after totals stop listing it. STORE_OK
 * or the failure (logged, counted). */
static int unlist_refolds(struct run *x)
{
	bool any_refold = false;
	for (size_t i = 0; i < x->ntodo; i++)
		if (x->todo[i].refold) {
			rollup_totals_del(&x->t, x->todo[i].hour);
			any_refold = true;
		}
	if (!any_refold)
		return STORE_OK;
	int rc = resum_listed(&x->t);
	if (rc == STORE_OK)
		rc = totals_save(&x->t);
	if (rc != STORE_OK) {
		log_error("stats: cannot prepare the re-fold: %s", store_strerror(rc));
		x->r->errors++;
		return rc;
	}
	x->dirty = false;
	crash_point("unlisted");
	return STORE_OK;
}

/* Whether the run must stop before folding another hour (time budget, SIGTERM). */
static bool out_of_time(const struct run *x)
{
	return (x->o->budget_ms > 0 && mono_ms() - x->started > x->o->budget_ms) ||
	       cronjob_stopping();
}

/* Folds and writes the planned hours in order; stops at the first failure. */
static void fold_planned(struct run *x)
{
	for (size_t i = 0; i < x->ntodo; i++) {
		if (out_of_time(x)) {
			x->r->pending += (int)(x->ntodo - i);
			break;
		}
		struct rollup_doc d;
		state_before(x->todo[i].hour, x->docs, x->ndocs, &x->last, &x->start);
		int rc = doc_from_events(x->todo[i].hour, &x->start, &d);
		if (rc == STORE_OK)
			rc = doc_save(&d);
		if (rc != STORE_OK) {
			rollup_doc_free(&d);
			x->r->errors++;
			break;
		}
		stats_agg_merge(&x->t.agg, &d.agg);
		rollup_totals_set(&x->t, d.hour, d.bytes);
		x->dirty = true;
		x->r->lines += d.lines;
		x->r->bad += d.bad;
		if (x->todo[i].refold)
			x->r->refolded++;
		else
			x->r->folded++;
		hours_insert(&x->docs, &x->ndocs, d.hour);
		rollup_doc_free(&x->last);
		x->last = d;
		crash_point("document");
	}
}

/* Retention: raw files of hours that are folded as they are now. */
static void remove_old_events(struct run *x)
{
	if (x->keep <= 0 || x->r->errors != 0)
		return;
	int64_t cutoff = hour_floor(x->now) - x->keep * 24 * HOUR_MS;
	for (size_t i = 0; i < x->nevs && x->evs[i] < cutoff && x->evs[i] < x->limit; i++) {
		char rel[64];
		struct file_stamp fi;
		const struct rollup_folded *f = rollup_totals_find(&x->t, x->evs[i]);
		statsfile_hour_rel(rel, sizeof rel, STATSFILE_EVENTS, x->evs[i], ".jsonl");
		if (f && statsfile_info(rel, &fi) == STORE_OK && fi.size == f->bytes &&
		    statsfile_remove(rel) == STORE_OK)
			x->r->removed++;
	}
}

int rollup_run(const struct rollup_opts *o, struct rollup_result *r)
{
	struct run x;
	run_begin(&x, o, r);
	reconcile(&x);
	plan(&x);
	if (unlist_refolds(&x) == STORE_OK) {
		fold_planned(&x);
		crash_point("totals");
		if (x.dirty && totals_save(&x.t) != STORE_OK)
			r->errors++;
		remove_old_events(&x);
	}
	run_end(&x);
	return r->errors ? -1 : 0;
}

bool rollup_piggyback_due(void)
{
	return json_bool_or(json_get(config_doc(), "piggyback"), "enabled", true) &&
	       cronjob_overdue(ROLLUP_JOB,
			       (int)config_sect_int("piggyback", "rollupSeconds", 300, 10, 86400));
}

bool rollup_piggyback(void)
{
	if (!json_bool_or(json_get(config_doc(), "piggyback"), "enabled", true))
		return false;
	int every = (int)config_sect_int("piggyback", "rollupSeconds", 300, 10, 86400);
	int fd = cronjob_piggyback_begin(ROLLUP_JOB, every);
	if (fd < 0)
		return false;
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
	return true;
}
