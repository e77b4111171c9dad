/* GET /api/v2/alerts: the alert rules of config.json and what the rollup's last
 * evaluation recorded in stats/alerts.json (stats/alertsreport.c builds the answer). */
#include "base/json.h"
#include "jobs/cronjob.h"
#include "jobs/rollup.h"
#include "stats/alertsreport.h"
#include "app.h"

int api_alerts_list(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	struct jgen g;
	jg_init(&g);
	alerts_report(&g, cronjob_last_run(ROLLUP_JOB));
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	return st;
}
