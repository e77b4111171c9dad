/* verr: a validation error naming the request field at fault. */
#ifndef TASKGATE_VERR_H
#define TASKGATE_VERR_H

#include "base/json.h"

struct verr {
	char field[96];
	char msg[256];
};

/* Records field and message; returns -1 so validators can `return verr_set(...)`. */
int verr_set(struct verr *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The optional integer obj[key]: absent (or null) leaves *out alone; an integer
 * from min to max is stored; anything else is an error naming field (NULL: key),
 * "<field> must be an integer from <min> to <max>". 0 or -1. */
int verr_opt_int(yajl_val obj, const char *key, const char *field, long long min, long long max,
		 int *out, struct verr *e);

#endif
