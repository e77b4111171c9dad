#include "base/strlist.h"

#include <stdlib.h>
#include <string.h>

void strlist_add(struct strlist *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof *v);
	char *copy = strdup(s);
	if (!v || !copy)
		abort();
	v[l->n++] = copy;
	l->v = v;
}

bool strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void strlist_from_json(struct strlist *l, yajl_val arr)
{
	if (!arr || !YAJL_IS_ARRAY(arr))
		return;
	for (size_t i = 0; i < arr->u.array.len; i++)
		if (YAJL_IS_STRING(arr->u.array.values[i]))
			strlist_add(l, YAJL_GET_STRING(arr->u.array.values[i]));
}

void strlist_to_json(const struct strlist *l, struct jgen *g)
{
	jg_arr(g);
	for (size_t i = 0; i < l->n; i++)
		jg_str(g, l->v[i]);
	jg_arr_end(g);
}
