/* http: one request and its response, independent of how they travel (FastCGI
 * streams or plain CGI stdio). Everything copied out of the environment at accept
 * time, because the environment dies with the request.
 *
 * Ownership: struct http_req and struct http_resp own every string they hold;
 * http_req_free()/http_resp_free() release them at the end of the loop. */
#ifndef TASKGATE_HTTP_H
#define TASKGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/json.h"

#define HTTP_MAX_PARAMS 4

struct http_io {
	/* returns bytes read, 0 at end, -1 on error */
	ssize_t (*read)(void *ctx, char *dst, size_t n);
	/* returns 0 or -1 */
	int (*write)(void *ctx, const char *src, size_t n);
	void *ctx;
	char **envp;
};

struct http_req {
	char method[16];
	char *uri;   /* REQUEST_URI as sent */
	char *path;  /* uri up to '?' */
	char *query; /* after '?', raw (may be "") */
	char *authorization;
	char *content_type;
	char *idempotency_key;
	char *prefer;
	char *remote_addr;
	char *https;
	char *host;
	char request_id[40];
	struct buf body;
	yajl_val json; /* parsed body when the route asks for one */
	const char *param[HTTP_MAX_PARAMS]; /* :id captures, point into param_store */
	char *param_store;
	char *prediction_id; /* X-Prediction-ID (Cog's uploads) */
	char *if_none_match;
	char *range;
	long long content_length; /* as announced (0 when absent) */
	long long body_taken;	  /* bytes of the body read so far */
	const struct http_io *io; /* where the body comes from */
	int auth; /* enum auth_level granted by the token */
	const char *token; /* bearer token presented (not logged) */
	/* Apache routed the request here by a rewrite (REDIRECT_STATUS) and the
	 * Authorization variables that rewrite sets, empty when the client sent no
	 * header, are gone: something between (suEXEC keeps only HTTP_* and a few
	 * REDIRECT_* names) dropped them, and no token can ever arrive. */
	bool authorization_stripped;
};

/* A body sent from a source instead of memory (a file served in pieces). */
struct http_stream {
	/* reads up to n bytes at off: bytes read, 0 at the end, -1 on error */
	ssize_t (*read_at)(void *ctx, char *dst, size_t n, unsigned long long off);
	void (*close)(void *ctx);
	void *ctx;
	unsigned long long off, len; /* the part sent */
};

struct http_resp {
	int status;
	const char *content_type; /* static string */
	struct buf headers;	  /* extra "Name: value\r\n" lines */
	struct buf body;
	struct http_stream stream; /* used instead of body when read_at is set */
	bool head_only;		   /* HEAD: the headers of the GET answer, no body */
};

/* Fills rq from the environment, without the body. Returns 0, or 400 when the
 * announced length is not a number; rq is usable for an error answer either way. */
int http_req_read_head(struct http_req *rq, const struct http_io *io);
/* Reads the whole body into rq->body (at most max_body bytes). Returns 0, or the
 * status to answer with (400: the client sent less than it announced; 413). */
int http_req_read_body(struct http_req *rq, size_t max_body);
/* Both at once: the head, then the whole body. */
int http_req_read(struct http_req *rq, const struct http_io *io, size_t max_body);
/* Reads the next piece of the body, for a route that streams it (ctx is the
 * struct http_req): bytes read, 0 at its end, -1 when the client sent less than
 * it announced. */
ssize_t http_req_body_piece(void *ctx, char *dst, size_t n);
/* Whether the Content-Type is JSON (application/json or any +json type). An
 * absent one is not: a body without a type is refused (415), so that no HTML form
 * or other cross-site "simple" request is ever read as JSON. */
bool http_content_is_json(const struct http_req *rq);
void http_req_free(struct http_req *rq);

/* Percent-decodes the first value of name in the query string into out.
 * Returns true if the parameter is present (even empty), false otherwise or when
 * the value does not fit. */
bool http_query(const struct http_req *rq, const char *name, char *out, size_t outlen);

void http_resp_init(struct http_resp *rs);
void http_resp_free(struct http_resp *rs);
void http_header(struct http_resp *rs, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets status and a JSON body from a finished generator; returns the status, or
 * answers 500 if the generator failed. */
int http_json(struct http_resp *rs, int status, struct jgen *g);
/* RFC 9457 problem+json; field (may be NULL) names the request field at fault.
 * Returns status. */
int http_problem(struct http_resp *rs, int status, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
const char *http_status_text(int status);
/* Serialises status line, headers and body through io. */
int http_resp_send(const struct http_resp *rs, const struct http_io *io);

#endif
