/* The route table: every /api/v2 route, its handler and what it requires. The
 * OpenAPI document (openapi.json) must describe each of these; a test checks it. */
#include "app.h"

#include "fs/reqcount.h"

const struct route app_routes[] = {
	{"GET", "/api/v2/health", api_health, R_PUBLIC},
	{"GET", "/api/v2/openapi.json", api_openapi, R_PUBLIC},
	{"POST", "/api/v2/servers", api_servers_create, R_ADMIN | R_JSON_BODY},
	{"GET", "/api/v2/servers", api_servers_list, R_CLIENT},
	{"GET", "/api/v2/servers/:id", api_servers_get, R_CLIENT},
	{"DELETE", "/api/v2/servers/:id", api_servers_delete, R_ADMIN},
	{"PUT", "/api/v2/servers/:id/maintenance", api_servers_maintenance, R_ADMIN | R_JSON_BODY},
	{"POST", "/api/v2/servers/:id/heartbeat", api_servers_heartbeat, R_SELF_AUTH | R_OPT_BODY},
	{"POST", "/api/v2/tasks", api_tasks_create, R_CLIENT | R_JSON_BODY},
	{"GET", "/api/v2/tasks", api_tasks_list, R_CLIENT},
	{"GET", "/api/v2/tasks/:id", api_tasks_get, R_CLIENT},
	{"PUT", "/api/v2/tasks/:id", api_tasks_update, R_SELF_AUTH | R_STREAM_BODY},
	{"DELETE", "/api/v2/tasks/:id", api_tasks_cancel, R_CLIENT},
	{"POST", "/api/v2/tasks/:id/retry", api_tasks_retry, R_CLIENT},
	{"GET", "/api/v2/tasks/:id/retry", api_tasks_retry, R_CLIENT},
	{"POST", "/api/v2/tasks/:id/callback", api_tasks_callback, R_SELF_AUTH | R_STREAM_BODY},
	{"GET", "/api/v2/tasks/:id/files/:name", api_tasks_file, R_CLIENT},
	{"PUT", "/api/v2/uploads/:server/:secret/:name", api_uploads_put, R_SELF_AUTH | R_STREAM_BODY},
	{"GET", "/api/v2/loadbalancer/status", api_lb_status, R_CLIENT},
	{"PUT", "/api/v2/loadbalancer/config", api_lb_config, R_ADMIN | R_JSON_BODY},
	{"POST", "/api/v2/loadbalancer/rebalance", api_lb_rebalance, R_ADMIN},
	{"GET", "/api/v2/stats/tasks", api_stats_tasks, R_CLIENT},
	{"GET", "/api/v2/stats/servers", api_stats_servers, R_CLIENT},
	{"GET", "/api/v2/stats/servers/:id", api_stats_server, R_CLIENT},
	{"GET", "/api/v2/stats/hourly", api_stats_hourly, R_CLIENT},
	{"GET", "/api/v2/stats/performance", api_stats_performance, R_CLIENT},
	{"GET", "/api/v2/alerts", api_alerts_list, R_CLIENT},
	{"GET", "/metrics", api_metrics, R_CLIENT},
	{"GET", "/status", api_status_page, R_SELF_AUTH | R_BASIC},
};

const size_t app_route_count = sizeof app_routes / sizeof app_routes[0];
_Static_assert(sizeof app_routes / sizeof app_routes[0] < REQCOUNT_ROUTES,
	       "every route, and the slot of no route, has request counters");

uint64_t app_route_table_hash(void)
{
	/* FNV-1a of "METHOD pattern\n" in table order: the counters' slots are indexes. */
	static uint64_t h;
	if (h)
		return h;
	uint64_t x = 1469598103934665603ULL;
	for (size_t i = 0; i < app_route_count; i++)
		for (int part = 0; part < 2; part++) {
			const char *s = part ? app_routes[i].pattern : app_routes[i].method;
			for (; *s; s++)
				x = (x ^ (unsigned char)*s) * 1099511628211ULL;
			x = (x ^ (unsigned char)(part ? '\n' : ' ')) * 1099511628211ULL;
		}
	return h = x ? x : 1;
}
