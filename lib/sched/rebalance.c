#include "sched/rebalance.h"

#include "sched/dispatch.h"

int sched_rebalance(struct lb_rebalance *r)
{
	struct server_list before;
	lb_rebalance_begin(r, &before);
	r->loads_corrected = dispatch_rebuild_load();
	return lb_rebalance_finish(r, &before);
}
