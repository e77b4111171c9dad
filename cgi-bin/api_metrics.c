/* GET /metrics: Prometheus text exposition (0.0.4), behind the client or admin token
 * (Prometheus sends it with `authorization: {credentials: ...}` or bearer_token_file).
 * The exposition itself is stats/metrics.c's. */
#include "base/util.h"
#include "jobs/cronjob.h"
#include "jobs/rollup.h"
#include "fs/reqcount.h"
#include "stats/metrics.h"
#include "stats/promtext.h"
#include "app.h"

int api_metrics(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	metrics_text(&rs->body, now_ms(), cronjob_last_run(ROLLUP_JOB), TASKGATE_VERSION);
	struct metrics_route routes[REQCOUNT_ROUTES];
	for (size_t i = 0; i < app_route_count && i < REQCOUNT_ROUTES; i++)
		routes[i] = (struct metrics_route){app_routes[i].method, app_routes[i].pattern};
	metrics_requests_text(&rs->body, app_route_table_hash(), routes, app_route_count);
	rs->status = 200;
	rs->content_type = PROMTEXT_CONTENT_TYPE;
	return 200;
}
