#include "stats/rollupdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hour.h"
#include "base/log.h"
#include "base/util.h"
#include "fs/statsfile.h"
#include "fs/store.h"

#define DOC_MAX (64u << 20) /* totals of a big installation stay far below */

static const struct json_limits doc_limits = {
    .max_bytes = DOC_MAX, .max_depth = 16, .max_string = 4096};

/* Reads and parses stats/<rel>: STORE_OK, STORE_NOENT, STORE_IO or STORE_CORRUPT. */
static int read_json(const char *rel, yajl_val *out)
{
	struct buf text = BUF_INIT;
	*out = NULL;
	int rc = statsfile_read(rel, 0, DOC_MAX + 1, &text, NULL);
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

void rollup_totals_set(struct rollup_totals *t, int64_t hour, uint64_t bytes)
{
	bool found;
	size_t at = folded_at(t, hour, &found);
	if (!found)
		t->f = array_insert(t->f, &t->n, &t->cap, sizeof *t->f, at, 64);
	t->f[at].hour = hour;
	t->f[at].bytes = bytes;
}

void rollup_totals_del(struct rollup_totals *t, int64_t hour)
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
			rollup_totals_set(t, hour, (uint64_t)YAJL_GET_INTEGER(v));
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

/* ---- hourly documents ---- */

void rollup_doc_free(struct rollup_doc *d)
{
	stats_agg_free(&d->agg);
	stats_state_free(&d->state);
	memset(d, 0, sizeof *d);
}

int rollup_doc_load(int64_t hour, struct rollup_doc *d)
{
	char rel[64], name[HOUR_NAME_LEN + 1];
	memset(d, 0, sizeof *d);
	stats_agg_init(&d->agg);
	statsfile_hour_rel(rel, sizeof rel, STATSFILE_HOURLY, hour, ".json");
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

void rollup_doc_finish(int64_t hour, const struct stats_agg *raw, const struct stats_state *start,
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
	rollup_doc_finish(hour, &raw, start, d);
	d->bytes = len;
	stats_agg_free(&raw);
}
