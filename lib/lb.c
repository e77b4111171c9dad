#include "lb.h"

#include <string.h>

static const char *const algorithm_names[LB_ALGORITHM_COUNT] = {
	"round-robin", "weighted", "least-connections", "response-time", "p2c"};

const char *lb_algorithm_name(enum lb_algorithm a)
{
	return (unsigned)a < LB_ALGORITHM_COUNT ? algorithm_names[a] : "round-robin";
}

int lb_algorithm_from_name(const char *name)
{
	for (int i = 0; i < LB_ALGORITHM_COUNT; i++)
		if (strcmp(name, algorithm_names[i]) == 0)
			return i;
	return -1;
}

static const char *const verdict_texts[] = {
	"eligible", "in maintenance", "offline", "does not serve the model",
	"not in the group", "lacks a tag", "full",
};

const char *lb_verdict_text(enum lb_verdict v)
{
	return verdict_texts[v];
}

enum lb_verdict lb_eligible(const struct server *s, const struct lb_task *t)
{
	if (s->maintenance)
		return LB_MAINTENANCE;
	if (s->health == HEALTH_OFFLINE)
		return LB_OFFLINE;
	if (t->model && s->models.n && !strlist_has(&s->models, t->model))
		return LB_MODEL;
	if (t->group && !strlist_has(&s->groups, t->group))
		return LB_GROUP;
	if (t->tags)
		for (size_t i = 0; i < t->tags->n; i++)
			if (!strlist_has(&s->tags, t->tags->v[i]))
				return LB_TAGS;
	if (s->current_load >= s->max_concurrent)
		return LB_FULL;
	return LB_OK;
}

static int pick_round_robin(size_t n, const bool *excluded, struct lb_state *st)
{
	/* Count from a shared counter over the candidates still in play, so an excluded
	 * server's turn passes to the next one only once (no double share for the
	 * server that follows a gap). */
	size_t live = 0;
	for (size_t i = 0; i < n; i++)
		live += !excluded[i];
	if (!live)
		return -1;
	size_t k = (size_t)(st->rr_counter++ % live);
	for (size_t i = 0; i < n; i++)
		if (!excluded[i] && k-- == 0)
			return (int)i;
	return -1;
}

int lb_pick(enum lb_algorithm alg, struct lb_candidate *c, size_t n, const bool *excluded,
	    struct lb_state *st, const struct lb_task *t, uint64_t rnd)
{
	(void)c;
	(void)t;
	(void)rnd;
	switch (alg) {
	default:
		return pick_round_robin(n, excluded, st);
	}
}
