/* server: the ServerInstance object — a backend's configuration, health and load,
 * stored as servers/<id>.json. Field names follow the design (camelCase). */
#ifndef TASKGATE_SERVER_H
#define TASKGATE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"
#include "base/strlist.h"
#include "base/verr.h"

enum server_protocol { PROTO_COG = 0, PROTO_HTTP_JSON };
/* What health checks concluded; maintenance is a separate switch layered on top.
 * starting: registered (or restarted) and not yet through its first good check,
 * e.g. a Cog still running its setup; out of placement like offline, but not a
 * failure (model/health.h says when it becomes one). Appended last so the stored
 * names and the stats' indexes of the other three keep their values. */
enum server_health { HEALTH_ONLINE = 0, HEALTH_DEGRADED, HEALTH_OFFLINE, HEALTH_STARTING };

struct server {
	char id[65];
	char *name;
	char *predict_url, *health_url, *metrics_url; /* metrics_url may be NULL */
	enum server_protocol protocol;
	int max_concurrent;
	struct strlist models, groups, tags;
	bool async, callback;
	int weight;
	int priority;
	char callback_token_hash[72]; /* "sha256:<hex>" or "" */

	bool maintenance;
	enum server_health health;
	int current_load;
	int health_score; /* 0-100 */
	int64_t last_health_check, registered_at, last_heartbeat, status_since;
	int consecutive_failures;
	int check_counter;  /* HAProxy rise/fall counter */
	int64_t next_check_at;
	double ewma_ms;	    /* response time, 0 = no data */
	int64_t last_success_at;
	/* When the current setup spell began (registration, or the first STARTING
	 * answer after a pass); 0 once a check passed. The setup grace runs from it. */
	int64_t setup_since;
	/* The last active health check, as an operator reads it (lastCheck). */
	struct {
		int64_t at; /* 0: none yet */
		bool ok;
		long http_status; /* 0: no answer */
		char verdict[12]; /* health_verdict_name(): pass, busy, starting, fail */
		char error[160];  /* why it failed; "" when ok */
	} last_check;
};

const char *server_protocol_name(enum server_protocol p);
const char *server_health_name(enum server_health h);
/* Whether checks let the LoadBalancer place tasks on a server in health h (online
 * or degraded); maintenance is checked apart. */
bool server_health_routable(enum server_health h);
/* "maintenance" while the switch is on, else the health status. */
const char *server_status(const struct server *s);

/* Validates a registration body into s (defaults filled in, timestamps set to now).
 * A new server is starting (not routable) until a check passes: the registration
 * probe, or the health job's. Returns 0, or -1 with e naming the field at fault. */
int server_from_request(yajl_val body, struct server *s, struct verr *e);
/* Reads a stored document (our own schema; missing fields take defaults). */
void server_from_doc(yajl_val doc, struct server *s);
/* The stored form: everything, including the callback token's hash. */
void server_to_doc(const struct server *s, struct jgen *g);
/* The API form: no secrets. */
void server_to_public(const struct server *s, struct jgen *g);
/* The API form an operator sees: the public one and the server's upload URL (a
 * credential of that server's; NULL leaves it out). */
void server_to_admin(const struct server *s, const char *upload_url, struct jgen *g);
void server_free(struct server *s);

/* Loads servers/<id>.json: STORE_OK, STORE_NOENT, STORE_INVALID, STORE_CORRUPT... */
int server_load(const char *id, struct server *s);
/* A snapshot of the registry: the servers that loaded, in ascending id order (a
 * stable order makes round-robin and tie-breaking deterministic). */
struct server_list {
	struct server *v;
	size_t n;
};
/* Loads every server, at most max (the first the store lists). */
void server_list_load(struct server_list *l, size_t max);
/* Frees the servers and leaves l empty. */
void server_list_free(struct server_list *l);
/* Locked read-modify-write through a struct; fn returns STORE_OK to write, anything
 * else to leave the file as it is (that code is returned). If out is not NULL it
 * receives the server as written (caller frees). */
typedef int server_edit_fn(struct server *s, void *arg);
int server_update(const char *id, server_edit_fn *fn, void *arg, struct server *out);

/* A server endpoint's URL rule: net_url_problem (net/url.h), the URL checked by
 * the parser of the client that will call it. NULL if fine, else why. */
const char *server_url_problem(const char *url);

#endif
