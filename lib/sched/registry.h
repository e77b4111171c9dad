/* registry: the seed's ServerRegistry operations over the stored servers:
 * register, list with filters, maintenance on and off, unregister, heartbeat.
 * Handlers parse the request, call one of these, and map the code to a status.
 * Each returns STORE_OK or a STORE_* code (REGISTRY_* for its own refusals). */
#ifndef TASKGATE_REGISTRY_H
#define TASKGATE_REGISTRY_H

#include <stdbool.h>

#include "base/json.h"
#include "fs/store.h"
#include "model/server.h"

enum registry_rc {
	REGISTRY_BUSY = STORE_EDIT_BASE + 1, /* unregister refused: tasks still run there */
	REGISTRY_FORBIDDEN,		     /* heartbeat with a token not valid for it */
};

/* Stores a validated registration (s stays the caller's). STORE_EXISTS when the id
 * is taken. */
int registry_register(const struct server *s);

struct registry_filter {
	const char *status; /* server_status() name, or NULL */
	const char *group, *tag, *model; /* NULL: any */
};
/* Whether name is a status a listing can filter on. */
bool registry_status_known(const char *name);
/* Appends the public form of each matching server to g (an open array); returns
 * how many. */
size_t registry_list(const struct registry_filter *f, struct jgen *g);

/* Turns maintenance on or off; *out receives the server (caller frees). STORE_OK
 * when it changed (logged, and an event), STORE_UNCHANGED when it already was. */
int registry_set_maintenance(const char *id, bool enabled, struct server *out);

/* Fences the server off (maintenance) and removes it; REGISTRY_BUSY while tasks
 * run on it unless force. */
int registry_unregister(const char *id, bool force);

/* Records a heartbeat given with token (the admin's or the server's own callback
 * token); REGISTRY_FORBIDDEN for any other. *out receives the server. */
int registry_heartbeat(const char *id, const char *token, struct server *out);

#endif
