/* lbstatus: the LoadBalancer's documents, as GET /api/v2/loadbalancer/status and
 * POST .../rebalance answer them: every server with its effective weight and why it
 * is or is not eligible for the task described, the load distribution of the last
 * hour, and what a rebalance changed. */
#ifndef TASKGATE_LBSTATUS_H
#define TASKGATE_LBSTATUS_H

#include "base/json.h"
#include "lb/lb.h"
#include "lb/lbstate.h"

/* The status document for tasks like want (model and group may be NULL). */
void lb_status_doc(const struct lb_task *want, struct jgen *g);
/* What a rebalance did (r from sched_rebalance). */
void lb_rebalance_doc(const struct lb_rebalance *r, struct jgen *g);

#endif
