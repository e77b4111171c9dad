/* Unit tests for lib/server.c: registration validation (every error names its
 * field), defaults, URL checks, the stored and public documents, and the store
 * round trip through server_load/server_update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/server.h"
#include "fs/store.h"
#include "base/util.h"
#include "testutil.h"

#define EP                                                                                         \
	"\"endpoints\":{\"predict\":\"http://127.0.0.1:9000/predict\","                            \
	"\"health\":\"http://127.0.0.1:9000/health\"}"
#define MINIMAL "{" EP "}"

/* ---- helpers ---- */

static yajl_val parse(const char *text)
{
	struct buf err = BUF_INIT;
	yajl_val v = json_parse(text, strlen(text), NULL, &err);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", buf_str(&err), text);
	buf_free(&err);
	return v;
}

/* Validates a registration body given as JSON text. */
static int reg(const char *json, struct server *s, struct verr *e)
{
	yajl_val body = parse(json);
	memset(e, 0, sizeof *e);
	int rc = server_from_request(body, s, e);
	yajl_tree_free(body);
	return rc;
}

/* The stored or public document of s as a parsed tree. */
static yajl_val to_tree(const struct server *s, bool public_form)
{
	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	if (public_form)
		server_to_public(s, &g);
	else
		server_to_doc(s, &g);
	assert_int_equal(jg_finish(&g, &out), 0);
	jg_free(&g);
	yajl_val v = parse(buf_str(&out));
	buf_free(&out);
	return v;
}

/* A string of n copies of c (static; one at a time). */
static const char *rep(char c, size_t n)
{
	static char s[4096];
	assert_true(n < sizeof s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- validation ---- */

static void test_minimal_registration_defaults(void **state)
{
	struct server s;
	struct verr e;
	int64_t before = now_ms();
	assert_int_equal(reg(MINIMAL, &s, &e), 0);
	/* No id given: a fresh UUID, which is also a valid store id. */
	assert_int_equal(strlen(s.id), 36);
	assert_true(store_id_valid(s.id));
	assert_string_equal(s.name, s.id); /* name defaults to the id */
	assert_int_equal(s.protocol, PROTO_HTTP_JSON);
	assert_string_equal(s.predict_url, "http://127.0.0.1:9000/predict");
	assert_string_equal(s.health_url, "http://127.0.0.1:9000/health");
	assert_null(s.metrics_url);
	assert_int_equal(s.max_concurrent, 1);
	assert_int_equal(s.weight, 1);
	assert_int_equal(s.priority, 0);
	assert_int_equal(s.models.n, 0);
	assert_int_equal(s.groups.n, 0);
	assert_int_equal(s.tags.n, 0);
	assert_false(s.async);
	assert_false(s.callback);
	assert_string_equal(s.callback_token_hash, "");
	assert_false(s.maintenance);
	/* Not routable until a check passes (the registration probe's or the job's). */
	assert_int_equal(s.health, HEALTH_STARTING);
	assert_string_equal(server_status(&s), "starting");
	assert_int_equal(s.check_counter, 0);
	assert_int_equal(s.health_score, 100);
	assert_int_equal(s.current_load, 0);
	assert_in_range(s.registered_at, before, now_ms());
	assert_int_equal(s.last_heartbeat, s.registered_at);
	assert_int_equal(s.status_since, s.registered_at);
	assert_int_equal(s.setup_since, s.registered_at);

	/* Two registrations without ids get different ids. */
	struct server t;
	assert_int_equal(reg(MINIMAL, &t, &e), 0);
	assert_string_not_equal(s.id, t.id);
	server_free(&s);
	server_free(&t);
}

static void test_full_registration(void **state)
{
	const char *token = "callback-secret-0123456789";
	char body[2048];
	snprintf(body, sizeof body,
		 "{\"id\":\"gpu-1\",\"name\":\"GPU one\",\"protocol\":\"http-json\","
		 "\"endpoints\":{\"predict\":\"https://b.example:8443/v1/p?x=1\","
		 "\"health\":\"http://[::1]:9000/h\",\"metrics\":\"http://b.example/metrics\"},"
		 "\"capabilities\":{\"maxConcurrent\":8,\"supportedModels\":[\"sdxl\",\"llama\","
		 "\"sdxl\"],\"async\":true,\"callback\":false},"
		 "\"weight\":5,\"priority\":-3,\"groups\":[\"eu\"],\"tags\":[\"fast\",\"a100\"],"
		 "\"callbackToken\":\"%s\"}",
		 token);
	struct server s;
	struct verr e;
	if (reg(body, &s, &e) != 0)
		fail_msg("refused: %s: %s", e.field, e.msg);
	assert_string_equal(s.id, "gpu-1");
	assert_string_equal(s.name, "GPU one");
	assert_string_equal(s.predict_url, "https://b.example:8443/v1/p?x=1");
	assert_string_equal(s.metrics_url, "http://b.example/metrics");
	assert_int_equal(s.max_concurrent, 8);
	assert_int_equal(s.models.n, 2); /* the duplicate is dropped */
	assert_true(strlist_has(&s.models, "sdxl"));
	assert_true(strlist_has(&s.models, "llama"));
	assert_true(s.async);
	assert_false(s.callback);
	assert_int_equal(s.weight, 5);
	assert_int_equal(s.priority, -3);
	assert_true(strlist_has(&s.groups, "eu"));
	assert_int_equal(s.tags.n, 2);
	/* Only the digest of the callback token is kept. */
	char hex[65], want[80];
	sha256_hex(token, strlen(token), hex);
	snprintf(want, sizeof want, "sha256:%s", hex);
	assert_string_equal(s.callback_token_hash, want);
	server_free(&s);
}

static void test_cog_is_always_async_with_callback(void **state)
{
	struct server s;
	struct verr e;
	assert_int_equal(reg("{\"protocol\":\"cog\"," EP ",\"capabilities\":{\"async\":false,"
			     "\"callback\":false}}",
			     &s, &e),
			 0);
	assert_int_equal(s.protocol, PROTO_COG);
	assert_true(s.async);
	assert_true(s.callback);
	assert_string_equal(server_protocol_name(s.protocol), "cog");
	server_free(&s);
}

static void test_nulls_count_as_absent(void **state)
{
	struct server s;
	struct verr e;
	assert_int_equal(reg("{\"id\":null,\"name\":null,\"weight\":null,\"tags\":null,"
			     "\"capabilities\":null,\"callbackToken\":null,"
			     "\"endpoints\":{\"predict\":\"http://a/p\",\"health\":\"http://a/h\","
			     "\"metrics\":null}}",
			     &s, &e),
			 0);
	assert_int_equal(strlen(s.id), 36);
	assert_int_equal(s.weight, 1);
	assert_null(s.metrics_url);
	assert_string_equal(s.callback_token_hash, "");
	server_free(&s);
}

struct bad_case {
	const char *body;
	const char *field;
};

/* Bodies built around the valid minimal one, each wrong in exactly one field. */
#define WITH(extra)  "{" EP "," extra "}"
#define CAPS(extra)  WITH("\"capabilities\":{" extra "}")
#define EPS(p, h, m) "{\"endpoints\":{\"predict\":" p ",\"health\":" h m "}}"
#define OKP	     "\"http://a/p\""
#define OKH	     "\"http://a/h\""

static void test_every_error_names_its_field(void **state)
{
	char long_id[512], long_name[512], long_label[512], many_labels[1024], long_token[512];
	snprintf(long_id, sizeof long_id, WITH("\"id\":\"%s\""), rep('a', 65));
	snprintf(long_name, sizeof long_name, WITH("\"name\":\"%s\""), rep('n', 129));
	snprintf(long_label, sizeof long_label, WITH("\"tags\":[\"%s\"]"), rep('t', 65));
	size_t o = (size_t)snprintf(many_labels, sizeof many_labels, "{" EP ",\"groups\":[");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(many_labels + o, sizeof many_labels - o, "%s\"g%d\"",
				      i ? "," : "", i);
	snprintf(many_labels + o, sizeof many_labels - o, "]}");
	snprintf(long_token, sizeof long_token, WITH("\"callbackToken\":\"%s\""), rep('k', 257));

	const struct bad_case cases[] = {
	    {"[]", ""},
	    {"\"x\"", ""},
	    {WITH("\"id\":5"), "id"},
	    {WITH("\"id\":\"\""), "id"},
	    {WITH("\"id\":\"a/b\""), "id"},
	    {WITH("\"id\":\"..\""), "id"},
	    {WITH("\"id\":\"-x\""), "id"},
	    {long_id, "id"},
	    {WITH("\"name\":5"), "name"},
	    {WITH("\"name\":\"\""), "name"},
	    {long_name, "name"},
	    {WITH("\"protocol\":\"grpc\""), "protocol"},
	    {WITH("\"protocol\":1"), "protocol"},
	    {"{}", "endpoints"},
	    {"{\"endpoints\":\"http://a/\"}", "endpoints"},
	    {"{\"endpoints\":[]}", "endpoints"},
	    {EPS("null", OKH, ""), "endpoints.predict"},
	    {EPS("5", OKH, ""), "endpoints.predict"},
	    {EPS("\"ftp://a/p\"", OKH, ""), "endpoints.predict"},
	    {EPS("\"not a url\"", OKH, ""), "endpoints.predict"},
	    {EPS("\"/relative\"", OKH, ""), "endpoints.predict"},
	    {EPS("\"\"", OKH, ""), "endpoints.predict"},
	    {EPS(OKP, "null", ""), "endpoints.health"},
	    {EPS(OKP, "\"file:///etc/passwd\"", ""), "endpoints.health"},
	    {EPS(OKP, OKH, ",\"metrics\":\"gopher://a/\""), "endpoints.metrics"},
	    {EPS(OKP, OKH, ",\"metrics\":true"), "endpoints.metrics"},
	    {WITH("\"capabilities\":\"x\""), "capabilities"},
	    {CAPS("\"maxConcurrent\":0"), "capabilities.maxConcurrent"},
	    {CAPS("\"maxConcurrent\":10001"), "capabilities.maxConcurrent"},
	    {CAPS("\"maxConcurrent\":1.5"), "capabilities.maxConcurrent"},
	    {CAPS("\"maxConcurrent\":\"3\""), "capabilities.maxConcurrent"},
	    {CAPS("\"maxConcurrent\":-1"), "capabilities.maxConcurrent"},
	    {CAPS("\"supportedModels\":\"sdxl\""), "capabilities.supportedModels"},
	    {CAPS("\"supportedModels\":[1]"), "capabilities.supportedModels"},
	    {CAPS("\"supportedModels\":[\"\"]"), "capabilities.supportedModels"},
	    {CAPS("\"supportedModels\":[\"a\\nb\"]"), "capabilities.supportedModels"},
	    {CAPS("\"async\":\"yes\""), "capabilities.async"},
	    {CAPS("\"callback\":1"), "capabilities.callback"},
	    {WITH("\"weight\":0"), "weight"},
	    {WITH("\"weight\":1001"), "weight"},
	    {WITH("\"weight\":\"2\""), "weight"},
	    {WITH("\"priority\":1001"), "priority"},
	    {WITH("\"priority\":-1001"), "priority"},
	    {WITH("\"groups\":{}"), "groups"},
	    {many_labels, "groups"},
	    {WITH("\"tags\":[null]"), "tags"},
	    {long_label, "tags"},
	    {WITH("\"callbackToken\":5"), "callbackToken"},
	    {WITH("\"callbackToken\":\"fifteen-chars!!\""), "callbackToken"},
	    {long_token, "callbackToken"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct server s;
		struct verr e;
		memset(&s, 0, sizeof s);
		int rc = reg(cases[i].body, &s, &e);
		if (rc != -1)
			fail_msg("case %zu accepted: %s", i, cases[i].body);
		/* The field is the JSON pointer of the dotted name ("" is the body, "/"). */
		char want[128] = "/";
		for (size_t c = 0; cases[i].field[c] && c + 2 < sizeof want; c++)
			want[c + 1] = cases[i].field[c] == '.' ? '/' : cases[i].field[c];
		if (strcmp(e.field, want) != 0)
			fail_msg("case %zu: field '%s', want '%s' (%s)", i, e.field, want,
				 cases[i].body);
		/* The message is for a human and names the field too. */
		if (!e.msg[0] || (cases[i].field[0] && !strstr(e.msg, cases[i].field)))
			fail_msg("case %zu: message '%s' does not name '%s'", i, e.msg,
				 cases[i].field);
		/* On failure nothing is left allocated (valgrind) and s is reset. */
		assert_null(s.name);
		assert_null(s.predict_url);
	}
}

static void test_boundaries_accepted(void **state)
{
	char body[4096];
	size_t o = (size_t)snprintf(
	    body, sizeof body,
	    "{\"id\":\"%s\",\"name\":\"%s\"," EP ","
	    "\"capabilities\":{\"maxConcurrent\":10000.0},\"weight\":1000,\"priority\":-1000,"
	    "\"callbackToken\":\"sixteen-chars!!!\",\"tags\":[\"%s\"],\"groups\":[",
	    "A", rep('n', 128), "t");
	for (int i = 0; i < 64; i++)
		o += (size_t)snprintf(body + o, sizeof body - o, "%s\"g%d\"", i ? "," : "", i);
	snprintf(body + o, sizeof body - o, "]}");

	struct server s;
	struct verr e;
	if (reg(body, &s, &e) != 0)
		fail_msg("refused %s: %s", e.field, e.msg);
	assert_string_equal(s.id, "A");
	assert_int_equal(strlen(s.name), 128);
	assert_int_equal(s.max_concurrent, 10000); /* 10000.0 is an integer */
	assert_int_equal(s.weight, 1000);
	assert_int_equal(s.priority, -1000);
	assert_int_equal(s.groups.n, 64);
	assert_int_not_equal(s.callback_token_hash[0], '\0');
	server_free(&s);

	char other[512];
	snprintf(other, sizeof other,
		 WITH("\"id\":\"%s\",\"capabilities\":{\"maxConcurrent\":1},\"weight\":1,"
		      "\"priority\":1000,\"tags\":[\"%s\"]"),
		 rep('z', 64), "x");
	if (reg(other, &s, &e) != 0)
		fail_msg("refused %s: %s", e.field, e.msg);
	assert_int_equal(strlen(s.id), 64);
	server_free(&s);
}

static void test_url_problem(void **state)
{
	const char *good[] = {
	    "http://a/",
	    "http://127.0.0.1:9000/predict",
	    "https://backend.example.com:8443/v1/predict?model=x&y=%20",
	    "http://[::1]:8080/",
	    "HTTP://EXAMPLE.COM/", /* scheme case does not matter */
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (server_url_problem(good[i]))
			fail_msg("'%s' refused: %s", good[i], server_url_problem(good[i]));

	const char *bad[] = {
	    "",
	    "/predict",
	    "example.com/predict",
	    "ftp://a/",
	    "file:///etc/passwd",
	    "gopher://a/",
	    "http://",
	    "http://a b/",
	    "http://a:99999/",
	    "http://a/ b",
	    "http://a/\tb",
	    "javascript:alert(1)",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!server_url_problem(bad[i]))
			fail_msg("'%s' accepted", bad[i]);

	/* The length limit is checked before anything is parsed. */
	char long_url[2100];
	snprintf(long_url, sizeof long_url, "http://a/%s", rep('x', 2040));
	assert_non_null(server_url_problem(long_url));
	assert_non_null(strstr(server_url_problem(long_url), "2048"));
	snprintf(long_url, sizeof long_url, "http://a/%s", rep('x', 2039)); /* 2048 */
	assert_null(server_url_problem(long_url));
}

/* ---- documents ---- */

static void test_doc_round_trip(void **state)
{
	struct server s, t;
	struct verr e;
	assert_int_equal(
	    reg("{\"id\":\"rt\",\"name\":\"Round \\\"trip\\\" \\u00e9\","
		"\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://a/p\","
		"\"health\":\"http://a/h\",\"metrics\":\"http://a/m\"},"
		"\"capabilities\":{\"maxConcurrent\":4,\"supportedModels\":[\"m1\"]},"
		"\"weight\":7,\"priority\":9,\"groups\":[\"g\"],\"tags\":[\"t1\",\"t2\"],"
		"\"callbackToken\":\"0123456789abcdef\"}",
		&s, &e),
	    0);
	/* Runtime fields the health and load modules maintain. */
	s.maintenance = true;
	s.health = HEALTH_DEGRADED;
	s.current_load = 3;
	s.health_score = 42;
	s.last_health_check = 1700000000123;
	s.consecutive_failures = 2;
	s.check_counter = 5;
	s.next_check_at = 1700000009999;
	s.ewma_ms = 12.75;
	s.last_success_at = 1700000000001;
	s.last_check.at = 1700000000123;
	s.last_check.ok = false;
	s.last_check.http_status = 503;
	snprintf(s.last_check.verdict, sizeof s.last_check.verdict, "fail");
	snprintf(s.last_check.error, sizeof s.last_check.error, "HTTP 503");

	yajl_val doc = to_tree(&s, false);
	server_from_doc(doc, &t);
	yajl_tree_free(doc);

	assert_string_equal(t.id, s.id);
	assert_string_equal(t.name, "Round \"trip\" \xc3\xa9");
	assert_int_equal(t.protocol, PROTO_COG);
	assert_string_equal(t.predict_url, s.predict_url);
	assert_string_equal(t.health_url, s.health_url);
	assert_string_equal(t.metrics_url, s.metrics_url);
	assert_int_equal(t.max_concurrent, 4);
	assert_int_equal(t.models.n, 1);
	assert_string_equal(t.models.v[0], "m1");
	assert_true(t.async);
	assert_true(t.callback);
	assert_int_equal(t.weight, 7);
	assert_int_equal(t.priority, 9);
	assert_int_equal(t.groups.n, 1);
	assert_int_equal(t.tags.n, 2);
	assert_string_equal(t.tags.v[1], "t2");
	assert_string_equal(t.callback_token_hash, s.callback_token_hash);
	assert_true(t.maintenance);
	assert_int_equal(t.health, HEALTH_DEGRADED);
	assert_string_equal(server_status(&t), "maintenance");
	assert_int_equal(t.current_load, 3);
	assert_int_equal(t.health_score, 42);
	assert_int_equal(t.last_health_check, 1700000000123);
	assert_int_equal(t.registered_at, s.registered_at);
	assert_int_equal(t.last_heartbeat, s.last_heartbeat);
	assert_int_equal(t.status_since, s.status_since);
	assert_int_equal(t.consecutive_failures, 2);
	assert_int_equal(t.check_counter, 5);
	assert_int_equal(t.next_check_at, 1700000009999);
	assert_true(t.ewma_ms == 12.75);
	assert_int_equal(t.last_success_at, 1700000000001);
	assert_int_equal(t.last_check.at, 1700000000123);
	assert_false(t.last_check.ok);
	assert_int_equal(t.last_check.http_status, 503);
	assert_string_equal(t.last_check.verdict, "fail");
	assert_string_equal(t.last_check.error, "HTTP 503");
	server_free(&s);
	server_free(&t);
}

static void test_public_form_has_no_secrets(void **state)
{
	struct server s;
	struct verr e;
	assert_int_equal(reg(WITH("\"callbackToken\":\"0123456789abcdef-secret\""), &s, &e), 0);
	s.check_counter = 3;
	yajl_val pub = to_tree(&s, true);
	assert_null(json_get(pub, "callbackTokenHash"));
	assert_null(json_get(pub, "callbackToken"));
	assert_null(json_get(pub, "checkCounter")); /* internal bookkeeping stays inside */
	assert_true(json_bool_or(pub, "hasCallbackToken", false));
	assert_string_equal(json_str_or(pub, "status", ""), "starting");
	assert_int_equal(json_int_or(pub, "setupSince", 0), s.setup_since);
	assert_string_equal(json_str_or(pub, "id", ""), s.id);
	/* And nothing anywhere in the text holds the hash. */
	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	server_to_public(&s, &g);
	assert_int_equal(jg_finish(&g, &out), 0);
	assert_null(strstr(buf_str(&out), s.callback_token_hash + 7));
	buf_free(&out);
	jg_free(&g);
	yajl_tree_free(pub);

	s.callback_token_hash[0] = '\0';
	pub = to_tree(&s, true);
	assert_false(json_bool_or(pub, "hasCallbackToken", true));
	yajl_tree_free(pub);
	server_free(&s);
}

static void test_from_doc_defaults_and_names(void **state)
{
	/* Our own files may predate a field: missing fields take defaults. */
	yajl_val doc = parse("{\"id\":\"old\"}");
	struct server s;
	server_from_doc(doc, &s);
	yajl_tree_free(doc);
	assert_string_equal(s.id, "old");
	assert_string_equal(s.name, "old");
	assert_int_equal(s.protocol, PROTO_HTTP_JSON);
	assert_string_equal(s.predict_url, "");
	assert_null(s.metrics_url);
	assert_int_equal(s.max_concurrent, 1);
	assert_int_equal(s.weight, 1);
	assert_int_equal(s.check_counter, -1);
	assert_int_equal(s.health, HEALTH_ONLINE);
	assert_int_equal(s.health_score, 100);
	server_free(&s);

	/* An unknown health word is treated as offline (fail safe). */
	doc = parse("{\"id\":\"x\",\"health\":\"sideways\"}");
	server_from_doc(doc, &s);
	yajl_tree_free(doc);
	assert_int_equal(s.health, HEALTH_OFFLINE);
	assert_string_equal(server_status(&s), "offline");
	server_free(&s);

	assert_string_equal(server_health_name(HEALTH_ONLINE), "online");
	assert_string_equal(server_health_name(HEALTH_DEGRADED), "degraded");
	assert_string_equal(server_health_name(HEALTH_OFFLINE), "offline");
	assert_string_equal(server_protocol_name(PROTO_HTTP_JSON), "http-json");
}

/* ---- through the store ---- */

struct tmp_state {
	char *dir;
};

static int store_setup(void **state)
{
	struct tmp_state *t = calloc(1, sizeof *t);
	t->dir = tu_mkdtemp();
	*state = t;
	return store_init(t->dir);
}

static int store_teardown(void **state)
{
	struct tmp_state *t = *state;
	tu_rmtree(t->dir);
	free(t->dir);
	free(t);
	return 0;
}

static void save(const struct server *s)
{
	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	server_to_doc(s, &g);
	assert_int_equal(jg_finish(&g, &out), 0);
	assert_int_equal(store_create("servers", s->id, out.data, out.len), STORE_OK);
	buf_free(&out);
	jg_free(&g);
}

static int set_maintenance(struct server *s, void *arg)
{
	s->maintenance = *(bool *)arg;
	return STORE_OK;
}

static int no_change(struct server *s, void *arg)
{
	(*(int *)arg)++;
	return STORE_UNCHANGED;
}

static int refuse(struct server *s, void *arg)
{
	return STORE_EDIT_BASE + 1;
}

static void test_load_and_update(void **state)
{
	struct server s, got;
	struct verr e;
	assert_int_equal(reg(WITH("\"id\":\"st-1\",\"weight\":3"), &s, &e), 0);
	save(&s);

	assert_int_equal(server_load("st-1", &got), STORE_OK);
	assert_int_equal(got.weight, 3);
	assert_false(got.maintenance);
	server_free(&got);
	assert_int_equal(server_load("missing", &got), STORE_NOENT);
	assert_int_equal(server_load("../x", &got), STORE_INVALID);

	/* An edit that writes: out receives the server as written. */
	bool on = true;
	struct server out;
	assert_int_equal(server_update("st-1", set_maintenance, &on, &out), STORE_OK);
	assert_true(out.maintenance);
	assert_string_equal(out.predict_url, s.predict_url);
	server_free(&out);
	assert_int_equal(server_load("st-1", &got), STORE_OK);
	assert_true(got.maintenance);
	assert_string_equal(server_status(&got), "maintenance");
	server_free(&got);

	/* STORE_UNCHANGED still hands out the current server; nothing is written. */
	int calls = 0;
	assert_int_equal(server_update("st-1", no_change, &calls, &out), STORE_UNCHANGED);
	assert_int_equal(calls, 1);
	assert_string_equal(out.id, "st-1");
	assert_true(out.maintenance);
	server_free(&out);

	/* A refusal returns the edit's code; out is left empty (nothing to free). */
	assert_int_equal(server_update("st-1", refuse, NULL, &out), STORE_EDIT_BASE + 1);
	assert_null(out.name);
	/* Updating a missing server never runs the edit. */
	calls = 0;
	assert_int_equal(server_update("ghost", no_change, &calls, NULL), STORE_NOENT);
	assert_int_equal(calls, 0);
	server_free(&s);
}

/* The registry snapshot is cached per process; it must still show every write,
 * addition and removal made since (here through the store, as another process
 * would). */
static void test_list_sees_every_change(void **state)
{
	(void)state;
	struct server a, b;
	struct verr e;
	struct server_list l;
	assert_int_equal(reg(WITH("\"id\":\"la\",\"weight\":1"), &a, &e), 0);
	assert_int_equal(reg(WITH("\"id\":\"lb\",\"weight\":2"), &b, &e), 0);
	save(&a);
	server_list_load(&l, 100);
	assert_int_equal(l.n, 1);
	assert_false(l.v[0].maintenance);
	server_list_free(&l);

	save(&b);
	bool on = true;
	assert_int_equal(server_update("la", set_maintenance, &on, NULL), STORE_OK);
	for (int round = 0; round < 2; round++) { /* the second round comes from the cache */
		server_list_load(&l, 100);
		assert_int_equal(l.n, 2);
		assert_string_equal(l.v[0].id, "la");
		assert_true(l.v[0].maintenance);
		assert_string_equal(l.v[1].id, "lb");
		assert_int_equal(l.v[1].weight, 2);
		assert_string_equal(l.v[1].predict_url, b.predict_url);
		server_list_free(&l);
	}
	assert_int_equal(store_remove("servers", "la"), STORE_OK);
	server_list_load(&l, 100);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, "lb");
	server_list_free(&l);
	server_free(&a);
	server_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_minimal_registration_defaults),
	    cmocka_unit_test(test_full_registration),
	    cmocka_unit_test(test_cog_is_always_async_with_callback),
	    cmocka_unit_test(test_nulls_count_as_absent),
	    cmocka_unit_test(test_every_error_names_its_field),
	    cmocka_unit_test(test_boundaries_accepted),
	    cmocka_unit_test(test_url_problem),
	    cmocka_unit_test(test_doc_round_trip),
	    cmocka_unit_test(test_public_form_has_no_secrets),
	    cmocka_unit_test(test_from_doc_defaults_and_names),
	    cmocka_unit_test_setup_teardown(test_load_and_update, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_list_sees_every_change, store_setup,
					    store_teardown),
	};
	return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
