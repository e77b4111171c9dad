#include "stats/alertsreport.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "model/config.h"
#include "stats/alerts.h"
#include "stats/stats.h"
#include "stats/statsq.h"

static void jg_state_list(struct jgen *g, const char *key, const struct alerts_state *s,
			  enum alert_state want)
{
	jg_key(g, key);
	jg_arr(g);
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].state == want)
			alerts_jg_alert(g, &s->v[i], ALERT_JSON_PUBLIC);
	jg_arr_end(g);
}

static void jg_history(struct jgen *g, const struct alerts_state *s)
{
	jg_key(g, "history");
	jg_arr(g);
	for (size_t i = s->nhist; i > 0; i--) /* newest first */
		alerts_jg_change(g, &s->hist[i - 1], ALERT_JSON_PUBLIC);
	jg_arr_end(g);
}

static void jg_rule(struct jgen *g, const struct alert_rule *r)
{
	jg_obj(g);
	jg_kstr(g, "name", r->name);
	jg_kstr(g, "kind", alert_kind_name[r->kind]);
	stats_jg_knum(g, "threshold", r->threshold, 3);
	jg_kint(g, "windowMinutes", r->window_min);
	if (r->kind == AK_FAILURE_RATE)
		jg_kint(g, "minTasks", r->min_tasks);
	if (r->model[0])
		jg_kstr(g, "model", r->model);
	if (r->server[0])
		jg_kstr(g, "server", r->server);
	jg_obj_end(g);
}

/* errors: one line per skipped rule; split in place. */
static void jg_lines(struct jgen *g, const char *key, struct buf *errors)
{
	jg_key(g, key);
	jg_arr(g);
	for (char *line = errors->data; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		jg_str(g, line);
		line = nl ? nl + 1 : NULL;
	}
	jg_arr_end(g);
}

void alerts_report(struct jgen *g, int64_t evaluated_at)
{
	struct alerts_state s;
	alerts_state_load(&s);
	struct buf errors = BUF_INIT;
	struct alert_rule *rules;
	size_t nrules = alerts_rules_load(&rules, &errors);

	jg_obj(g);
	statsq_jg_time(g, "evaluatedAt", evaluated_at);
	jg_state_list(g, "firing", &s, AS_FIRING);
	jg_state_list(g, "pending", &s, AS_PENDING);
	jg_state_list(g, "resolved", &s, AS_RESOLVED);
	jg_history(g, &s);
	jg_key(g, "rules");
	jg_arr(g);
	for (size_t i = 0; i < nrules; i++)
		jg_rule(g, &rules[i]);
	jg_arr_end(g);
	jg_lines(g, "ruleErrors", &errors);
	const char *hook = config_str("alertWebhook", NULL);
	jg_kbool(g, "webhookConfigured", hook && *hook);
	jg_obj_end(g);

	free(rules);
	buf_free(&errors);
	alerts_state_free(&s);
}
