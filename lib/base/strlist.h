/* strlist: an owned list of strings (supportedModels, groups, tags). */
#ifndef TASKGATE_STRLIST_H
#define TASKGATE_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/json.h"

struct strlist {
	char **v;
	size_t n;
};

void strlist_add(struct strlist *l, const char *s);
bool strlist_has(const struct strlist *l, const char *s);
void strlist_free(struct strlist *l);
/* Copies the strings of a JSON array; non-strings are skipped. */
void strlist_from_json(struct strlist *l, yajl_val arr);
void strlist_to_json(const struct strlist *l, struct jgen *g);

#endif
