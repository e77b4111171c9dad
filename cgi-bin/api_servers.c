/* /api/v2/servers: the ServerRegistry over HTTP. */
#include <stdlib.h>
#include <string.h>

#include "model/auth.h"
#include "stats/events.h"
#include "base/log.h"
#include "model/server.h"
#include "fs/store.h"
#include "base/util.h"
#include "app.h"

#define SERVERS_LIST_MAX 10000

static int answer_server(struct http_resp *rs, int status, const struct server *s)
{
	struct jgen g;
	jg_init(&g);
	server_to_public(s, &g);
	status = http_json(rs, status, &g);
	jg_free(&g);
	return status;
}

int api_servers_create(struct http_req *rq, struct http_resp *rs)
{
	struct server s;
	struct verr e;
	if (server_from_request(rq->json, &s, &e) < 0)
		return http_problem(rs, 400, e.field, "%s", e.msg);

	struct jgen g;
	struct buf doc = BUF_INIT;
	jg_init(&g);
	server_to_doc(&s, &g);
	int rc = jg_finish(&g, &doc) == 0 ? store_create("servers", s.id, doc.data, doc.len)
					  : STORE_IO;
	jg_free(&g);
	buf_free(&doc);

	int status;
	if (rc == STORE_OK) {
		http_header(rs, "Location", "/api/v2/servers/%s", s.id);
		log_info("server %s registered (%s, %s)", s.id, server_protocol_name(s.protocol),
			 s.predict_url);
		status = answer_server(rs, 201, &s);
	} else {
		status = app_store_problem(rs, rc, "server", s.id);
	}
	server_free(&s);
	return status;
}

static const char *const status_names[] = {"online", "offline", "maintenance", "degraded"};

int api_servers_list(struct http_req *rq, struct http_resp *rs)
{
	char status[32] = "", group[96] = "", tag[96] = "", model[96] = "";
	bool has_status = http_query(rq, "status", status, sizeof status);
	bool has_group = http_query(rq, "group", group, sizeof group);
	bool has_tag = http_query(rq, "tag", tag, sizeof tag);
	bool has_model = http_query(rq, "model", model, sizeof model);
	if (has_status) {
		bool known = false;
		for (size_t i = 0; i < 4; i++)
			known |= strcmp(status, status_names[i]) == 0;
		if (!known)
			return http_problem(rs, 400, "status",
					    "status must be online, offline, maintenance or "
					    "degraded");
	}

	char(*ids)[STORE_ID_MAX + 1];
	size_t nids = store_list_ids("servers", SERVERS_LIST_MAX, &ids);

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_key(&g, "items");
	jg_arr(&g);
	size_t count = 0;
	for (size_t i = 0; i < nids; i++) {
		struct server s;
		if (server_load(ids[i], &s) == STORE_OK) {
			bool keep = (!has_status || strcmp(server_status(&s), status) == 0) &&
				    (!has_group || strlist_has(&s.groups, group)) &&
				    (!has_tag || strlist_has(&s.tags, tag)) &&
				    (!has_model || s.models.n == 0 ||
				     strlist_has(&s.models, model));
			if (keep) {
				server_to_public(&s, &g);
				count++;
			}
			server_free(&s);
		}
	}
	free(ids);
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
	int st = answer_server(rs, 200, &s);
	server_free(&s);
	return st;
}

static int set_maintenance(struct server *s, void *arg)
{
	bool enabled = *(bool *)arg;
	if (s->maintenance == enabled)
		return STORE_UNCHANGED;
	s->maintenance = enabled;
	s->status_since = now_ms();
	return STORE_OK;
}

int api_servers_maintenance(struct http_req *rq, struct http_resp *rs)
{
	bool enabled;
	int jrc = json_get_bool(rq->json, "enabled", &enabled);
	if (jrc == JSON_ABSENT)
		return http_problem(rs, 400, "enabled", "enabled is required");
	if (jrc == JSON_WRONG_TYPE)
		return http_problem(rs, 400, "enabled", "enabled must be true or false");
	struct server s;
	int rc = server_update(rq->param[0], set_maintenance, &enabled, &s);
	if (rc != STORE_OK && rc != STORE_UNCHANGED)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	if (rc == STORE_OK) {
		log_info("server %s maintenance %s", s.id, enabled ? "on" : "off");
		events_server_maintenance(s.id, enabled);
	}
	int st = answer_server(rs, 200, &s);
	server_free(&s);
	return st;
}

#define DELETE_BUSY (STORE_EDIT_BASE + 1)

/* Under the server's lock: refuse while tasks run (unless forced), else fence the
 * server off (maintenance) so no dispatch picks it between this and the unlink. */
static int retire(struct server *s, void *arg)
{
	bool force = *(bool *)arg;
	if (s->current_load > 0 && !force)
		return DELETE_BUSY;
	s->maintenance = true;
	return STORE_OK;
}

int api_servers_delete(struct http_req *rq, struct http_resp *rs)
{
	char force_s[8] = "";
	bool force = http_query(rq, "force", force_s, sizeof force_s) &&
		     (strcmp(force_s, "1") == 0 || strcmp(force_s, "true") == 0);
	struct server s;
	int rc = server_update(rq->param[0], retire, &force, &s);
	if (rc == DELETE_BUSY) {
		return http_problem(rs, 409, NULL,
				    "server '%s' still has running tasks; put it in maintenance "
				    "and wait, or add ?force=1",
				    rq->param[0]);
	}
	if (rc != STORE_OK)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	int running = s.current_load;
	server_free(&s);
	rc = store_remove("servers", rq->param[0]);
	if (rc != STORE_OK && rc != STORE_NOENT)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	log_info("server %s unregistered%s", rq->param[0], running ? " (forced)" : "");
	return 204;
}

static int touch_heartbeat(struct server *s, void *arg)
{
	(void)arg;
	s->last_heartbeat = now_ms();
	return STORE_OK;
}

int api_servers_heartbeat(struct http_req *rq, struct http_resp *rs)
{
	struct server s;
	const char *token = auth_bearer(rq->authorization);
	if (!token) {
		http_header(rs, "WWW-Authenticate", "Bearer realm=\"taskgate\"");
		return http_problem(rs, 401, NULL,
				    "a heartbeat needs the admin token or the server's callback "
				    "token as a Bearer token");
	}
	int rc = server_load(rq->param[0], &s);
	if (rc != STORE_OK)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	bool allowed = auth_level_of(token) == AUTH_ADMIN ||
		       auth_token_matches(token, s.callback_token_hash);
	server_free(&s);
	if (!allowed)
		return http_problem(rs, 403, NULL, "the token is not valid for this server");
	rc = server_update(rq->param[0], touch_heartbeat, NULL, &s);
	if (rc != STORE_OK)
		return app_store_problem(rs, rc, "server", rq->param[0]);
	int st = answer_server(rs, 200, &s);
	server_free(&s);
	return st;
}
