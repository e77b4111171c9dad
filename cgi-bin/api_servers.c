/* /api/v2/servers: the ServerRegistry over HTTP (the operations are in
 * lib/sched/registry.c). */
#include <string.h>

#include "jobs/health.h"
#include "model/auth.h"
#include "model/config.h"
#include "model/health.h"
#include "model/server.h"
#include "sched/registry.h"
#include "sched/server_health.h"
#include "sched/upload.h"
#include "app.h"

/* The server; an operator also sees its upload URL. */
static int answer_server(const struct http_req *rq, struct http_resp *rs, int status,
			 const struct server *s)
{
	struct jgen g;
	struct buf url = BUF_INIT;
	bool admin = rq->auth >= AUTH_ADMIN && upload_url(s->id, &url) == 0;
	jg_init(&g);
	server_to_admin(s, admin ? buf_str(&url) : NULL, &g);
	status = http_json(rs, status, &g);
	jg_free(&g);
	buf_free(&url);
	return status;
}

/* A new server is starting until a check passes. One probe before it is stored
 * (the health job's, with a short timeout) lets a READY server take tasks the
 * moment it is registered, and keeps one still in setup, unreachable or failing
 * out of placement until the health job sees it pass. */
static void probe_new_server(struct server *s)
{
	struct health_cfg cfg;
	struct health_outcome o;
	char why[160];
	health_cfg_load(&cfg);
	health_probe_one(s, &cfg, &o, why, sizeof why);
	health_apply(&cfg, s, &o);
}

int api_servers_create(struct http_req *rq, struct http_resp *rs)
{
	struct server s;
	struct verr e;
	if (server_from_request(rq->json, &s, &e) < 0)
		return http_problem(rs, 400, e.field, "%s", e.msg);
	probe_new_server(&s);
	int rc = registry_register(&s);
	int status;
	if (rc == STORE_OK) {
		http_header(rs, "Location", "/api/v2/servers/%s", s.id);
		status = answer_server(rq, rs, 201, &s);
	} else {
		status = app_store_problem(rs, rc, "server", s.id);
	}
	server_free(&s);
	return status;
}

int api_servers_list(struct http_req *rq, struct http_resp *rs)
{
	char status[32] = "", group[96] = "", tag[96] = "", model[96] = "";
	struct registry_filter f = {
	    .status = http_query(rq, "status", status, sizeof status) ? status : NULL,
	    .group = http_query(rq, "group", group, sizeof group) ? group : NULL,
	    .tag = http_query(rq, "tag", tag, sizeof tag) ? tag : NULL,
	    .model = http_query(rq, "model", model, sizeof model) ? model : NULL,
	};
	if (f.status && !registry_status_known(f.status))
		return http_problem(rs, 400, "status",
				    "status must be online, degraded, starting, offline or maintenance");
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_key(&g, "items");
	jg_arr(&g);
	size_t count = registry_list(&f, &g);
	jg_arr_end(&g);
	jg_kint(&g, "count", (long long)count);
	jg_obj_end(&g);
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	return st;
}

int api_servers_get(struct http_req *rq, struct http_resp *rs)
{
	struct server s;
	int rc = server_load(rq->param[0], &s);
	if (rc != STORE_OK)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	int st = answer_server(rq, rs, 200, &s);
	server_free(&s);
	return st;
}

static const char *const maintenance_members[] = {"enabled"};

int api_servers_maintenance(struct http_req *rq, struct http_resp *rs)
{
	struct verr e;
	if (config_strict_bodies() && verr_known_members(rq->json, "", maintenance_members, 1, &e) < 0)
		return http_problem(rs, 400, e.field, "%s", e.msg);
	bool enabled;
	int jrc = json_get_bool(rq->json, "enabled", &enabled);
	if (jrc == JSON_ABSENT)
		return http_problem(rs, 400, "/enabled", "enabled is required");
	if (jrc == JSON_WRONG_TYPE)
		return http_problem(rs, 400, "/enabled", "enabled must be true or false");
	struct server s;
	int rc = registry_set_maintenance(rq->param[0], enabled, &s);
	if (rc != STORE_OK && rc != STORE_UNCHANGED)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	int st = answer_server(rq, rs, 200, &s);
	server_free(&s);
	return st;
}

int api_servers_delete(struct http_req *rq, struct http_resp *rs)
{
	char force_s[8] = "";
	bool force = http_query(rq, "force", force_s, sizeof force_s) &&
		     (strcmp(force_s, "1") == 0 || strcmp(force_s, "true") == 0);
	int rc = registry_unregister(rq->param[0], force);
	if (rc == REGISTRY_BUSY)
		return http_problem(rs, 409, NULL,
				    "server '%s' still has running tasks; put it in maintenance "
				    "and wait, or add ?force=1",
				    rq->param[0]);
	if (rc != STORE_OK)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	return 204;
}

int api_servers_heartbeat(struct http_req *rq, struct http_resp *rs)
{
	const char *token = auth_bearer(rq->authorization);
	if (!token)
		return app_unauthorized(rq, rs, "Bearer realm=\"taskgate\"",
					"a heartbeat needs the admin token or the server's callback "
					"token as a Bearer token");
	struct server s;
	int rc = registry_heartbeat(rq->param[0], token, &s);
	if (rc == REGISTRY_FORBIDDEN)
		return http_problem(rs, 403, "Authorization", "the token is not valid for this server");
	if (rc != STORE_OK)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	int st = answer_server(rq, rs, 200, &s);
	server_free(&s);
	return st;
}
