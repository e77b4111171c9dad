#include "sched/registry.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "model/auth.h"
#include "stats/events.h"

#define REGISTRY_LIST_MAX 10000

int registry_register(const struct server *s)
{
	struct jgen g;
	struct buf doc = BUF_INIT;
	jg_init(&g);
	server_to_doc(s, &g);
	int rc = jg_finish(&g, &doc) == 0 ? store_create("servers", s->id, doc.data, doc.len)
					  : STORE_IO;
	jg_free(&g);
	buf_free(&doc);
	if (rc == STORE_OK)
		log_info("server %s registered (%s, %s), %s", s->id,
			 server_protocol_name(s->protocol), s->predict_url, server_status(s));
	return rc;
}

static const char *const status_names[] = {"online",	"offline", "maintenance",
					   "degraded", "starting"};

bool registry_status_known(const char *name)
{
	for (size_t i = 0; i < sizeof status_names / sizeof *status_names; i++)
		if (strcmp(name, status_names[i]) == 0)
			return true;
	return false;
}

static bool matches(const struct server *s, const struct registry_filter *f)
{
	return (!f->status || strcmp(server_status(s), f->status) == 0) &&
	       (!f->group || strlist_has(&s->groups, f->group)) &&
	       (!f->tag || strlist_has(&s->tags, f->tag)) &&
	       (!f->model || s->models.n == 0 || strlist_has(&s->models, f->model));
}

size_t registry_list(const struct registry_filter *f, struct jgen *g)
{
	char(*ids)[STORE_ID_MAX + 1];
	size_t nids = store_list_ids("servers", REGISTRY_LIST_MAX, &ids);
	size_t count = 0;
	for (size_t i = 0; i < nids; i++) {
		struct server s;
		if (server_load(ids[i], &s) != STORE_OK)
			continue;
		if (matches(&s, f)) {
			server_to_public(&s, g);
			count++;
		}
		server_free(&s);
	}
	free(ids);
	return count;
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

int registry_set_maintenance(const char *id, bool enabled, struct server *out)
{
	int rc = server_update(id, set_maintenance, &enabled, out);
	if (rc == STORE_OK) {
		log_info("server %s maintenance %s", out->id, enabled ? "on" : "off");
		events_server_maintenance(out->id, enabled);
	}
	return rc;
}

/* Under the server's lock: refuse while tasks run (unless forced), else fence the
 * server off (maintenance) so no dispatch picks it between this and the unlink. */
static int retire(struct server *s, void *arg)
{
	bool force = *(bool *)arg;
	if (s->current_load > 0 && !force)
		return REGISTRY_BUSY;
	s->maintenance = true;
	return STORE_OK;
}

int registry_unregister(const char *id, bool force)
{
	struct server s;
	int rc = server_update(id, retire, &force, &s);
	if (rc != STORE_OK)
		return rc;
	int running = s.current_load;
	server_free(&s);
	rc = store_remove("servers", id);
	if (rc != STORE_OK && rc != STORE_NOENT)
		return rc;
	log_info("server %s unregistered%s", id, running ? " (forced)" : "");
	return STORE_OK;
}

static int touch_heartbeat(struct server *s, void *arg)
{
	(void)arg;
	s->last_heartbeat = now_ms();
	return STORE_OK;
}

int registry_heartbeat(const char *id, const char *token, struct server *out)
{
	struct server s;
	int rc = server_load(id, &s);
	if (rc != STORE_OK)
		return rc;
	bool allowed = auth_level_of(token) == AUTH_ADMIN ||
		       auth_token_matches(token, s.callback_token_hash);
	server_free(&s);
	if (!allowed)
		return REGISTRY_FORBIDDEN;
	return server_update(id, touch_heartbeat, NULL, out);
}
