/* GET /api/v2/alerts: the alert rules of config.json and what the rollup's last
 * evaluation recorded in stats/alerts.json (lib/alerts.c). */
#include <stdlib.h>
#include <string.h>

#include "stats/alerts.h"
#include "model/config.h"
#include "jobs/cronjob.h"
#include "jobs/rollup.h"
#include "stats/stats.h"
#include "stats/statsq.h"
#include "base/util.h"
#include "app.h"

static void after_piggyback(void *arg)
{
	(void)arg;
	rollup_piggyback();
}

static void jg_alert(struct jgen *g, const struct alert_inst *a)
{
	jg_obj(g);
	jg_kstr(g, "name", a->name);
	jg_kstr(g, "kind", alert_kind_name[a->kind]);
	jg_kstr(g, "subject", a->subject);
	jg_kstr(g, "state", alert_state_name[a->state]);
	statsq_jg_time(g, "since", a->since);
	statsq_jg_time(g, "firedAt", a->fired_at);
	statsq_jg_time(g, "resolvedAt", a->resolved_at);
	stats_jg_knum(g, "value", a->value, 3);
	stats_jg_knum(g, "threshold", a->threshold, 3);
	jg_kstr(g, "message", a->message);
	jg_kbool(g, "notified", a->notified == a->state);
	jg_obj_end(g);
}

static void jg_state_list(struct jgen *g, const char *key, const struct alerts_state *s,
			  enum alert_state want)
{
	jg_key(g, key);
	jg_arr(g);
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].state == want)
			jg_alert(g, &s->v[i]);
	jg_arr_end(g);
}

int api_alerts_list(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	struct alerts_state s;
	alerts_state_load(&s);
	struct buf errors = BUF_INIT;
	struct alert_rule *rules;
	size_t nrules = alerts_rules_parse(json_get(config_doc(), "alerts"), &rules, &errors);

	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	statsq_jg_time(&g, "evaluatedAt", cronjob_last_run(ROLLUP_JOB));
	jg_state_list(&g, "firing", &s, AS_FIRING);
	jg_state_list(&g, "pending", &s, AS_PENDING);
	jg_state_list(&g, "resolved", &s, AS_RESOLVED);
	jg_key(&g, "history");
	jg_arr(&g);
	for (size_t i = s.nhist; i > 0; i--) { /* newest first */
		const struct alert_change *c = &s.hist[i - 1];
		jg_obj(&g);
		statsq_jg_time(&g, "at", c->at);
		jg_kstr(&g, "name", c->name);
		jg_kstr(&g, "subject", c->subject);
		jg_kstr(&g, "state", alert_state_name[c->state]);
		stats_jg_knum(&g, "value", c->value, 3);
		jg_kstr(&g, "message", c->message);
		jg_obj_end(&g);
	}
	jg_arr_end(&g);
	jg_key(&g, "rules");
	jg_arr(&g);
	for (size_t i = 0; i < nrules; i++) {
		const struct alert_rule *r = &rules[i];
		jg_obj(&g);
		jg_kstr(&g, "name", r->name);
		jg_kstr(&g, "kind", alert_kind_name[r->kind]);
		stats_jg_knum(&g, "threshold", r->threshold, 3);
		jg_kint(&g, "windowMinutes", r->window_min);
		if (r->kind == AK_FAILURE_RATE)
			jg_kint(&g, "minTasks", r->min_tasks);
		if (r->model[0])
			jg_kstr(&g, "model", r->model);
		if (r->server[0])
			jg_kstr(&g, "server", r->server);
		jg_obj_end(&g);
	}
	jg_arr_end(&g);
	jg_key(&g, "ruleErrors");
	jg_arr(&g);
	for (char *line = errors.data; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		jg_str(&g, line);
		line = nl ? nl + 1 : NULL;
	}
	jg_arr_end(&g);
	const char *hook = config_str("alertWebhook", NULL);
	jg_kbool(&g, "webhookConfigured", hook && *hook);
	jg_obj_end(&g);
	int st = http_json(rs, 200, &g);
	jg_free(&g);
	free(rules);
	buf_free(&errors);
	alerts_state_free(&s);
	app_after(after_piggyback, NULL);
	return st;
}
