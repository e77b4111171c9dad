#include "base/verr.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* A dotted path of known member names as a pointer: "" is "/", the whole body. */
static void pointer_from_path(char *out, size_t n, const char *path)
{
	out[0] = '\0';
	if (!path || !*path) {
		snprintf(out, n, "/");
		return;
	}
	for (const char *p = path;;) {
		size_t len = strcspn(p, ".");
		json_pointer_add(out, n, p, len);
		if (!p[len])
			break;
		p += len + 1;
	}
}

int verr_set(struct verr *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	pointer_from_path(e->field, sizeof e->field, field);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int verr_opt_int(yajl_val obj, const char *key, const char *field, long long min, long long max,
		 int *out, struct verr *e)
{
	long long v;
	int rc = json_get_int(obj, key, &v);
	if (rc == JSON_ABSENT)
		return 0;
	if (!field)
		field = key;
	if (rc == JSON_WRONG_TYPE || v < min || v > max)
		return verr_set(e, field, "%s must be an integer from %lld to %lld", field, min,
				max);
	*out = (int)v;
	return 0;
}

/* One edit apart: a letter inserted, deleted or changed, or two neighbours swapped
 * (the optimal string alignment distance is 1). */
static bool one_edit(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la < lb) {
		const char *t = a;
		a = b;
		b = t;
		size_t tl = la;
		la = lb;
		lb = tl;
	}
	if (la - lb > 1)
		return false;
	size_t i = 0;
	while (i < lb && a[i] == b[i])
		i++;
	if (la != lb) /* a has one letter more: drop a[i] */
		return strcmp(a + i + 1, b + i) == 0;
	if (i == la)
		return false; /* equal */
	if (strcmp(a + i + 1, b + i + 1) == 0)
		return true; /* one changed letter */
	return i + 1 < la && a[i] == b[i + 1] && a[i + 1] == b[i] &&
	       strcmp(a + i + 2, b + i + 2) == 0; /* swapped neighbours */
}

int verr_known_members(yajl_val obj, const char *at, const char *const known[], size_t n,
		       struct verr *e)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return 0;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		const char *k = obj->u.object.keys[i];
		const char *near = NULL;
		bool found = false;
		for (size_t f = 0; f < n && !found; f++) {
			found = strcmp(k, known[f]) == 0;
			if (!near && one_edit(k, known[f]))
				near = known[f];
		}
		if (found)
			continue;
		char where[160];
		pointer_from_path(where, sizeof where, at);
		bool top = strcmp(where, "/") == 0;
		snprintf(e->field, sizeof e->field, "%s", top ? "" : where);
		json_pointer_add(e->field, sizeof e->field, k, strlen(k));
		if (near)
			snprintf(e->msg, sizeof e->msg,
				 "unknown member '%.64s' (did you mean '%s'?)", k, near);
		else {
			/* Name the members there are: the list is short, and it answers the
			 * next question. Cut at the end of msg. */
			int o = snprintf(e->msg, sizeof e->msg, "unknown member '%.64s' in %s; the members are",
					 k, top ? "the body" : where);
			for (size_t f = 0; f < n && o > 0 && (size_t)o < sizeof e->msg; f++)
				o += snprintf(e->msg + o, sizeof e->msg - (size_t)o, "%s %s",
					      f ? "," : "", known[f]);
		}
		return -1;
	}
	return 0;
}
