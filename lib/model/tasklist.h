/* tasklist: GET /api/v2/tasks's listing: tasks newest first, filtered by status and
 * server, a page at a time with a cursor.
 *
 * Cost: an index (fs/taskindex.h) is walked from the cursor, reading only the
 * folders that hold the page, and each task looked at is one file read. A filter
 * on COMPLETED, FAILED or CANCELLED walks finished/<STATUS>/, which holds only
 * such tasks; others walk created/. A filter that matches rarely there is bounded by TASKLIST_SCAN_MAX tasks looked at per
 * page: the page may then be short, with a cursor to go on from, so no request
 * costs more than that, however many tasks are stored. */
#ifndef TASKGATE_TASKLIST_H
#define TASKGATE_TASKLIST_H

#include <stdbool.h>

#include "base/json.h"
#include "fs/taskindex.h"

#define TASKLIST_SCAN_MAX 2000
#define TASKLIST_CURSOR_MAX TINDEX_KEY_MAX

struct tasklist_query {
	int status;	    /* enum task_status, or -1 for any */
	const char *server; /* NULL for any */
	const char *cursor; /* "" for the newest; also accepts the older "<hour>/<key>" */
	int limit;
};

/* Appends the page's tasks (public form) to g, an open array, and sets next to the
 * cursor of the next page ("" when there is none). Returns how many. */
int tasklist_page(const struct tasklist_query *q, struct jgen *g, char next[TASKLIST_CURSOR_MAX]);

/* Whether a cursor is one tasklist_page() could have issued. */
bool tasklist_cursor_valid(const char *cursor);

#endif
