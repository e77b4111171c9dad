#include "web/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compares one pattern with the path; on success fills caps (offsets into path). */
static int pattern_match(const char *pat, const char *path, size_t cap_off[][2], int *ncap)
{
	const char *p = pat, *s = path;
	*ncap = 0;
	while (*p && *s) {
		if (*p == ':') {
			size_t seg = strcspn(s, "/");
			if (seg == 0 || *ncap >= HTTP_MAX_PARAMS)
				return 0;
			cap_off[*ncap][0] = (size_t)(s - path);
			cap_off[*ncap][1] = seg;
			(*ncap)++;
			p += strcspn(p, "/");
			s += seg;
			continue;
		}
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	return *p == '\0' && *s == '\0';
}

const struct route *router_match(const struct route *table, size_t n, struct http_req *rq,
				 int *status, struct buf *allow)
{
	size_t caps[HTTP_MAX_PARAMS][2];
	int ncap;
	bool path_known = false;
	/* HEAD is answered like GET by the web server's rules; we treat it as GET. */
	const char *method = strcmp(rq->method, "HEAD") == 0 ? "GET" : rq->method;

	for (size_t i = 0; i < n; i++) {
		if (!pattern_match(table[i].pattern, rq->path, caps, &ncap))
			continue;
		if (strcmp(table[i].method, method) != 0) {
			if (allow->len)
				buf_adds(allow, ", ");
			buf_adds(allow, table[i].method);
			path_known = true;
			continue;
		}
		free(rq->param_store);
		rq->param_store = malloc(strlen(rq->path) + 1);
		if (!rq->param_store)
			abort();
		char *w = rq->param_store;
		for (int c = 0; c < HTTP_MAX_PARAMS; c++)
			rq->param[c] = NULL;
		for (int c = 0; c < ncap; c++) {
			memcpy(w, rq->path + caps[c][0], caps[c][1]);
			w[caps[c][1]] = '\0';
			rq->param[c] = w;
			w += caps[c][1] + 1;
		}
		return &table[i];
	}
	*status = path_known ? 405 : 404;
	return NULL;
}

/* When path begins with pattern's segments up to its ":secret" segment, that
 * segment's offset and length in path. A prefix is enough: a path cut short or run
 * on past the pattern (a 404) carries the secret all the same. */
static bool secret_span(const char *pat, const char *path, size_t *off, size_t *len)
{
	const char *p = pat, *s = path;
	while (*p) {
		if (*p == ':') {
			size_t seg = strcspn(s, "/");
			if (strncmp(p, ":secret", 7) == 0 && (p[7] == '/' || p[7] == '\0')) {
				*off = (size_t)(s - path);
				*len = seg;
				return seg > 0;
			}
			if (seg == 0)
				return false;
			p += strcspn(p, "/");
			s += seg;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return false;
}

void router_log_path(const struct route *table, size_t count, const char *path, char *out,
		     size_t n)
{
	if (n == 0)
		return;
	if (!path)
		path = "?";
	size_t off, len;
	for (size_t i = 0; i < count; i++)
		if (secret_span(table[i].pattern, path, &off, &len)) {
			snprintf(out, n, "%.*s-%s", (int)off, path, path + off + len);
			return;
		}
	snprintf(out, n, "%s", path);
}
