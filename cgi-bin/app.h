/* app: what the route handlers share inside the FastCGI program. */
#ifndef TASKGATE_APP_H
#define TASKGATE_APP_H

#include <stdint.h>

#include "web/http.h"
#include "web/router.h"

#define TASKGATE_VERSION "0.1.0"

/* Route flags. */
#define R_PUBLIC 0u	     /* no token */
#define R_CLIENT (1u << 0)   /* client or admin token */
#define R_ADMIN (1u << 1)    /* admin token */
#define R_SELF_AUTH (1u << 2) /* the handler authenticates (callbacks, heartbeats) */
#define R_JSON_BODY (1u << 3) /* body must be a JSON document */
#define R_OPT_BODY (1u << 4)  /* a JSON body is optional */
#define R_STREAM_BODY (1u << 5) /* the handler reads the body itself, in pieces */
#define R_BASIC (1u << 6)	/* also takes the token as an HTTP Basic password (the
				 * status page, which a browser opens; nothing else) */

extern const struct route app_routes[];
extern const size_t app_route_count;
/* Identifies the route table (its methods and patterns, in order) for the request
 * counters, whose slots are its indexes (fs/reqcount). */
uint64_t app_route_table_hash(void);

/* Answers a problem for a store error code (404, 409, 503 + Retry-After, 500). */
int app_store_problem(struct http_resp *rs, int rc, const char *what, const char *id);

/* Answers 401 with the challenge (a WWW-Authenticate value) and the detail; where
 * the web server dropped the Authorization header (suEXEC, http.h), the detail says
 * so and how to pass it, since no token the client sends can help. */
int app_unauthorized(struct http_req *rq, struct http_resp *rs, const char *challenge,
		     const char *detail);
/* The sentence app_unauthorized() adds, also shown by /api/v2/health. */
extern const char app_stripped_authorization[];

/* The request left work in the tree (a send or cancel owed, a drain asked for, a
 * rollup wanted): a detached worker is started after the answer (lib/jobs/worker.h).
 * app_wake_worker_now() commits the request's writes and starts it at once, for a
 * request that waits for the work's outcome before answering (Prefer: wait). */
void app_wake_worker(void);
/* Whether this process serves one plain CGI request (not FastCGI). */
bool app_is_cgi(void);
void app_wake_worker_now(void);

/* handlers */
int api_health(struct http_req *rq, struct http_resp *rs);
int api_openapi(struct http_req *rq, struct http_resp *rs);
int api_servers_create(struct http_req *rq, struct http_resp *rs);
int api_servers_list(struct http_req *rq, struct http_resp *rs);
int api_servers_get(struct http_req *rq, struct http_resp *rs);
int api_servers_maintenance(struct http_req *rq, struct http_resp *rs);
int api_servers_delete(struct http_req *rq, struct http_resp *rs);
int api_servers_heartbeat(struct http_req *rq, struct http_resp *rs);
int api_tasks_create(struct http_req *rq, struct http_resp *rs);
int api_tasks_list(struct http_req *rq, struct http_resp *rs);
int api_tasks_get(struct http_req *rq, struct http_resp *rs);
int api_tasks_update(struct http_req *rq, struct http_resp *rs);
int api_tasks_cancel(struct http_req *rq, struct http_resp *rs);
int api_tasks_retry(struct http_req *rq, struct http_resp *rs);
int api_tasks_callback(struct http_req *rq, struct http_resp *rs);
int api_tasks_file(struct http_req *rq, struct http_resp *rs);
int api_uploads_put(struct http_req *rq, struct http_resp *rs);
void api_tasks_schedule_drain(void);
int api_lb_status(struct http_req *rq, struct http_resp *rs);
int api_lb_config(struct http_req *rq, struct http_resp *rs);
int api_lb_rebalance(struct http_req *rq, struct http_resp *rs);
int api_stats_tasks(struct http_req *rq, struct http_resp *rs);
int api_stats_servers(struct http_req *rq, struct http_resp *rs);
int api_stats_server(struct http_req *rq, struct http_resp *rs);
int api_stats_hourly(struct http_req *rq, struct http_resp *rs);
int api_stats_performance(struct http_req *rq, struct http_resp *rs);
int api_alerts_list(struct http_req *rq, struct http_resp *rs);
int api_metrics(struct http_req *rq, struct http_resp *rs);
int api_status_page(struct http_req *rq, struct http_resp *rs);

#endif
