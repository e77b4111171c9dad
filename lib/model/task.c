#include "model/task.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "base/log.h"
#include "base/util.h"

#define MODEL_MAX_LEN 128
#define AFFINITY_MAX_LEN 256
#define LABEL_MAX_LEN 64
#define TAGS_MAX 32
#define HISTORY_MAX 100 /* beyond this, the oldest attempts are dropped from the file */

static const char *const status_names[TASK_STATUS_COUNT] = {
	"PENDING", "QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"};

/* The one table of legal moves: allowed[from] is a bit set of targets. */
#define B(s) (1u << (s))
static const unsigned allowed[TASK_STATUS_COUNT] = {
	[TASK_PENDING] = B(TASK_QUEUED) | B(TASK_PROCESSING) | B(TASK_CANCELLED) | B(TASK_FAILED),
	[TASK_QUEUED] = B(TASK_PROCESSING) | B(TASK_CANCELLED) | B(TASK_FAILED),
	/* PROCESSING -> QUEUED is a retry after a failed or refused attempt. */
	[TASK_PROCESSING] = B(TASK_COMPLETED) | B(TASK_FAILED) | B(TASK_CANCELLED) | B(TASK_QUEUED),
	[TASK_COMPLETED] = 0,
	/* An operator's retry re-queues a failed or cancelled task. */
	[TASK_FAILED] = B(TASK_QUEUED),
	[TASK_CANCELLED] = B(TASK_QUEUED),
};
#undef B

/* The one place that says which members the API shows (see task.h). */
#define M(member, part, name, pub, value) [member] = {part, name, sizeof name - 1, pub, value}
#define PUBLIC true
#define PRIVATE false
static const struct task_member_info members[TASK_MEMBER_COUNT] = {
	M(TM_ID, TASK_PART_TASK, "id", PUBLIC, TASK_PART_VALUE),
	M(TM_STATUS, TASK_PART_TASK, "status", PUBLIC, TASK_PART_VALUE),
	M(TM_REQUEST, TASK_PART_TASK, "request", PUBLIC, TASK_PART_REQUEST),
	M(TM_REQ_MODEL, TASK_PART_REQUEST, "model", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_INPUT, TASK_PART_REQUEST, "input", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_PRIORITY, TASK_PART_REQUEST, "priority", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_TIMEOUT, TASK_PART_REQUEST, "timeoutSeconds", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_MAX_ATTEMPTS, TASK_PART_REQUEST, "maxAttempts", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_QUEUE_TIMEOUT, TASK_PART_REQUEST, "queueTimeoutSeconds", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_AFFINITY_KEY, TASK_PART_REQUEST, "affinityKey", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_GROUP, TASK_PART_REQUEST, "group", PUBLIC, TASK_PART_VALUE),
	M(TM_REQ_TAGS, TASK_PART_REQUEST, "tags", PUBLIC, TASK_PART_VALUE),
	M(TM_RESULT, TASK_PART_TASK, "result", PUBLIC, TASK_PART_VALUE),
	M(TM_ERROR, TASK_PART_TASK, "error", PUBLIC, TASK_PART_VALUE),
	M(TM_SERVER_ID, TASK_PART_TASK, "serverId", PUBLIC, TASK_PART_VALUE),
	M(TM_ATTEMPTS, TASK_PART_TASK, "attempts", PUBLIC, TASK_PART_VALUE),
	M(TM_FAILURES, TASK_PART_TASK, "failures", PUBLIC, TASK_PART_VALUE),
	M(TM_CREATED_AT, TASK_PART_TASK, "createdAt", PUBLIC, TASK_PART_VALUE),
	M(TM_UPDATED_AT, TASK_PART_TASK, "updatedAt", PUBLIC, TASK_PART_VALUE),
	M(TM_COMPLETED_AT, TASK_PART_TASK, "completedAt", PUBLIC, TASK_PART_VALUE),
	M(TM_PRIORITY, TASK_PART_TASK, "priority", PUBLIC, TASK_PART_VALUE),
	M(TM_DEADLINE, TASK_PART_TASK, "deadline", PUBLIC, TASK_PART_VALUE),
	M(TM_NEXT_ATTEMPT_AT, TASK_PART_TASK, "nextAttemptAt", PUBLIC, TASK_PART_VALUE),
	M(TM_QUEUED_AT, TASK_PART_TASK, "queuedAt", PUBLIC, TASK_PART_VALUE),
	M(TM_PROGRESS, TASK_PART_TASK, "progress", PUBLIC, TASK_PART_PROGRESS),
	M(TM_PROG_STATUS, TASK_PART_PROGRESS, "status", PUBLIC, TASK_PART_VALUE),
	M(TM_PROG_LOGS, TASK_PART_PROGRESS, "logs", PUBLIC, TASK_PART_VALUE),
	M(TM_PROG_OUTPUT, TASK_PART_PROGRESS, "output", PUBLIC, TASK_PART_VALUE),
	M(TM_HISTORY, TASK_PART_TASK, "history", PUBLIC, TASK_PART_HISTORY),
	M(TM_ATT_NUMBER, TASK_PART_ATTEMPT, "attempt", PUBLIC, TASK_PART_VALUE),
	M(TM_ATT_SERVER_ID, TASK_PART_ATTEMPT, "serverId", PUBLIC, TASK_PART_VALUE),
	M(TM_ATT_STARTED_AT, TASK_PART_ATTEMPT, "startedAt", PUBLIC, TASK_PART_VALUE),
	M(TM_ATT_ENDED_AT, TASK_PART_ATTEMPT, "endedAt", PUBLIC, TASK_PART_VALUE),
	M(TM_ATT_ACCEPTED_AT, TASK_PART_ATTEMPT, "acceptedAt", PUBLIC, TASK_PART_VALUE),
	M(TM_ATT_OUTCOME, TASK_PART_ATTEMPT, "outcome", PUBLIC, TASK_PART_VALUE),
	M(TM_ATT_ERROR, TASK_PART_ATTEMPT, "error", PUBLIC, TASK_PART_VALUE),
	/* The digest of the attempt's callback secret: a guess at the secret could be
	 * checked against it offline. */
	M(TM_ATT_SECRET_HASH, TASK_PART_ATTEMPT, "secretHash", PRIVATE, TASK_PART_VALUE),
	/* The key is the client's secret of its retries (another client could replay
	 * it); the server to avoid and the queue entry are placement internals. */
	M(TM_IDEMPOTENCY_KEY, TASK_PART_TASK, "idempotencyKey", PRIVATE, TASK_PART_VALUE),
	M(TM_AVOID_SERVER, TASK_PART_TASK, "avoidServer", PRIVATE, TASK_PART_VALUE),
	M(TM_QUEUE_KEY, TASK_PART_TASK, "queueKey", PRIVATE, TASK_PART_VALUE),
};
#undef M
#undef PUBLIC
#undef PRIVATE

const struct task_member_info *task_member_info(enum task_member m)
{
	return (unsigned)m < TASK_MEMBER_COUNT ? &members[m] : NULL;
}

const struct task_member_info *task_member_find_from(enum task_part in, const char *key,
						     size_t len, size_t *hint)
{
	size_t i = *hint < TASK_MEMBER_COUNT ? *hint : 0;
	for (size_t k = 0; k < TASK_MEMBER_COUNT; k++, i = i + 1 < TASK_MEMBER_COUNT ? i + 1 : 0)
		if (members[i].in == in && members[i].key_len == len &&
		    memcmp(members[i].key, key, len) == 0) {
			*hint = i + 1;
			return &members[i];
		}
	return NULL;
}

const struct task_member_info *task_member_find(enum task_part in, const char *key,
						size_t len)
{
	size_t hint = 0;
	return task_member_find_from(in, key, len, &hint);
}

const char *task_status_name(enum task_status s)
{
	return (unsigned)s < TASK_STATUS_COUNT ? status_names[s] : "UNKNOWN";
}

int task_status_from_name(const char *name)
{
	for (int i = 0; i < TASK_STATUS_COUNT; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

bool task_status_terminal(enum task_status s)
{
	return s == TASK_COMPLETED || s == TASK_FAILED || s == TASK_CANCELLED;
}

bool task_transition_allowed(enum task_status from, enum task_status to)
{
	if ((unsigned)from >= TASK_STATUS_COUNT || (unsigned)to >= TASK_STATUS_COUNT)
		return false;
	return (allowed[from] >> to) & 1u;
}

bool task_set_status(struct task *t, enum task_status to, int64_t now)
{
	if (!task_transition_allowed(t->status, to)) {
		log_warn("task %s: the move %s -> %s is not allowed; refused", t->id,
			 task_status_name(t->status), task_status_name(to));
		return false;
	}
	t->status = to;
	t->updated_at = now;
	t->completed_at = task_status_terminal(to) ? now : 0;
	return true;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static bool has_control_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			return true;
	return false;
}

/* True if key is present in obj at all, even as null. */
static bool key_present(yajl_val obj, const char *key)
{
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return true;
	return false;
}

static int opt_label(yajl_val body, const char *key, size_t maxlen, char **out, struct verr *e)
{
	const char *s;
	int rc = json_get_str(body, key, &s);
	if (rc == JSON_ABSENT)
		return 0;
	if (rc == JSON_WRONG_TYPE)
		return verr_set(e, key, "%s must be a string", key);
	if (!*s || strlen(s) > maxlen || has_control_chars(s))
		return verr_set(e, key, "%s must be 1 to %zu printable characters", key, maxlen);
	*out = xstrdup(s);
	return 0;
}

static void task_defaults(struct task *t)
{
	memset(t, 0, sizeof *t);
	t->timeout_s = (int)config_sect_int("tasks", "defaultTimeoutSeconds", 300, 1, 86400);
	t->max_attempts = (int)config_sect_int("tasks", "defaultMaxAttempts", 3, 1, 100);
	t->queue_timeout_s =
	    (int)config_sect_int("tasks", "queueTimeoutSeconds", 3600, 0, QUEUE_TIMEOUT_MAX);
}

/* The members of a task's creation (openapi.json TaskCreate). */
static const char *const request_members[] = {
    "model",       "input", "priority", "timeoutSeconds", "maxAttempts", "queueTimeoutSeconds",
    "affinityKey", "group", "tags"};

int task_from_request(yajl_val body, struct task *t, struct verr *e)
{
	task_defaults(t);
	if (!body || !YAJL_IS_OBJECT(body))
		return verr_set(e, "", "the body must be a JSON object");
	/* First: a typo'd "modle" is named as such, not reported as "model is required". */
	if (config_strict_bodies() &&
	    verr_known_members(body, "", request_members,
			       sizeof request_members / sizeof request_members[0], e) < 0) {
		task_free(t);
		return -1;
	}
	if (opt_label(body, "model", MODEL_MAX_LEN, &t->model, e) < 0)
		goto fail;
	if (!t->model) {
		verr_set(e, "model", "model is required");
		goto fail;
	}
	if (!key_present(body, "input")) {
		verr_set(e, "input", "input is required (any JSON value)");
		goto fail;
	}
	t->input = json_get(body, "input"); /* NULL stands for JSON null */
	if (verr_opt_int(body, "priority", NULL, -1000, 1000, &t->priority, e) < 0 ||
	    verr_opt_int(body, "timeoutSeconds", NULL, 1, 86400, &t->timeout_s, e) < 0 ||
	    verr_opt_int(body, "maxAttempts", NULL, 1, 100, &t->max_attempts, e) < 0 ||
	    verr_opt_int(body, "queueTimeoutSeconds", NULL, 0, QUEUE_TIMEOUT_MAX,
			 &t->queue_timeout_s, e) < 0 ||
	    opt_label(body, "affinityKey", AFFINITY_MAX_LEN, &t->affinity_key, e) < 0 ||
	    opt_label(body, "group", LABEL_MAX_LEN, &t->group, e) < 0)
		goto fail;
	yajl_val tags;
	int rc = json_get_arr(body, "tags", &tags);
	if (rc == JSON_WRONG_TYPE) {
		verr_set(e, "tags", "tags must be an array of strings");
		goto fail;
	}
	if (rc == JSON_OK) {
		if (tags->u.array.len > TAGS_MAX) {
			verr_set(e, "tags", "tags has more than %d entries", TAGS_MAX);
			goto fail;
		}
		for (size_t i = 0; i < tags->u.array.len; i++) {
			yajl_val v = tags->u.array.values[i];
			const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
			if (!s || !*s || strlen(s) > LABEL_MAX_LEN || has_control_chars(s)) {
				verr_set(e, "tags", "tags[%zu] must be a string of 1 to %d characters",
					 i, LABEL_MAX_LEN);
				goto fail;
			}
			if (!strlist_has(&t->tags, s))
				strlist_add(&t->tags, s);
		}
	}
	int64_t now = now_ms();
	uuid_new(t->id);
	t->status = TASK_PENDING;
	t->created_at = t->updated_at = t->queued_at = now;
	return 0;
fail:
	task_free(t);
	return -1;
}

static void attempt_from_doc(yajl_val a, struct task_attempt *at)
{
	memset(at, 0, sizeof *at);
	at->n = (int)json_int_or(a, "attempt", 0);
	snprintf(at->server_id, sizeof at->server_id, "%s", json_str_or(a, "serverId", ""));
	at->started_at = json_int_or(a, "startedAt", 0);
	at->ended_at = json_int_or(a, "endedAt", 0);
	at->accepted_at = json_int_or(a, "acceptedAt", 0);
	snprintf(at->outcome, sizeof at->outcome, "%s", json_str_or(a, "outcome", ""));
	at->error = dup_or_null(json_str_or(a, "error", NULL));
	snprintf(at->secret_hash, sizeof at->secret_hash, "%s", json_str_or(a, "secretHash", ""));
}

void task_from_doc(yajl_val doc, struct task *t)
{
	memset(t, 0, sizeof *t);
	snprintf(t->id, sizeof t->id, "%s", json_str_or(doc, "id", ""));
	int st = task_status_from_name(json_str_or(doc, "status", ""));
	t->status = st < 0 ? TASK_FAILED : (enum task_status)st;
	yajl_val rq = json_get(doc, "request");
	t->model = xstrdup(json_str_or(rq, "model", ""));
	t->input = json_get(rq, "input");
	t->priority = (int)json_int_or(rq, "priority", 0);
	t->timeout_s = (int)json_int_or(rq, "timeoutSeconds", 300);
	t->max_attempts = (int)json_int_or(rq, "maxAttempts", 3);
	/* Tasks stored before the field never expire: their clients did not ask. */
	t->queue_timeout_s = (int)json_int_or(rq, "queueTimeoutSeconds", 0);
	t->affinity_key = dup_or_null(json_str_or(rq, "affinityKey", NULL));
	t->group = dup_or_null(json_str_or(rq, "group", NULL));
	strlist_from_json(&t->tags, json_get(rq, "tags"));
	t->idempotency_key = dup_or_null(json_str_or(doc, "idempotencyKey", NULL));
	t->result = json_get(doc, "result");
	t->error = dup_or_null(json_str_or(doc, "error", NULL));
	yajl_val prog = json_get(doc, "progress");
	t->logs = dup_or_null(json_str_or(prog, "logs", NULL));
	t->backend_status = dup_or_null(json_str_or(prog, "status", NULL));
	t->progress_output = json_get(prog, "output");
	snprintf(t->server_id, sizeof t->server_id, "%s", json_str_or(doc, "serverId", ""));
	t->attempts = (int)json_int_or(doc, "attempts", 0);
	t->failures = (int)json_int_or(doc, "failures", 0);
	t->created_at = json_int_or(doc, "createdAt", 0);
	t->updated_at = json_int_or(doc, "updatedAt", 0);
	t->completed_at = json_int_or(doc, "completedAt", 0);
	t->queued_at = json_int_or(doc, "queuedAt", 0);
	t->deadline = json_int_or(doc, "deadline", 0);
	t->next_attempt_at = json_int_or(doc, "nextAttemptAt", 0);
	snprintf(t->avoid_server, sizeof t->avoid_server, "%s", json_str_or(doc, "avoidServer", ""));
	snprintf(t->queue_key, sizeof t->queue_key, "%s", json_str_or(doc, "queueKey", ""));
	yajl_val hist = json_get(doc, "history");
	if (hist && YAJL_IS_ARRAY(hist) && hist->u.array.len) {
		size_t n = hist->u.array.len;
		t->history = calloc(n, sizeof *t->history);
		if (!t->history)
			abort();
		for (size_t i = 0; i < n; i++)
			attempt_from_doc(hist->u.array.values[i], &t->history[i]);
		t->nhistory = (int)n;
	}
}

/* The generator of one form: the stored one has every member, the public one
 * only those the table marks public. */
struct form {
	struct jgen *g;
	bool stored;
};

/* Writes the member's key and returns true when the form has the member; the
 * caller then writes its value. */
static bool member(const struct form *f, enum task_member m)
{
	if (!f->stored && !members[m].public)
		return false;
	jg_key(f->g, members[m].key);
	return true;
}

static void put_str(const struct form *f, enum task_member m, const char *v)
{
	if (member(f, m))
		jg_str(f->g, v);
}

static void put_int(const struct form *f, enum task_member m, int64_t v)
{
	if (member(f, m))
		jg_int(f->g, v);
}

/* A time or count that is 0 until it happens: null until then. */
static void put_int_or_null(const struct form *f, enum task_member m, int64_t v)
{
	if (!member(f, m))
		return;
	if (v)
		jg_int(f->g, v);
	else
		jg_null(f->g);
}

static void put_value(const struct form *f, enum task_member m, yajl_val v)
{
	if (member(f, m))
		jg_value(f->g, v);
}

static void emit_request(const struct task *t, const struct form *f)
{
	if (!member(f, TM_REQUEST))
		return;
	jg_obj(f->g);
	put_str(f, TM_REQ_MODEL, t->model);
	put_value(f, TM_REQ_INPUT, t->input);
	put_int(f, TM_REQ_PRIORITY, t->priority);
	put_int(f, TM_REQ_TIMEOUT, t->timeout_s);
	put_int(f, TM_REQ_MAX_ATTEMPTS, t->max_attempts);
	put_int(f, TM_REQ_QUEUE_TIMEOUT, t->queue_timeout_s);
	put_str(f, TM_REQ_AFFINITY_KEY, t->affinity_key);
	put_str(f, TM_REQ_GROUP, t->group);
	if (member(f, TM_REQ_TAGS))
		strlist_to_json(&t->tags, f->g);
	jg_obj_end(f->g);
}

static void emit_progress(const struct task *t, const struct form *f)
{
	if (!(t->logs || t->backend_status || t->progress_output) || !member(f, TM_PROGRESS))
		return;
	jg_obj(f->g);
	put_str(f, TM_PROG_STATUS, t->backend_status);
	put_str(f, TM_PROG_LOGS, t->logs);
	if (t->progress_output)
		put_value(f, TM_PROG_OUTPUT, t->progress_output);
	jg_obj_end(f->g);
}

static void emit_history(const struct task *t, const struct form *f)
{
	if (!member(f, TM_HISTORY))
		return;
	jg_arr(f->g);
	int first = t->nhistory > HISTORY_MAX ? t->nhistory - HISTORY_MAX : 0;
	for (int i = first; i < t->nhistory; i++) {
		const struct task_attempt *a = &t->history[i];
		jg_obj(f->g);
		put_int(f, TM_ATT_NUMBER, a->n);
		put_str(f, TM_ATT_SERVER_ID, a->server_id);
		put_int(f, TM_ATT_STARTED_AT, a->started_at);
		put_int_or_null(f, TM_ATT_ENDED_AT, a->ended_at);
		put_int_or_null(f, TM_ATT_ACCEPTED_AT, a->accepted_at);
		put_str(f, TM_ATT_OUTCOME, a->outcome[0] ? a->outcome : NULL);
		put_str(f, TM_ATT_ERROR, a->error);
		put_str(f, TM_ATT_SECRET_HASH, a->secret_hash);
		jg_obj_end(f->g);
	}
	jg_arr_end(f->g);
}

static void emit(const struct task *t, struct jgen *g, bool stored)
{
	const struct form f = {g, stored};
	jg_obj(g);
	put_str(&f, TM_ID, t->id);
	put_str(&f, TM_STATUS, task_status_name(t->status));
	emit_request(t, &f);
	put_value(&f, TM_RESULT, t->result);
	put_str(&f, TM_ERROR, t->error);
	put_str(&f, TM_SERVER_ID, t->server_id[0] ? t->server_id : NULL);
	put_int(&f, TM_ATTEMPTS, t->attempts);
	put_int(&f, TM_FAILURES, t->failures);
	put_int(&f, TM_CREATED_AT, t->created_at);
	put_int(&f, TM_UPDATED_AT, t->updated_at);
	put_int_or_null(&f, TM_COMPLETED_AT, t->completed_at);
	put_int(&f, TM_PRIORITY, t->priority);
	put_int_or_null(&f, TM_DEADLINE, t->deadline);
	put_int_or_null(&f, TM_NEXT_ATTEMPT_AT, t->next_attempt_at);
	put_int(&f, TM_QUEUED_AT, t->queued_at);
	emit_progress(t, &f);
	emit_history(t, &f);
	put_str(&f, TM_IDEMPOTENCY_KEY, t->idempotency_key);
	put_str(&f, TM_AVOID_SERVER, t->avoid_server);
	put_str(&f, TM_QUEUE_KEY, t->queue_key);
	jg_obj_end(g);
}

void task_to_doc(const struct task *t, struct jgen *g)
{
	emit(t, g, true);
}

void task_to_public(const struct task *t, struct jgen *g)
{
	emit(t, g, false);
}

void task_free(struct task *t)
{
	free(t->model);
	free(t->affinity_key);
	free(t->group);
	free(t->idempotency_key);
	free(t->error);
	free(t->logs);
	free(t->backend_status);
	strlist_free(&t->tags);
	for (int i = 0; i < t->nhistory; i++)
		free(t->history[i].error);
	free(t->history);
	memset(t, 0, sizeof *t);
}

struct task_attempt *task_current_attempt(struct task *t)
{
	return t->nhistory ? &t->history[t->nhistory - 1] : NULL;
}

struct task_attempt *task_attempt_by_number(struct task *t, int n)
{
	for (int i = t->nhistory - 1; i >= 0; i--)
		if (t->history[i].n == n)
			return &t->history[i];
	return NULL;
}

struct task_attempt *task_add_attempt(struct task *t, const char *server_id, int64_t now)
{
	struct task_attempt *h = realloc(t->history, (size_t)(t->nhistory + 1) * sizeof *h);
	if (!h)
		abort();
	t->history = h;
	struct task_attempt *a = &h[t->nhistory++];
	memset(a, 0, sizeof *a);
	a->n = ++t->attempts;
	snprintf(a->server_id, sizeof a->server_id, "%s", server_id);
	a->started_at = now;
	snprintf(t->server_id, sizeof t->server_id, "%s", server_id);
	return a;
}

void task_set_error(struct task *t, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(t->error);
	t->error = buf_detach(&b);
}

void task_set_logs(struct task *t, const char *logs)
{
	free(t->logs);
	t->logs = NULL;
	if (!logs)
		return;
	size_t n = strlen(logs);
	const char *start = logs;
	if (n > TASK_LOG_TAIL) {
		start = logs + n - TASK_LOG_TAIL;
		/* Skip UTF-8 continuation bytes so the tail stays valid text. */
		while ((*start & 0xc0) == 0x80)
			start++;
	}
	t->logs = xstrdup(start);
}

int task_load_doc(const char *id, yajl_val *doc)
{
	return store_load("tasks", id, doc);
}

struct edit_ctx {
	task_edit_fn *fn;
	void *arg;
	struct buf *public_json;
	enum task_status was, became;
	int64_t created_at;
};

static int task_edit(yajl_val old, struct jgen *g, void *arg)
{
	struct edit_ctx *c = arg;
	struct task t;
	task_from_doc(old, &t);
	c->was = t.status;
	int rc = c->fn(&t, c->arg);
	c->became = t.status;
	c->created_at = t.created_at;
	/* Every status change passes here, so here the finished/ index follows it: the
	 * entry of a status goes down before the task file says it (a listing checks
	 * the file), and the entry of the one it left goes after (task_update). */
	if (rc == STORE_OK && t.status != c->was && task_status_terminal(t.status))
		tindex_finished_add(task_status_name(t.status), t.id, t.created_at);
	if (rc == STORE_OK)
		task_to_doc(&t, g);
	if (c->public_json && (rc == STORE_OK || rc == STORE_UNCHANGED)) {
		struct jgen pg;
		jg_init(&pg);
		task_to_public(&t, &pg);
		jg_finish(&pg, c->public_json);
		jg_free(&pg);
	}
	task_free(&t);
	return rc;
}

int task_update(const char *id, task_edit_fn *fn, void *arg, struct buf *public_json)
{
	struct edit_ctx c = {fn, arg, public_json, TASK_PENDING, TASK_PENDING, 0};
	int rc = store_update("tasks", id, 0, task_edit, &c);
	if (rc == STORE_OK && c.became != c.was && task_status_terminal(c.was))
		tindex_finished_remove(task_status_name(c.was), id, c.created_at);
	return rc;
}

int task_update_hint(const char *id, task_edit_fn *fn, void *arg)
{
	struct edit_ctx c = {fn, arg, NULL, TASK_PENDING, TASK_PENDING, 0};
	return store_update("tasks", id, STORE_NO_FSYNC, task_edit, &c);
}

_Static_assert(TASK_ID_LEN == TINDEX_ID_LEN, "task ids are the index's ids");
_Static_assert(sizeof(((struct task *)0)->queue_key) == TINDEX_KEY_MAX,
	       "a task keeps its queue entry's whole name");

int task_queue_entry_add(struct task *t)
{
	return tindex_queue_add(t->id, t->priority, t->queued_at, t->next_attempt_at,
				t->queue_key);
}
