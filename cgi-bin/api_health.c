/* GET /api/v2/health: is taskgate itself alive (not the backends). Public, so a
 * load balancer or uptime monitor can poll it without a token. */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "fs/store.h"
#include "base/util.h"
#include "app.h"

int api_health(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	char probe[PATH_MAX];
	/* A real write, because access(W_OK) says nothing about a full or read-only
	 * file system. */
	snprintf(probe, sizeof probe, "%s/run", store_root());
	bool writable = store_write_file(probe, "health-probe", "ok\n", 3, false) == STORE_OK;

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "status", writable ? "ok" : "failing");
	jg_kstr(&g, "version", TASKGATE_VERSION);
	jg_kbool(&g, "stateWritable", writable);
	jg_kint(&g, "time", now_ms());
	jg_obj_end(&g);
	int st = http_json(rs, writable ? 200 : 503, &g);
	jg_free(&g);
	return st;
}
