/* hour: the one way an hour is named. Event files, rollup documents, the created/
 * index and the load balancer's folds are all keyed by the UTC hour, named
 * "YYYYMMDDHH" (ten digits, so names sort as times do). */
#ifndef TASKGATE_HOUR_H
#define TASKGATE_HOUR_H

#include <stdbool.h>
#include <stdint.h>

#define HOUR_MS 3600000LL
#define HOUR_NAME_LEN 10

/* Start (ms) of the UTC hour holding ms (0 for times before the epoch). */
int64_t hour_floor(int64_t ms);
/* "YYYYMMDDHH" of the hour holding ms. */
void hour_name(int64_t ms, char out[HOUR_NAME_LEN + 1]);
/* The start of the hour a name gives; false unless name is exactly a valid hour's
 * name (so "2024023100" is refused, not normalised). */
bool hour_parse(const char *name, int64_t *start);

#endif
