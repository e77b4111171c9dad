#include "stats/failrule.h"

void failrule_eval(const struct failrule *rule, const struct stats_group *g, struct failrate *out)
{
	out->failed = out->finished = 0;
	if (g && rule->unit == FAILRULE_ATTEMPTS) {
		out->finished = stats_group_processed(g);
		out->failed = stats_group_errors(g);
	} else if (g) {
		out->failed = g->n[ST_FAILED];
		out->finished = g->n[ST_COMPLETED] + out->failed;
	}
	out->pct = out->finished ? 100.0 * (double)out->failed / (double)out->finished : 0;
	bool over =
	    rule->at_threshold ? out->pct >= rule->threshold_pct : out->pct > rule->threshold_pct;
	out->breached = out->finished > 0 && out->finished >= rule->min_finished && over;
}
