#include "model/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/store.h"
#include "model/config.h"
#include "base/util.h"
#include "net/url.h"

#define NAME_MAX_LEN 128
#define LABEL_MAX_LEN 64
#define LABELS_MAX 64

static const char *const protocol_names[] = {"cog", "http-json"};
static const char *const health_names[] = {"online", "degraded", "offline", "starting"};
#define HEALTH_NAMES (sizeof health_names / sizeof health_names[0])

const char *server_protocol_name(enum server_protocol p)
{
	return protocol_names[p];
}

const char *server_health_name(enum server_health h)
{
	return health_names[h];
}

bool server_health_routable(enum server_health h)
{
	return h == HEALTH_ONLINE || h == HEALTH_DEGRADED;
}

const char *server_status(const struct server *s)
{
	return s->maintenance ? "maintenance" : health_names[s->health];
}

const char *server_url_problem(const char *url)
{
	return net_url_problem(url);
}

static int get_url(yajl_val obj, const char *key, const char *field, bool required,
		   char **out, struct verr *e)
{
	const char *s;
	int rc = json_get_str(obj, key, &s);
	if (rc == JSON_ABSENT) {
		if (required)
			return verr_set(e, field, "%s is required", field);
		return 0;
	}
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, field, "%s must be a string", field);
	const char *why = server_url_problem(s);
	if (why)
		return verr_set(e, field, "%s %s", field, why);
	*out = xstrdup(s);
	return 0;
}

static int get_labels(yajl_val obj, const char *key, const char *field, struct strlist *out,
		      struct verr *e)
{
	yajl_val arr;
	int rc = json_get_arr(obj, key, &arr);
	if (rc == JSON_ABSENT)
		return 0;
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, field, "%s must be an array of strings", field);
	if (arr->u.array.len > LABELS_MAX)
		return verr_set(e, field, "%s has more than %d entries", field, LABELS_MAX);
	for (size_t i = 0; i < arr->u.array.len; i++) {
		yajl_val v = arr->u.array.values[i];
		if (!YAJL_IS_STRING(v))
			return verr_set(e, field, "%s[%zu] must be a string", field, i);
		const char *s = YAJL_GET_STRING(v);
		size_t n = strlen(s);
		if (n == 0 || n > LABEL_MAX_LEN)
			return verr_set(e, field, "%s[%zu] must be 1 to %d characters", field, i,
					LABEL_MAX_LEN);
		for (size_t c = 0; c < n; c++)
			if ((unsigned char)s[c] < 0x20)
				return verr_set(e, field, "%s[%zu] contains a control character",
						field, i);
		if (!strlist_has(out, s))
			strlist_add(out, s);
	}
	return 0;
}

static int get_bool(yajl_val obj, const char *key, const char *field, bool *out,
		    struct verr *e)
{
	int rc = json_get_bool(obj, key, out);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, field, "%s must be true or false", field);
	return 0;
}

static void server_defaults(struct server *s)
{
	memset(s, 0, sizeof *s);
	s->protocol = PROTO_HTTP_JSON;
	s->max_concurrent = 1;
	s->weight = 1;
	/* A stored server without a health field (trees older than the field) is
	 * trusted until checks say otherwise, as HAProxy starts servers up; the
	 * counter sits at the top so one failed check does not drop it. A new
	 * registration is the exception (server_from_request). */
	s->health = HEALTH_ONLINE;
	s->health_score = 100;
	s->check_counter = -1; /* "at the top", resolved by the health module */
}

/* The members of a registration (openapi.json ServerRegistration, Endpoints,
 * Capabilities). */
static const char *const registration_members[] = {
    "id", "name", "protocol", "endpoints", "capabilities", "weight", "priority", "groups", "tags",
    "callbackToken"};
static const char *const endpoint_members[] = {"predict", "health", "metrics"};
static const char *const capability_members[] = {"maxConcurrent", "supportedModels", "async",
						 "callback"};
#define COUNT(a) (sizeof(a) / sizeof(a)[0])

static int known_members(yajl_val body, struct verr *e)
{
	if (!config_strict_bodies())
		return 0;
	if (verr_known_members(body, "", registration_members, COUNT(registration_members), e) < 0 ||
	    verr_known_members(json_get(body, "endpoints"), "endpoints", endpoint_members,
			       COUNT(endpoint_members), e) < 0 ||
	    verr_known_members(json_get(body, "capabilities"), "capabilities", capability_members,
			       COUNT(capability_members), e) < 0)
		return -1;
	return 0;
}

static int validate(yajl_val body, struct server *s, struct verr *e)
{
	const char *str;
	int rc;

	if (!body || !YAJL_IS_OBJECT(body))
		return verr_set(e, "", "the body must be a JSON object");
	if (known_members(body, e) < 0)
		return -1;

	rc = json_get_str(body, "id", &str);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "id", "id must be a string");
	if (rc == JSON_OK) {
		if (!store_id_valid(str))
			return verr_set(e, "id",
					"id must be 1 to 64 characters of letters, digits, '-' "
					"and '_', starting with a letter or digit");
		snprintf(s->id, sizeof s->id, "%s", str);
	} else {
		uuid_new(s->id);
	}

	rc = json_get_str(body, "name", &str);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "name", "name must be a string");
	if (rc == JSON_OK && (strlen(str) == 0 || strlen(str) > NAME_MAX_LEN))
		return verr_set(e, "name", "name must be 1 to %d characters", NAME_MAX_LEN);
	s->name = xstrdup(rc == JSON_OK ? str : s->id);

	rc = json_get_str(body, "protocol", &str);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "protocol", "protocol must be a string");
	if (rc == JSON_OK) {
		if (strcmp(str, "cog") == 0)
			s->protocol = PROTO_COG;
		else if (strcmp(str, "http-json") == 0)
			s->protocol = PROTO_HTTP_JSON;
		else
			return verr_set(e, "protocol", "protocol must be \"cog\" or \"http-json\"");
	}

	yajl_val ep;
	rc = json_get_obj(body, "endpoints", &ep);
	if (rc == JSON_ABSENT)
		return verr_set(e, "endpoints", "endpoints is required");
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "endpoints", "endpoints must be an object");
	if (get_url(ep, "predict", "endpoints.predict", true, &s->predict_url, e) < 0 ||
	    get_url(ep, "health", "endpoints.health", true, &s->health_url, e) < 0 ||
	    get_url(ep, "metrics", "endpoints.metrics", false, &s->metrics_url, e) < 0)
		return -1;

	yajl_val caps = NULL;
	rc = json_get_obj(body, "capabilities", &caps);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "capabilities", "capabilities must be an object");
	if (verr_opt_int(caps, "maxConcurrent", "capabilities.maxConcurrent", 1, 10000,
			 &s->max_concurrent, e) < 0 ||
	    get_labels(caps, "supportedModels", "capabilities.supportedModels", &s->models, e) < 0 ||
	    get_bool(caps, "async", "capabilities.async", &s->async, e) < 0 ||
	    get_bool(caps, "callback", "capabilities.callback", &s->callback, e) < 0)
		return -1;
	/* Cog always answers asynchronously through its webhook. */
	if (s->protocol == PROTO_COG)
		s->async = s->callback = true;

	if (verr_opt_int(body, "weight", NULL, 1, 1000, &s->weight, e) < 0 ||
	    verr_opt_int(body, "priority", NULL, -1000, 1000, &s->priority, e) < 0 ||
	    get_labels(body, "groups", "groups", &s->groups, e) < 0 ||
	    get_labels(body, "tags", "tags", &s->tags, e) < 0)
		return -1;

	rc = json_get_str(body, "callbackToken", &str);
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, "callbackToken", "callbackToken must be a string");
	if (rc == JSON_OK) {
		if (strlen(str) < 16 || strlen(str) > 256)
			return verr_set(e, "callbackToken",
					"callbackToken must be 16 to 256 characters");
		char hex[65];
		sha256_hex(str, strlen(str), hex);
		snprintf(s->callback_token_hash, sizeof s->callback_token_hash, "sha256:%s",
			 hex);
	}
	return 0;
}

int server_from_request(yajl_val body, struct server *s, struct verr *e)
{
	server_defaults(s);
	int64_t now = now_ms();
	s->registered_at = s->last_heartbeat = s->status_since = now;
	/* Not routable before a check passed: a Cog still in setup answers 409 or 503
	 * to predictions. The registration probe usually settles it at once. */
	s->health = HEALTH_STARTING;
	s->check_counter = 0;
	s->setup_since = now;
	if (validate(body, s, e) < 0) {
		server_free(s);
		return -1;
	}
	return 0;
}

static enum server_health health_from_name(const char *n)
{
	for (size_t i = 0; i < HEALTH_NAMES; i++)
		if (strcmp(n, health_names[i]) == 0)
			return (enum server_health)i;
	return HEALTH_OFFLINE;
}

void server_from_doc(yajl_val doc, struct server *s)
{
	server_defaults(s);
	snprintf(s->id, sizeof s->id, "%s", json_str_or(doc, "id", ""));
	s->name = xstrdup(json_str_or(doc, "name", s->id));
	s->protocol = strcmp(json_str_or(doc, "protocol", ""), "cog") == 0 ? PROTO_COG
									     : PROTO_HTTP_JSON;
	yajl_val ep = json_get(doc, "endpoints");
	s->predict_url = xstrdup(json_str_or(ep, "predict", ""));
	s->health_url = xstrdup(json_str_or(ep, "health", ""));
	const char *m = json_str_or(ep, "metrics", NULL);
	s->metrics_url = m ? xstrdup(m) : NULL;
	yajl_val caps = json_get(doc, "capabilities");
	s->max_concurrent = (int)json_int_or(caps, "maxConcurrent", 1);
	strlist_from_json(&s->models, json_get(caps, "supportedModels"));
	s->async = json_bool_or(caps, "async", false);
	s->callback = json_bool_or(caps, "callback", false);
	s->weight = (int)json_int_or(doc, "weight", 1);
	s->priority = (int)json_int_or(doc, "priority", 0);
	strlist_from_json(&s->groups, json_get(doc, "groups"));
	strlist_from_json(&s->tags, json_get(doc, "tags"));
	snprintf(s->callback_token_hash, sizeof s->callback_token_hash, "%s",
		 json_str_or(doc, "callbackTokenHash", ""));
	s->maintenance = json_bool_or(doc, "maintenance", false);
	s->health = health_from_name(json_str_or(doc, "health", "online"));
	s->current_load = (int)json_int_or(doc, "currentLoad", 0);
	s->health_score = (int)json_int_or(doc, "healthScore", 100);
	s->last_health_check = json_int_or(doc, "lastHealthCheck", 0);
	s->registered_at = json_int_or(doc, "registeredAt", 0);
	s->last_heartbeat = json_int_or(doc, "lastHeartbeat", 0);
	s->status_since = json_int_or(doc, "statusSince", 0);
	s->consecutive_failures = (int)json_int_or(doc, "consecutiveFailures", 0);
	s->check_counter = (int)json_int_or(doc, "checkCounter", -1);
	s->next_check_at = json_int_or(doc, "nextCheckAt", 0);
	s->ewma_ms = json_num_or(doc, "responseTimeEwmaMs", 0);
	s->last_success_at = json_int_or(doc, "lastSuccessAt", 0);
	s->setup_since = json_int_or(doc, "setupSince", 0);
	yajl_val lc = json_get(doc, "lastCheck");
	if (lc && YAJL_IS_OBJECT(lc)) {
		s->last_check.at = json_int_or(lc, "at", 0);
		s->last_check.ok = json_bool_or(lc, "ok", false);
		s->last_check.http_status = (long)json_int_or(lc, "status", 0);
		snprintf(s->last_check.verdict, sizeof s->last_check.verdict, "%s",
			 json_str_or(lc, "verdict", "fail"));
		snprintf(s->last_check.error, sizeof s->last_check.error, "%s",
			 json_str_or(lc, "error", ""));
	}
}

/* lastCheck: null before the first active check. */
static void last_check_to_json(const struct server *s, struct jgen *g)
{
	jg_key(g, "lastCheck");
	if (!s->last_check.at) {
		jg_null(g);
		return;
	}
	jg_obj(g);
	jg_kint(g, "at", s->last_check.at);
	jg_kbool(g, "ok", s->last_check.ok);
	jg_key(g, "status");
	if (s->last_check.http_status > 0)
		jg_int(g, s->last_check.http_status);
	else
		jg_null(g);
	jg_kstr(g, "verdict", s->last_check.verdict);
	jg_kstr(g, "error", s->last_check.error[0] ? s->last_check.error : NULL);
	jg_obj_end(g);
}

/* Fields both forms share, in the order an operator reads them. */
static void common_fields(const struct server *s, struct jgen *g)
{
	jg_kstr(g, "id", s->id);
	jg_kstr(g, "name", s->name);
	jg_key(g, "endpoints");
	jg_obj(g);
	jg_kstr(g, "predict", s->predict_url);
	jg_kstr(g, "health", s->health_url);
	if (s->metrics_url)
		jg_kstr(g, "metrics", s->metrics_url);
	jg_obj_end(g);
	jg_kstr(g, "protocol", server_protocol_name(s->protocol));
	jg_key(g, "capabilities");
	jg_obj(g);
	jg_kint(g, "maxConcurrent", s->max_concurrent);
	jg_key(g, "supportedModels");
	strlist_to_json(&s->models, g);
	jg_kbool(g, "async", s->async);
	jg_kbool(g, "callback", s->callback);
	jg_obj_end(g);
	jg_kint(g, "weight", s->weight);
	jg_kint(g, "priority", s->priority);
	jg_key(g, "groups");
	strlist_to_json(&s->groups, g);
	jg_key(g, "tags");
	strlist_to_json(&s->tags, g);
	jg_kstr(g, "status", server_status(s));
	jg_kint(g, "currentLoad", s->current_load);
	jg_kint(g, "healthScore", s->health_score);
	jg_kint(g, "lastHealthCheck", s->last_health_check);
	last_check_to_json(s, g);
	jg_kint(g, "consecutiveFailures", s->consecutive_failures);
	jg_kint(g, "registeredAt", s->registered_at);
	jg_kint(g, "lastHeartbeat", s->last_heartbeat);
	jg_kint(g, "statusSince", s->status_since);
	jg_key(g, "setupSince"); /* null unless a setup spell is under way */
	if (s->setup_since > 0)
		jg_int(g, s->setup_since);
	else
		jg_null(g);
	jg_knum(g, "responseTimeEwmaMs", s->ewma_ms);
}

void server_to_doc(const struct server *s, struct jgen *g)
{
	jg_obj(g);
	common_fields(s, g);
	jg_kstr(g, "health", server_health_name(s->health));
	jg_kbool(g, "maintenance", s->maintenance);
	jg_kstr(g, "callbackTokenHash", s->callback_token_hash);
	jg_kint(g, "checkCounter", s->check_counter);
	jg_kint(g, "nextCheckAt", s->next_check_at);
	jg_kint(g, "lastSuccessAt", s->last_success_at);
	jg_obj_end(g);
}

void server_to_public(const struct server *s, struct jgen *g)
{
	server_to_admin(s, NULL, g);
}

void server_to_admin(const struct server *s, const char *upload_url, struct jgen *g)
{
	jg_obj(g);
	common_fields(s, g);
	jg_kbool(g, "hasCallbackToken", s->callback_token_hash[0] != '\0');
	if (upload_url)
		jg_kstr(g, "uploadUrl", upload_url);
	jg_obj_end(g);
}

void server_free(struct server *s)
{
	free(s->name);
	free(s->predict_url);
	free(s->health_url);
	free(s->metrics_url);
	strlist_free(&s->models);
	strlist_free(&s->groups);
	strlist_free(&s->tags);
	s->name = s->predict_url = s->health_url = s->metrics_url = NULL;
}

int server_load(const char *id, struct server *s)
{
	yajl_val doc;
	int rc = store_load("servers", id, &doc);
	if (rc != STORE_OK)
		return rc;
	server_from_doc(doc, s);
	yajl_tree_free(doc);
	return STORE_OK;
}

static char *dup_or_null(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static void strlist_copy(struct strlist *to, const struct strlist *from)
{
	memset(to, 0, sizeof *to);
	for (size_t i = 0; i < from->n; i++)
		strlist_add(to, from->v[i]);
}

/* A deep copy: to owns its own strings. */
static void server_copy(struct server *to, const struct server *from)
{
	*to = *from;
	to->name = dup_or_null(from->name);
	to->predict_url = dup_or_null(from->predict_url);
	to->health_url = dup_or_null(from->health_url);
	to->metrics_url = dup_or_null(from->metrics_url);
	strlist_copy(&to->models, &from->models);
	strlist_copy(&to->groups, &from->groups);
	strlist_copy(&to->tags, &from->tags);
}

/* Parsed servers kept across requests by a process, each valid while its file is
 * the same one (device, inode, mtime, size): every write renames a new file into
 * place, so a change is always seen. Placing a task reads the whole registry;
 * with this it costs a stat per server instead of a parse per server, which kept
 * creation with 100 servers near the speed with one. */
struct cached_server {
	struct file_stamp st;
	struct server s;
};
static struct cached_server *cache;
static size_t cache_n;

static struct cached_server *cache_find(const char *id)
{
	/* The cache is in id order, like the listing. */
	size_t lo = 0, hi = cache_n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(cache[mid].s.id, id);
		if (c == 0)
			return &cache[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void server_list_load(struct server_list *l, size_t max)
{
	char(*ids)[STORE_ID_MAX + 1] = NULL;
	size_t n = store_list_ids("servers", max, &ids);
	struct cached_server *fresh = n ? calloc(n, sizeof *fresh) : NULL;
	l->v = n ? calloc(n, sizeof *l->v) : NULL;
	l->n = 0;
	if (n && (!fresh || !l->v))
		abort();
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		struct file_stamp st;
		struct cached_server *c = cache_find(ids[i]);
		store_stamp("servers", ids[i], &st);
		if (!st.present)
			continue; /* removed since the listing */
		if (c && file_stamp_same(&c->st, &st)) {
			fresh[kept] = *c;
			memset(&c->s, 0, sizeof c->s); /* ownership moved to fresh */
		} else {
			if (server_load(ids[i], &fresh[kept].s) != STORE_OK)
				continue;
			fresh[kept].st = st;
		}
		server_copy(&l->v[l->n++], &fresh[kept].s);
		kept++;
	}
	for (size_t i = 0; i < cache_n; i++)
		server_free(&cache[i].s);
	free(cache);
	cache = fresh;
	cache_n = kept;
	free(ids); /* in ascending order (store_list_ids sorts): so are l and the cache */
}

void server_list_free(struct server_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		server_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct edit_ctx {
	server_edit_fn *fn;
	void *arg;
	struct server *out;
};

static int server_edit(yajl_val old, struct jgen *g, void *arg)
{
	struct edit_ctx *c = arg;
	struct server s;
	server_from_doc(old, &s);
	int rc = c->fn(&s, c->arg);
	if (rc == STORE_OK)
		server_to_doc(&s, g);
	if (c->out && (rc == STORE_OK || rc == STORE_UNCHANGED))
		*c->out = s; /* ownership moves to the caller */
	else
		server_free(&s);
	return rc;
}

int server_update(const char *id, server_edit_fn *fn, void *arg, struct server *out)
{
	struct edit_ctx c = {fn, arg, out};
	if (out)
		memset(out, 0, sizeof *out);
	int rc = store_update("servers", id, 0, server_edit, &c);
	if (out && rc != STORE_OK && rc != STORE_UNCHANGED)
		server_free(out); /* the edit ran but the write failed */
	return rc;
}
