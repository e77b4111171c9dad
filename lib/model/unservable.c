#include "model/unservable.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "fs/store.h"

#define UNSERVABLE_ID "unservable"

void unservable_add(struct unservable *u, const char *text, const char *model,
		    const char *task_id, int64_t since)
{
	u->tasks++;
	struct unservable_want *w = NULL;
	for (size_t i = 0; i < u->n && !w; i++)
		if (strcmp(u->v[i].text, text) == 0 && strcmp(u->v[i].model, model) == 0)
			w = &u->v[i];
	if (!w) {
		if (u->n == UNSERVABLE_WANTS_MAX)
			return;
		w = &u->v[u->n++];
		memset(w, 0, sizeof *w);
		snprintf(w->text, sizeof w->text, "%s", text);
		snprintf(w->model, sizeof w->model, "%s", model);
	}
	w->tasks++;
	if (!w->oldest[0] || since < w->since) {
		w->since = since;
		snprintf(w->oldest, sizeof w->oldest, "%s", task_id);
	}
}

static void to_json(const struct unservable *u, struct jgen *g)
{
	jg_obj(g);
	jg_kint(g, "tasks", u->tasks);
	jg_key(g, "wants");
	jg_arr(g);
	for (size_t i = 0; i < u->n; i++) {
		const struct unservable_want *w = &u->v[i];
		jg_obj(g);
		jg_kstr(g, "text", w->text);
		jg_kstr(g, "model", w->model);
		jg_kint(g, "tasks", w->tasks);
		jg_kstr(g, "oldest", w->oldest);
		jg_kint(g, "since", w->since);
		jg_obj_end(g);
	}
	jg_arr_end(g);
	jg_obj_end(g);
}

void unservable_load(struct unservable *u)
{
	memset(u, 0, sizeof *u);
	yajl_val doc;
	if (store_load(STORE_ROOT, UNSERVABLE_ID, &doc) != STORE_OK)
		return;
	/* Counts and lengths are bounded here: the file is not trusted. */
	int64_t tasks = json_int_or(doc, "tasks", 0);
	u->tasks = tasks > 0 && tasks < 1000000000 ? (int)tasks : 0;
	yajl_val wants = json_get(doc, "wants");
	for (size_t i = 0; YAJL_IS_ARRAY(wants) && i < wants->u.array.len &&
			   u->n < UNSERVABLE_WANTS_MAX;
	     i++) {
		yajl_val o = wants->u.array.values[i];
		const char *text = json_str_or(o, "text", NULL);
		int64_t n = json_int_or(o, "tasks", 0);
		if (!text || !*text || n <= 0 || n > u->tasks)
			continue;
		struct unservable_want *w = &u->v[u->n++];
		snprintf(w->text, sizeof w->text, "%s", text);
		snprintf(w->model, sizeof w->model, "%s", json_str_or(o, "model", ""));
		snprintf(w->oldest, sizeof w->oldest, "%s", json_str_or(o, "oldest", ""));
		w->tasks = (int)n;
		w->since = json_int_or(o, "since", 0);
	}
	yajl_tree_free(doc);
}

int unservable_save(const struct unservable *u)
{
	struct jgen g;
	struct buf old = BUF_INIT;
	jg_init(&g);
	to_json(u, &g);
	struct buf text = BUF_INIT;
	int rc = jg_finish(&g, &text) == 0 ? STORE_UNCHANGED : STORE_IO;
	bool same = store_load_text(STORE_ROOT, UNSERVABLE_ID, &old) == STORE_OK &&
		    old.len == text.len && memcmp(old.data, text.data, text.len) == 0;
	if (rc == STORE_UNCHANGED && !same)
		rc = store_put(STORE_ROOT, UNSERVABLE_ID, text.data, text.len);
	buf_free(&old);
	buf_free(&text);
	jg_free(&g);
	return rc;
}
