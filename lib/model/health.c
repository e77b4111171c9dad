#include "model/health.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"

#define EWMA_ALPHA   0.3
#define SCORE_ALPHA  0.3
#define ADAPT_FACTOR 1.5

/* ---- settings ---- */

void health_cfg_defaults(struct health_cfg *c)
{
	c->rise = 2;
	c->fall = 3;
	c->inter_ms = 10000;
	c->fastinter_ms = 2000;
	c->downinter_ms = 30000;
	c->max_inter_ms = 60000;
	c->timeout_ms = 2000;
	c->connect_timeout_ms = 1000;
	c->degraded_ms = 1000;
	c->setup_grace_ms = 600000;
	c->register_timeout_ms = 2000;
}

/* Seconds in the file (fractions allowed, so tests can use short intervals). */
/* ---- the counter ---- */

int health_counter_top(int rise, int fall)
{
	return rise + fall - 1;
}

bool health_counter_up(int counter, int rise)
{
	return counter >= rise;
}

int health_counter_normalize(int stored, bool stored_up, int rise, int fall)
{
	int top = health_counter_top(rise, fall);
	if (stored < 0 || stored > top)
		return stored_up ? top : 0;
	if (stored_up != health_counter_up(stored, rise))
		return stored_up ? top : 0;
	return stored;
}

int health_counter_step(int counter, bool pass, int rise, int fall)
{
	int top = health_counter_top(rise, fall);
	if (pass) {
		if (counter < top) {
			counter++;
			if (counter >= rise)
				counter = top;
		}
	} else if (counter > 0) {
		counter--;
		if (counter < rise)
			counter = 0;
	}
	return counter;
}

/* ---- verdicts ---- */

const char *health_verdict_name(enum health_verdict v)
{
	static const char *const names[] = {"pass", "busy", "starting", "fail"};
	return names[v];
}

enum health_verdict health_classify(enum server_protocol p, long http_status, const char *body,
				    size_t len, char *why, size_t whylen)
{
	if (whylen)
		why[0] = '\0';
	if (http_status <= 0) {
		snprintf(why, whylen, "no answer");
		return HV_FAIL;
	}
	if (p == PROTO_HTTP_JSON) {
		if (http_status >= 200 && http_status <= 299)
			return HV_PASS;
		snprintf(why, whylen, "HTTP %ld", http_status);
		return HV_FAIL;
	}
	/* Cog answers 200 in every state; anything else is not a working Cog. */
	if (http_status != 200) {
		snprintf(why, whylen, "HTTP %ld", http_status);
		return HV_FAIL;
	}
	/* Only the status decides, and Cog sends it first: the answer is read as a
	 * stream up to it, so setup logs of any length after it cost nothing. */
	char status[64];
	enum health_verdict v = HV_FAIL;
	enum json_top found = json_top_string(body ? body : "", body ? len : 0, "status",
					      status, sizeof status);
	if (found == JSON_TOP_NOT_OBJECT)
		snprintf(why, whylen, "answer is not a JSON object");
	else if (found == JSON_TOP_ABSENT)
		snprintf(why, whylen, "answer has no \"status\" string");
	else if (strcmp(status, "READY") == 0)
		v = HV_PASS;
	else if (strcmp(status, "BUSY") == 0)
		v = HV_BUSY;
	else if (strcmp(status, "STARTING") == 0) {
		v = HV_STARTING;
		snprintf(why, whylen, "status STARTING");
	} else
		snprintf(why, whylen, "status %.40s", status);
	return v;
}

/* ---- derived values ---- */

enum server_health health_status_of(const struct health_cfg *c, int counter, double ewma_ms)
{
	int top = health_counter_top(c->rise, c->fall);
	if (!health_counter_up(counter, c->rise))
		return HEALTH_OFFLINE;
	if ((counter == c->rise && counter < top) || ewma_ms > (double)c->degraded_ms)
		return HEALTH_DEGRADED;
	return HEALTH_ONLINE;
}

int64_t health_interval_ms(const struct health_cfg *c, int before, int after, int64_t prev_ms)
{
	int top = health_counter_top(c->rise, c->fall);
	if (after <= 0)
		return c->downinter_ms;
	if (after < top)
		return c->fastinter_ms;
	if (before < top || prev_ms <= 0)
		return c->inter_ms; /* just came back (or first check): start over */
	double next = (double)prev_ms * ADAPT_FACTOR;
	if (next < (double)c->inter_ms)
		return c->inter_ms;
	if (next > (double)c->max_inter_ms)
		return c->max_inter_ms;
	return (int64_t)next;
}

int health_score_next(int old, enum health_verdict v, double elapsed_ms, long degraded_ms)
{
	double sample = 0;
	if (v == HV_PASS || v == HV_BUSY) {
		sample = 100;
		if (degraded_ms > 0 && elapsed_ms > (double)degraded_ms) {
			double over = (elapsed_ms - (double)degraded_ms) / (double)degraded_ms;
			sample = 100 - 50 * (over > 1 ? 1 : over);
		}
	}
	if (old < 0)
		old = 0;
	if (old > 100)
		old = 100;
	double next = (1 - SCORE_ALPHA) * old + SCORE_ALPHA * sample;
	/* Round towards the sample, or the average never reaches 0 or 100. */
	int r = next > old ? (int)ceil(next) : (int)floor(next);
	return r < 0 ? 0 : r > 100 ? 100 : r;
}

double health_ewma_next(double old, double sample_ms)
{
	if (old <= 0)
		return sample_ms;
	return (1 - EWMA_ALPHA) * old + EWMA_ALPHA * sample_ms;
}

/* ---- applying an outcome ---- */

/* The verdict the counter sees. STARTING opens a setup spell if none is open and
 * stays STARTING while the spell is within the grace; past it, it is a failure. */
static enum health_verdict counted_verdict(const struct health_cfg *c, struct server *s,
					   const struct health_outcome *o)
{
	if (o->verdict != HV_STARTING)
		return o->verdict;
	if (s->setup_since <= 0)
		s->setup_since = o->at_ms;
	return o->at_ms - s->setup_since > c->setup_grace_ms ? HV_FAIL : HV_STARTING;
}

/* The counter and status after a counted verdict. A starting server's first pass
 * takes it to the top; its failures leave it starting until `fall` in a row. */
static void step_status(const struct health_cfg *c, struct server *s, enum health_verdict v,
			int before)
{
	int top = health_counter_top(c->rise, c->fall);
	bool pass = v == HV_PASS || v == HV_BUSY;
	if (v == HV_STARTING) {
		s->check_counter = 0;
		s->health = HEALTH_STARTING;
	} else if (s->health == HEALTH_STARTING && pass) {
		s->check_counter = top;
		s->health = health_status_of(c, top, s->ewma_ms);
	} else if (s->health == HEALTH_STARTING) {
		s->check_counter = 0;
		if (s->consecutive_failures >= c->fall)
			s->health = HEALTH_OFFLINE;
	} else {
		s->check_counter = health_counter_step(before, pass, c->rise, c->fall);
		s->health = health_status_of(c, s->check_counter, s->ewma_ms);
	}
}

/* Milliseconds to the next check: starting servers are watched closely, so the
 * end of a setup is seen within seconds. */
static int64_t next_interval(const struct health_cfg *c, const struct server *s, int before,
			     int64_t prev)
{
	if (s->health == HEALTH_STARTING)
		return c->fastinter_ms;
	return health_interval_ms(c, before, s->check_counter, prev);
}

static void record_last_check(const struct health_cfg *c, struct server *s,
			      const struct health_outcome *o, enum health_verdict v)
{
	bool pass = v == HV_PASS || v == HV_BUSY;
	s->last_check.at = o->at_ms;
	s->last_check.ok = pass;
	s->last_check.http_status = o->http_status;
	snprintf(s->last_check.verdict, sizeof s->last_check.verdict, "%s",
		 health_verdict_name(o->verdict));
	if (o->verdict == HV_STARTING && v == HV_FAIL)
		snprintf(s->last_check.error, sizeof s->last_check.error,
			 "status STARTING for %lld s, past the setup grace of %lld s",
			 (long long)((o->at_ms - s->setup_since) / 1000),
			 (long long)(c->setup_grace_ms / 1000));
	else
		snprintf(s->last_check.error, sizeof s->last_check.error, "%s",
			 !pass && o->why ? o->why : "");
}

enum server_health health_apply(const struct health_cfg *c, struct server *s,
				const struct health_outcome *o)
{
	enum server_health from = s->health;
	int before = health_counter_normalize(s->check_counter, server_health_routable(from),
					      c->rise, c->fall);
	enum health_verdict v = counted_verdict(c, s, o);
	bool pass = v == HV_PASS || v == HV_BUSY;

	if (o->answered && !o->passive)
		s->ewma_ms = health_ewma_next(s->ewma_ms, o->elapsed_ms);
	if (pass) {
		s->consecutive_failures = 0;
		s->last_success_at = o->at_ms;
		s->setup_since = 0;
	} else if (v == HV_FAIL) {
		s->consecutive_failures++;
	}
	/* STARTING within the grace is no evidence either way: the score stays. A
	 * dispatch time is inference time, not a health response time. */
	if (v != HV_STARTING)
		s->health_score = health_score_next(s->health_score, v,
						    o->passive ? 0 : o->elapsed_ms, c->degraded_ms);
	step_status(c, s, v, before);
	if (s->health != from)
		s->status_since = o->at_ms;

	if (!o->passive) {
		int64_t prev = 0;
		if (s->last_health_check > 0 && s->next_check_at > s->last_health_check)
			prev = s->next_check_at - s->last_health_check;
		s->last_health_check = o->at_ms;
		s->next_check_at = o->at_ms + next_interval(c, s, before, prev);
		record_last_check(c, s, o, v);
	} else if (s->check_counter != before) {
		int64_t soon = o->at_ms + health_interval_ms(c, before, s->check_counter, 0);
		if (s->next_check_at <= 0 || soon < s->next_check_at)
			s->next_check_at = soon;
	}
	return from;
}
