/* /api/v2/loadbalancer: the LoadBalancer over HTTP: its status (with the load
 * distribution of the last hour), its configuration, and rebalancing. The choice
 * itself is lib/lb/lb.c; the state around it lib/lb/lbstate.c; the documents
 * lib/lb/lbstatus.c. */
#include "base/log.h"
#include "lb/lb.h"
#include "lb/lbstate.h"
#include "lb/lbstatus.h"
#include "sched/rebalance.h"
#include "app.h"

int api_lb_status(struct http_req *rq, struct http_resp *rs)
{
	char model[160] = "", group[96] = "";
	bool has_model = http_query(rq, "model", model, sizeof model) && model[0];
	bool has_group = http_query(rq, "group", group, sizeof group) && group[0];
	struct lb_task want = {.model = has_model ? model : NULL,
			       .group = has_group ? group : NULL};
	struct jgen g;
	jg_init(&g);
	lb_status_doc(&want, &g);
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	return st;
}

int api_lb_config(struct http_req *rq, struct http_resp *rs)
{
	struct lb_config before, after;
	struct verr e;
	lb_config_load(&before);
	int rc = lb_config_update(rq->json, &after, &e);
	if (rc == LB_CONFIG_INVALID)
		return http_problem(rs, 400, e.field, "%s", e.msg);
	if (rc != STORE_OK)
		return app_store_problem(rs, rc, "load balancer configuration", "lb");
	if (before.algorithm != after.algorithm)
		log_info("load balancer: algorithm %s -> %s", lb_algorithm_name(before.algorithm),
			 lb_algorithm_name(after.algorithm));
	struct jgen g;
	jg_init(&g);
	lb_config_to_json(&after, &g);
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	return st;
}

int api_lb_rebalance(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	struct lb_rebalance r;
	int rc = sched_rebalance(&r);
	if (rc != STORE_OK) {
		lb_rebalance_free(&r);
		return app_store_problem(rs, rc, "load balancer statistics", "lb-stats");
	}
	struct jgen g;
	jg_init(&g);
	lb_rebalance_doc(&r, &g);
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	if (r.weights_changed || r.loads_corrected)
		log_info("load balancer rebalanced: %d weights changed, %d loads corrected",
			 r.weights_changed, r.loads_corrected);
	lb_rebalance_free(&r);
	return st;
}
