/* GET /api/v2/health: is taskgate itself alive (not the backends), and does the
 * Authorization header reach it. Public, so a load balancer or uptime monitor can
 * poll it without a token. */
#include "fs/store.h"
#include "model/config.h"
#include "base/util.h"
#include "app.h"

int api_health(struct http_req *rq, struct http_resp *rs)
{
	bool writable = store_writable();

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "status", writable ? "ok" : "failing");
	jg_kstr(&g, "version", TASKGATE_VERSION);
	jg_kbool(&g, "stateWritable", writable);
	jg_kint(&g, "time", now_ms());
	/* Public, so an operator can tell a host that drops credentials (suEXEC) from a
	 * wrong token before setting one up. */
	jg_kstr(&g, "authorization", rq->authorization_stripped ? "stripped"
				     : rq->authorization && *rq->authorization ? "received"
									    : "none");
	jg_key(&g, "warnings");
	jg_arr(&g);
	if (rq->authorization_stripped)
		jg_str(&g, app_stripped_authorization);
	if (config_problem())
		jg_str(&g, config_problem());
	jg_arr_end(&g);
	jg_obj_end(&g);
	int st = http_json(rs, writable ? 200 : 503, &g);
	jg_free(&g);
	return st;
}
