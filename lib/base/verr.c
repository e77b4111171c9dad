#include "base/verr.h"

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
