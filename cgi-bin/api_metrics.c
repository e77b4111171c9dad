/* GET /metrics: Prometheus text exposition (0.0.4), behind the client or admin token
 * (Prometheus sends it with `authorization: {credentials: ...}` or bearer_token_file).
 * The exposition itself is stats/metrics.c's. */
#include "base/util.h"
#include "jobs/cronjob.h"
#include "jobs/rollup.h"
#include "stats/metrics.h"
#include "stats/promtext.h"
#include "app.h"

int api_metrics(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	metrics_text(&rs->body, now_ms(), cronjob_last_run(ROLLUP_JOB), TASKGATE_VERSION);
	rs->status = 200;
	rs->content_type = PROMTEXT_CONTENT_TYPE;
	return 200;
}
