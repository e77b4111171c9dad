#include "lb/lbwhy.h"

#include <stdio.h>
#include <string.h>

/* How many servers meet t's wishes (lb_match). */
static size_t count_matching(const struct server *v, size_t n, const struct lb_task *t)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += lb_match(&v[i], t) == LB_OK;
	return k;
}

void lb_unmet(const struct server *v, size_t n, const struct lb_task *t, struct lb_unmet *u)
{
	memset(u, 0, sizeof *u);
	u->matching = count_matching(v, n, t);
	if (u->matching)
		return;
	if (n == 0) {
		u->kind = LB_UNMET_NO_SERVER;
		return;
	}
	/* Narrow the fleet one wish at a time (model, then group, then each tag); the
	 * first that empties it is the one to name, and "anywhere" asks the same of
	 * that wish alone. */
	struct lb_task model = {.model = t->model};
	if (!count_matching(v, n, &model)) {
		u->kind = LB_UNMET_MODEL;
		u->value = t->model;
		return;
	}
	struct lb_task group = {.model = t->model, .group = t->group};
	if (!count_matching(v, n, &group)) {
		struct lb_task alone = {.group = t->group};
		u->kind = LB_UNMET_GROUP;
		u->value = t->group;
		u->anywhere = !count_matching(v, n, &alone);
		return;
	}
	for (size_t k = 0; t->tags && k < t->tags->n; k++) {
		struct strlist first = {t->tags->v, k + 1}, one = {t->tags->v + k, 1};
		struct lb_task upto = {.model = t->model, .group = t->group, .tags = &first};
		struct lb_task alone = {.tags = &one};
		if (!count_matching(v, n, &upto)) {
			u->kind = LB_UNMET_TAG;
			u->value = t->tags->v[k];
			u->anywhere = !count_matching(v, n, &alone);
			return;
		}
	}
}

/* " for model 'm' in group 'g'": the wishes met before the one named. */
static void scope(const struct lb_unmet *u, const struct lb_task *t, char *out, size_t len)
{
	char model[180] = "", group[140] = "";
	if (t->model)
		snprintf(model, sizeof model, " for model '%s'", t->model);
	if (u->kind == LB_UNMET_TAG && t->group)
		snprintf(group, sizeof group, " in group '%s'", t->group);
	snprintf(out, len, "%s%s", model, group);
}

void lb_unmet_text(const struct lb_unmet *u, const struct lb_task *t, char *out, size_t len)
{
	char where[330] = "";
	if (!u->anywhere)
		scope(u, t, where, sizeof where);
	switch (u->kind) {
	case LB_MET:
		snprintf(out, len, "%s", "");
		break;
	case LB_UNMET_NO_SERVER:
		snprintf(out, len, "a server, and none is registered");
		break;
	case LB_UNMET_MODEL:
		snprintf(out, len, "model '%s' that no server serves", u->value);
		break;
	case LB_UNMET_GROUP:
		snprintf(out, len, "group '%s' that no server%s has", u->value, where);
		break;
	case LB_UNMET_TAG:
		snprintf(out, len, "tag '%s' that no server%s has", u->value, where);
		break;
	}
}

void lb_why_waiting(const struct server *v, size_t n, const struct lb_task *t, char *out,
		    size_t len)
{
	struct lb_unmet u;
	lb_unmet(v, n, t, &u);
	if (u.kind == LB_UNMET_NO_SERVER) {
		snprintf(out, len, "no server is registered");
		return;
	}
	if (u.kind != LB_MET) {
		char want[400];
		lb_unmet_text(&u, t, want, sizeof want);
		snprintf(out, len, "it wants %s", want);
		return;
	}
	/* Count the matching servers by what keeps each from the task now. */
	static const enum lb_verdict shown[] = {LB_FULL, LB_OFFLINE, LB_STARTING, LB_MAINTENANCE,
						LB_OK};
	size_t count[sizeof shown / sizeof shown[0]] = {0};
	for (size_t i = 0; i < n; i++) {
		if (lb_match(&v[i], t) != LB_OK)
			continue;
		enum lb_verdict verdict = lb_eligible(&v[i], t);
		for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++)
			if (shown[k] == verdict)
				count[k]++;
	}
	int used = snprintf(out, len, "the %zu server%s that could take it %s", u.matching,
			    u.matching == 1 ? "" : "s", u.matching == 1 ? "is" : "are");
	const char *sep = " ";
	for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) {
		if (!count[k] || used < 0 || (size_t)used >= len)
			continue;
		/* An eligible one here took other tasks first: the queue moved on. */
		const char *word = shown[k] == LB_OK ? "free now" : lb_verdict_text(shown[k]);
		used += snprintf(out + used, len - (size_t)used, "%s%zu %s", sep, count[k], word);
		sep = ", ";
	}
}
