#include "web/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *env_dup(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return strdup(*e + n + 1);
	return NULL;
}

static void must(const void *p)
{
	if (!p)
		abort();
}

/* The Authorization header reaches a program only as a variable the web server was
 * told to set: HTTP_AUTHORIZATION (lighttpd, CGIPassAuth, a rewrite's E= flag on the
 * request that runs the program) or REDIRECT_HTTP_AUTHORIZATION (the same E= flag on
 * the request Apache then redirected internally, as apache-conf/htaccess does). */
static void read_authorization(struct http_req *rq, char **envp)
{
	char *direct = env_dup(envp, "HTTP_AUTHORIZATION");
	char *redirected = env_dup(envp, "REDIRECT_HTTP_AUTHORIZATION");
	char *status = env_dup(envp, "REDIRECT_STATUS");
	char *software = env_dup(envp, "SERVER_SOFTWARE");
	/* lighttpd sets REDIRECT_STATUS too (for PHP), so only Apache's count. */
	rq->authorization_stripped = !direct && !redirected && status && software &&
				     strncmp(software, "Apache", 6) == 0;
	if (direct && !*direct && redirected) {
		free(direct);
		direct = NULL;
	}
	rq->authorization = direct ? direct : redirected;
	if (direct)
		free(redirected);
	free(status);
	free(software);
}

int http_req_read_head(struct http_req *rq, const struct http_io *io)
{
	memset(rq, 0, sizeof *rq);
	rq->io = io;
	char *method = env_dup(io->envp, "REQUEST_METHOD");
	snprintf(rq->method, sizeof rq->method, "%s", method ? method : "GET");
	free(method);

	rq->uri = env_dup(io->envp, "REQUEST_URI");
	if (!rq->uri)
		rq->uri = strdup("/");
	must(rq->uri);
	size_t plen = strcspn(rq->uri, "?");
	rq->path = strndup(rq->uri, plen);
	rq->query = strdup(rq->uri[plen] ? rq->uri + plen + 1 : "");
	must(rq->path);
	must(rq->query);

	read_authorization(rq, io->envp);
	rq->content_type = env_dup(io->envp, "CONTENT_TYPE");
	rq->idempotency_key = env_dup(io->envp, "HTTP_IDEMPOTENCY_KEY");
	rq->prefer = env_dup(io->envp, "HTTP_PREFER");
	rq->remote_addr = env_dup(io->envp, "REMOTE_ADDR");
	rq->https = env_dup(io->envp, "HTTPS");
	rq->host = env_dup(io->envp, "HTTP_HOST");
	rq->prediction_id = env_dup(io->envp, "HTTP_X_PREDICTION_ID");
	rq->if_none_match = env_dup(io->envp, "HTTP_IF_NONE_MATCH");
	rq->range = env_dup(io->envp, "HTTP_RANGE");

	char *rid = env_dup(io->envp, "HTTP_X_REQUEST_ID");
	bool rid_ok = rid && *rid && strlen(rid) < sizeof rq->request_id &&
		      strspn(rid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
			      strlen(rid);
	if (rid_ok)
		snprintf(rq->request_id, sizeof rq->request_id, "%s", rid);
	free(rid);

	char *cl = env_dup(io->envp, "CONTENT_LENGTH");
	long long length = 0;
	if (cl && *cl) {
		char *end;
		errno = 0;
		length = strtoll(cl, &end, 10);
		if (errno || *end || length < 0) {
			free(cl);
			return 400;
		}
	}
	free(cl);
	rq->content_length = length;
	return 0;
}

ssize_t http_req_body_piece(void *ctx, char *dst, size_t n)
{
	struct http_req *rq = ctx;
	long long left = rq->content_length - rq->body_taken;
	if (left <= 0 || n == 0)
		return 0;
	if ((unsigned long long)left < n)
		n = (size_t)left;
	ssize_t got = rq->io->read(rq->io->ctx, dst, n);
	if (got <= 0)
		return -1; /* client went away or sent less than it announced */
	rq->body_taken += got;
	return got;
}

int http_req_read_body(struct http_req *rq, size_t max_body)
{
	if ((unsigned long long)rq->content_length > max_body)
		return 413;
	size_t length = (size_t)rq->content_length;
	buf_grow(&rq->body, length);
	while (rq->body.len < length) {
		ssize_t n = http_req_body_piece(rq, rq->body.data + rq->body.len,
						length - rq->body.len);
		if (n <= 0)
			return 400;
		rq->body.len += (size_t)n;
	}
	rq->body.data[rq->body.len] = '\0';
	return 0;
}

int http_req_read(struct http_req *rq, const struct http_io *io, size_t max_body)
{
	int status = http_req_read_head(rq, io);
	return status ? status : http_req_read_body(rq, max_body);
}

bool http_content_is_json(const struct http_req *rq)
{
	const char *ct = rq->content_type;
	/* No type is no JSON: an HTML form or a cross-site "simple" request must
	 * not pass for one. */
	if (!ct || !*ct)
		return false;
	size_t n = strcspn(ct, ";");
	while (n && ct[n - 1] == ' ')
		n--;
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

void http_req_free(struct http_req *rq)
{
	free(rq->uri);
	free(rq->path);
	free(rq->query);
	free(rq->authorization);
	free(rq->content_type);
	free(rq->idempotency_key);
	free(rq->prefer);
	free(rq->remote_addr);
	free(rq->https);
	free(rq->host);
	free(rq->prediction_id);
	free(rq->if_none_match);
	free(rq->range);
	free(rq->param_store);
	buf_free(&rq->body);
	if (rq->json)
		yajl_tree_free(rq->json);
	memset(rq, 0, sizeof *rq);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes src[0..n) into out; false if it does not fit or has a bad escape. */
static bool pct_decode(const char *src, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = src[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n)
				return false;
			int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0' || o + 1 >= outlen)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

bool http_query(const struct http_req *rq, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = rq->query;
	while (p && *p) {
		size_t seg = strcspn(p, "&");
		size_t klen = strcspn(p, "=&");
		if (klen == nlen && strncmp(p, name, nlen) == 0) {
			const char *v = p + klen;
			size_t vlen = 0;
			if (*v == '=') {
				v++;
				vlen = seg - klen - 1;
			}
			return pct_decode(v, vlen, out, outlen);
		}
		p += seg;
		if (*p == '&')
			p++;
	}
	return false;
}

void http_resp_init(struct http_resp *rs)
{
	memset(rs, 0, sizeof *rs);
	rs->status = 200;
	rs->content_type = "application/json";
}

void http_resp_free(struct http_resp *rs)
{
	if (rs->stream.read_at && rs->stream.close)
		rs->stream.close(rs->stream.ctx);
	buf_free(&rs->headers);
	buf_free(&rs->body);
}

void http_header(struct http_resp *rs, const char *name, const char *fmt, ...)
{
	va_list ap;
	buf_printf(&rs->headers, "%s: ", name);
	va_start(ap, fmt);
	buf_vprintf(&rs->headers, fmt, ap);
	va_end(ap);
	buf_adds(&rs->headers, "\r\n");
}

int http_json(struct http_resp *rs, int status, struct jgen *g)
{
	buf_reset(&rs->body);
	if (jg_finish(g, &rs->body) < 0)
		return http_problem(rs, 500, NULL, "could not generate the response document");
	rs->status = status;
	rs->content_type = "application/json";
	buf_addch(&rs->body, '\n');
	return status;
}

static const struct {
	int code;
	const char *text;
} status_texts[] = {
	{200, "OK"},
	{201, "Created"},
	{202, "Accepted"},
	{204, "No Content"},
	{206, "Partial Content"},
	{304, "Not Modified"},
	{400, "Bad Request"},
	{401, "Unauthorized"},
	{403, "Forbidden"},
	{404, "Not Found"},
	{405, "Method Not Allowed"},
	{409, "Conflict"},
	{411, "Length Required"},
	{413, "Content Too Large"},
	{415, "Unsupported Media Type"},
	{416, "Range Not Satisfiable"},
	{422, "Unprocessable Content"},
	{429, "Too Many Requests"},
	{500, "Internal Server Error"},
	{502, "Bad Gateway"},
	{503, "Service Unavailable"},
	{504, "Gateway Timeout"},
};

const char *http_status_text(int status)
{
	for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++)
		if (status_texts[i].code == status)
			return status_texts[i].text;
	return "Unknown";
}

int http_problem(struct http_resp *rs, int status, const char *field, const char *fmt, ...)
{
	struct buf detail = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&detail, fmt, ap);
	va_end(ap);

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "type", "about:blank");
	jg_kstr(&g, "title", http_status_text(status));
	jg_kint(&g, "status", status);
	/* detail may quote client input; the generator escapes it and, if it is not
	 * valid UTF-8, we fall back to a generic sentence below. */
	jg_kstr(&g, "detail", buf_str(&detail));
	if (field)
		jg_kstr(&g, "field", field);
	jg_obj_end(&g);
	buf_reset(&rs->body);
	if (jg_finish(&g, &rs->body) < 0) {
		buf_reset(&rs->body);
		buf_printf(&rs->body,
			   "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,"
			   "\"detail\":\"the request could not be processed\"}",
			   http_status_text(status), status);
	}
	buf_addch(&rs->body, '\n');
	jg_free(&g);
	buf_free(&detail);
	rs->status = status;
	rs->content_type = "application/problem+json";
	return status;
}

/* The stream's part, in pieces; a source that ends early fails the answer (the
 * client sees a short body, not a wrong one). */
static int send_stream(const struct http_stream *st, const struct http_io *io)
{
	static char piece[65536];
	unsigned long long off = st->off, end = st->off + st->len;
	while (off < end) {
		size_t want = end - off < sizeof piece ? (size_t)(end - off) : sizeof piece;
		ssize_t n = st->read_at(st->ctx, piece, want, off);
		if (n <= 0 || io->write(io->ctx, piece, (size_t)n) < 0)
			return -1;
		off += (unsigned long long)n;
	}
	return 0;
}

int http_resp_send(const struct http_resp *rs, const struct http_io *io)
{
	struct buf head = BUF_INIT;
	buf_printf(&head, "Status: %d %s\r\n", rs->status, http_status_text(rs->status));
	bool streamed = rs->stream.read_at != NULL;
	if (rs->status != 204 && rs->status != 304)
		buf_printf(&head, "Content-Type: %s\r\nContent-Length: %llu\r\n", rs->content_type,
			   streamed ? rs->stream.len : (unsigned long long)rs->body.len);
	/* A CGI "Status: 200" answer with a Location header is a redirect to Apache
	 * (mod_cgi, mod_cgid and mod_fcgid, after RFC 3875 6.2.2): a local path becomes an
	 * internal redirect (a loop, here), a URL a 302. What a 200 can say is where the
	 * representation lives, which is Content-Location (RFC 9110 8.7). */
	for (size_t i = 0; rs->headers.data && i < rs->headers.len;) {
		const char *line = rs->headers.data + i;
		const char *eol = memchr(line, '\n', rs->headers.len - i);
		size_t n = eol ? (size_t)(eol - line) + 1 : rs->headers.len - i;
		if (rs->status == 200 && n > 9 && strncasecmp(line, "Location:", 9) == 0)
			buf_adds(&head, "Content-");
		buf_add(&head, line, n);
		i += n;
	}
	buf_adds(&head, "\r\n");
	int rc = io->write(io->ctx, head.data, head.len);
	buf_free(&head);
	if (rs->head_only || rs->status == 204 || rs->status == 304)
		return rc;
	if (rc == 0 && !streamed && rs->body.len)
		rc = io->write(io->ctx, rs->body.data, rs->body.len);
	if (rc == 0 && streamed)
		rc = send_stream(&rs->stream, io);
	return rc;
}
