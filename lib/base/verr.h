/* verr: a validation error naming the request member at fault, as a JSON pointer
 * (RFC 6901: "/capabilities/maxConcurrent", "/" for the whole body), and the check
 * that a body has no member its schema lacks. */
#ifndef TASKGATE_VERR_H
#define TASKGATE_VERR_H

#include <stddef.h>

#include "base/json.h"

struct verr {
	char field[256]; /* a JSON pointer */
	char msg[256];
};

/* Records the member at the dotted path field ("capabilities.maxConcurrent"; "" or
 * NULL: the whole body) as a JSON pointer, and the message; returns -1 so validators
 * can `return verr_set(...)`. */
int verr_set(struct verr *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The optional integer obj[key]: absent (or null) leaves *out alone; an integer
 * from min to max is stored; anything else is an error naming field (NULL: key),
 * "<field> must be an integer from <min> to <max>". 0 or -1. */
int verr_opt_int(yajl_val obj, const char *key, const char *field, long long min, long long max,
		 int *out, struct verr *e);

/* Strict bodies: the first member of the object obj (at the dotted path at, "" for
 * the body itself) whose name is not one of known[0..n) is an error naming its
 * pointer, "unknown member 'timeoutSecond' (did you mean 'timeoutSeconds'?)", the
 * hint given when the name is one edit (a letter added, dropped, changed, or two
 * neighbours swapped) from a known one. A typo'd member is otherwise dropped
 * silently and its default used. 0 (obj not an object counts as no members) or -1. */
int verr_known_members(yajl_val obj, const char *at, const char *const known[], size_t n,
		       struct verr *e);

#endif
