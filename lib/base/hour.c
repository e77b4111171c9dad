#include "base/hour.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t hour_floor(int64_t ms)
{
	if (ms < 0)
		return 0;
	return ms - ms % HOUR_MS;
}

void hour_name(int64_t ms, char out[HOUR_NAME_LEN + 1])
{
	time_t s = (time_t)(hour_floor(ms) / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(out, HOUR_NAME_LEN + 1, "%04d%02d%02d%02d", (tm.tm_year + 1900) % 10000,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
}

bool hour_parse(const char *name, int64_t *start)
{
	if (!name || strlen(name) != HOUR_NAME_LEN || strspn(name, "0123456789") != HOUR_NAME_LEN)
		return false;
	struct tm tm = {0};
	int y, mo, d, h;
	if (sscanf(name, "%4d%2d%2d%2d", &y, &mo, &d, &h) != 4 || mo < 1 || mo > 12 || d < 1 ||
	    d > 31 || h > 23 || y < 1970)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	time_t s = timegm(&tm);
	if (s < 0)
		return false;
	char check[HOUR_NAME_LEN + 1];
	hour_name((int64_t)s * 1000, check);
	if (strcmp(check, name) != 0)
		return false; /* 20240231xx and the like */
	*start = (int64_t)s * 1000;
	return true;
}
