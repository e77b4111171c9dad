/* rebalance: POST /api/v2/lb/rebalance's work. The load balancer (lb/lbstate.h)
 * recomputes effective weights from registry snapshots taken before and after the
 * scheduler rebuilds every server's currentLoad from the task ledger. */
#ifndef TASKGATE_REBALANCE_H
#define TASKGATE_REBALANCE_H

#include "lb/lbstate.h"

/* Fills r (the caller frees it with lb_rebalance_free); returns STORE_OK or the
 * store error of the stats write. */
int sched_rebalance(struct lb_rebalance *r);

#endif
