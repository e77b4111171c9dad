#include "model/tasklist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/task.h"

/* Tasks looked at per walk of the index: a page's worth plus room for a filter. */
#define WALK_BATCH 256

bool tasklist_cursor_valid(const char *cursor)
{
	return strlen(cursor) < TASKLIST_CURSOR_MAX &&
	       strspn(cursor, "0123456789abcdef-/") == strlen(cursor);
}

/* Loads the task and, when it matches, appends its public form to g (if g). */
static bool matches(const struct tasklist_query *q, const char *id, struct jgen *g)
{
	yajl_val doc;
	if (task_load_doc(id, &doc) != STORE_OK)
		return false; /* a stale index entry: retention or a crash */
	struct task t;
	task_from_doc(doc, &t);
	bool m = (q->status < 0 || (int)t.status == q->status) &&
		 (!q->server || strcmp(t.server_id, q->server) == 0);
	if (m && g)
		task_to_public(&t, g);
	task_free(&t);
	yajl_tree_free(doc);
	return m;
}

/* A filter on a terminal status walks that status's own index, which holds only
 * tasks that ended so: the page costs its own size. Any other walks created/. */
static size_t walk(const struct tasklist_query *q, const char *after,
		   struct tindex_created_item *out, size_t max)
{
	if (q->status >= 0 && task_status_terminal((enum task_status)q->status))
		return tindex_finished_walk(task_status_name((enum task_status)q->status), after,
					    out, max);
	return tindex_created_walk(after, out, max);
}

int tasklist_page(const struct tasklist_query *q, struct jgen *g, char next[TASKLIST_CURSOR_MAX])
{
	/* Keys sort as (createdAt, id); an older cursor carried the hour in front. */
	const char *slash = strrchr(q->cursor, '/');
	char at[TASKLIST_CURSOR_MAX];
	snprintf(at, sizeof at, "%s", slash ? slash + 1 : q->cursor);
	struct tindex_created_item *batch = calloc(WALK_BATCH, sizeof *batch);
	if (!batch)
		abort();
	int items = 0, scanned = 0;
	bool more = true, full = false;
	next[0] = '\0';
	/* The page: its cursor is the key of the last task looked at, so the next
	 * page resumes right after it and nothing is looked at twice. */
	while (!full && scanned < TASKLIST_SCAN_MAX) {
		size_t want = WALK_BATCH;
		size_t got = walk(q, at, batch, want);
		for (size_t i = 0; i < got && !full && scanned < TASKLIST_SCAN_MAX; i++) {
			scanned++;
			snprintf(at, sizeof at, "%s", batch[i].key);
			if (matches(q, batch[i].id, g) && ++items >= q->limit)
				full = true;
		}
		if (!full && got < want && scanned < TASKLIST_SCAN_MAX) {
			more = false; /* the index has no more */
			break;
		}
	}
	/* After a full page, a look ahead (within what is left of the budget) lets the
	 * last page say there is none after it instead of sending the client for an
	 * empty one. Out of budget counts as "there may be more". */
	if (full) {
		char ahead[TASKLIST_CURSOR_MAX];
		snprintf(ahead, sizeof ahead, "%s", at);
		more = false;
		while (!more && scanned < TASKLIST_SCAN_MAX) {
			size_t got = walk(q, ahead, batch, WALK_BATCH);
			for (size_t i = 0; i < got && !more && scanned < TASKLIST_SCAN_MAX; i++) {
				scanned++;
				snprintf(ahead, sizeof ahead, "%s", batch[i].key);
				more = matches(q, batch[i].id, NULL);
			}
			if (got < WALK_BATCH)
				break;
		}
		if (scanned >= TASKLIST_SCAN_MAX)
			more = true;
	}
	free(batch);
	if (more)
		snprintf(next, TASKLIST_CURSOR_MAX, "%s", at);
	return items;
}
