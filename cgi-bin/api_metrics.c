/* GET /metrics: Prometheus text exposition (0.0.4), behind the client or admin token
 * (Prometheus sends it with `authorization: {credentials: ...}` or bearer_token_file).
 * The exposition itself is stats/metrics.c's. */
#include "base/util.h"
#include "jobs/cronjob.h"
#include "jobs/rollup.h"
#include "stats/metrics.h"
#include "stats/promtext.h"
#include "app.h"

static void after_piggyback(void *arg)
{
	(void)arg;
	rollup_piggyback();
}

int api_metrics(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	metrics_text(&rs->body, now_ms(), cronjob_last_run(ROLLUP_JOB), TASKGATE_VERSION);
	rs->status = 200;
	rs->content_type = PROMTEXT_CONTENT_TYPE;
	app_after(after_piggyback, NULL);
	return 200;
}
