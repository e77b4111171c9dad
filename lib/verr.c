#include "verr.h"

#include <stdarg.h>
#include <stdio.h>

int verr_set(struct verr *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	snprintf(e->field, sizeof e->field, "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}
