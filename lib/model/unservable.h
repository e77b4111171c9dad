/* unservable: the document of queued tasks that no registered server could ever
 * take (a model nobody serves, a group or tag nobody has), <root>/unservable.json.
 * sched/expiry writes it on every sweep that looked at the queue, and only when it
 * changed; the findings, the status page and the unservable_tasks alert read it,
 * so an operator hears of such tasks within a sweep of their creation, long before
 * they expire. A hint like the indexes: the task files are the truth.
 *
 *   {"tasks": 3, "wants": [{"text": "group 'cpu' that no server has",
 *     "model": "sd", "tasks": 3, "oldest": "<task id>", "since": <ms>}]}
 *
 * text is the object of "N tasks want ..." (lb/lbwhy.h's words). */
#ifndef TASKGATE_UNSERVABLE_H
#define TASKGATE_UNSERVABLE_H

#include <stddef.h>
#include <stdint.h>

#define UNSERVABLE_WANTS_MAX 20 /* distinct wishes kept; the tasks of others still count */

struct unservable_want {
	char text[400];
	char model[129];
	int tasks;
	char oldest[40]; /* the longest-waiting of them */
	int64_t since;	 /* when it was queued */
};

struct unservable {
	int tasks; /* every unservable task seen, in a kept wish or not */
	struct unservable_want v[UNSERVABLE_WANTS_MAX];
	size_t n;
};

/* Counts one task under its wish (text and model; since: when it was queued). */
void unservable_add(struct unservable *u, const char *text, const char *model,
		    const char *task_id, int64_t since);
/* Reads the document; an absent or damaged one reads as empty. */
void unservable_load(struct unservable *u);
/* Writes it when it differs from the stored one. STORE_OK, STORE_UNCHANGED or a
 * STORE_ error. */
int unservable_save(const struct unservable *u);

#endif
