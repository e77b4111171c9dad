/* backend: the inference servers' protocols. Builds each request and reads each
 * answer; the requests go out through net/http_client (and its one request policy:
 * connect and total timeouts, response bodies capped, no redirects, http/https
 * only), so nothing here touches a socket or libcurl.
 *
 * Two protocols (see DESIGN.md "Backends"):
 *   cog        PUT <predict>/<predictionId> with Prefer: respond-async and a webhook;
 *              202 accepted, 409 busy, 503 starting, 422 bad input.
 *   http-json  POST <predict> {"taskId","model","input","callbackUrl"}; 202 when the
 *              server is async (it calls back), otherwise the response is the result.
 * (Cog's health endpoint and what its answers mean are health's: model/health.)
 *
 * Durability is the caller's: what we tell a backend must rest on state that
 * survives a crash (a task a backend runs is one our tree records as running
 * there), so before backend_dispatch or backend_cancel the caller makes every
 * durable write so far durable (journal_commit) and sends nothing if that fails. */
#ifndef TASKGATE_BACKEND_H
#define TASKGATE_BACKEND_H

#include <stdbool.h>

#include "base/buf.h"
#include "base/json.h"
#include "model/server.h"

enum backend_outcome {
	BACKEND_ACCEPTED = 0, /* the backend took it and will call back */
	BACKEND_DONE,	      /* synchronous result: body holds it */
	BACKEND_FAILED,	      /* the backend ran it and reports failure (no retry) */
	BACKEND_BUSY,	      /* no free slot there (capacity, not health) */
	BACKEND_STARTING,     /* not ready yet (not a failure of the task) */
	BACKEND_REJECTED,     /* bad input (422/4xx): fail the task without retry */
	BACKEND_ERROR,	      /* refused, timed out, 5xx: a health failure, retry */
};

const char *backend_outcome_name(enum backend_outcome o);

struct backend_call {
	const char *task_id;
	const char *prediction_id; /* cog: <task id>-<attempt> */
	const char *model;
	yajl_val input;
	const char *callback_url;
	long timeout_ms; /* total time for a synchronous call */
	unsigned cog_events; /* BACKEND_EVENT_* bits: the Cog webhooks asked for */
};

/* Cog's webhook events (webhook_events_filter). "completed" is always asked for. */
#define BACKEND_EVENT_START 1u
#define BACKEND_EVENT_OUTPUT 2u
#define BACKEND_EVENT_LOGS 4u
#define BACKEND_EVENT_COMPLETED 8u
/* The bit of an event name, 0 if unknown. */
unsigned backend_event_bit(const char *name);

struct backend_reply {
	enum backend_outcome outcome;
	long http_status;   /* 0 when no answer */
	struct buf body;    /* response body, capped */
	char error[256];    /* why, for the task's history */
	int retry_after_s;  /* from Retry-After on 429/503, else 0 */
	long long elapsed_ms;
};

/* Sends the task; fills reply (caller frees reply->body). */
void backend_dispatch(const struct server *s, const struct backend_call *call,
		      struct backend_reply *reply);
/* Asks the backend to stop a prediction (cog: POST <predict>/<id>/cancel).
 * Best effort: returns true if the backend acknowledged. */
bool backend_cancel(const struct server *s, const char *prediction_id);

#endif
