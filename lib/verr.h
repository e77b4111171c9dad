/* verr: a validation error naming the request field at fault. */
#ifndef TASKGATE_VERR_H
#define TASKGATE_VERR_H

struct verr {
	char field[96];
	char msg[256];
};

/* Records field and message; returns -1 so validators can `return verr_set(...)`. */
int verr_set(struct verr *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
