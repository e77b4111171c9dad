/* lbwhy: why no server takes a task, in words, as pure functions over the
 * registered servers (no I/O). Two questions:
 *
 *   could any registered server ever take it? A server "matches" when it serves
 *   the model, is in the group and has every tag, whatever its status and load
 *   (an offline or full server may come back or drain). A task no server matches
 *   is unservable: it waits until an operator registers or changes a server;
 *   lb_unmet() names the first wish nobody meets;
 *   why is it waiting now? lb_why_waiting() answers with that wish, or with the
 *   states of the servers that match ("2 servers could take it: 1 full, 1 offline").
 *
 * Queue expiry (sched/expiry) writes these words into the FAILED task's error and
 * the unservable finding and alert repeat them. */
#ifndef TASKGATE_LBWHY_H
#define TASKGATE_LBWHY_H

#include <stdbool.h>
#include <stddef.h>

#include "lb/lb.h"
#include "model/server.h"

enum lb_unmet_kind {
	LB_MET = 0,	/* some registered server matches */
	LB_UNMET_NO_SERVER, /* none is registered */
	LB_UNMET_MODEL,
	LB_UNMET_GROUP,
	LB_UNMET_TAG,
};

struct lb_unmet {
	enum lb_unmet_kind kind;
	const char *value;  /* the model, group or tag nobody meets (the task's string) */
	bool anywhere;	    /* no registered server at all has that group or tag (not only
			     * none of those serving the model, or in the group) */
	size_t matching;    /* servers that match every wish */
};

/* Which of t's wishes nobody meets, checked in the order model, group, tags. */
void lb_unmet(const struct server *v, size_t n, const struct lb_task *t, struct lb_unmet *u);
/* The wish, as the object of "N tasks want ...": "group 'cpu' that no server has",
 * "model 'sd' that no server serves", "tag 'a100' that no server for model 'sd' in
 * group 'gpu' has". "" when every wish is met. */
void lb_unmet_text(const struct lb_unmet *u, const struct lb_task *t, char *out, size_t len);
/* Why t is not running now: "no server is registered", "it wants group 'cpu' that no
 * server has", "the 2 servers that could take it are 1 full, 1 offline". */
void lb_why_waiting(const struct server *v, size_t n, const struct lb_task *t, char *out,
		    size_t len);

#endif
