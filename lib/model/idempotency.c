#include "model/idempotency.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "fs/store.h"

#define IDEM_KIND "idempotency"
/* How long a record may wait for its task before its creator is taken for dead. */
#define IDEM_STORING_MS 30000

bool idempotency_key_valid(const char *key)
{
	size_t n = strlen(key);
	return n > 0 && n <= IDEMPOTENCY_KEY_MAX;
}

static void record_text(const char *task_id, const char *body_hash, struct buf *out)
{
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "taskId", task_id);
	jg_kstr(&g, "bodyHash", body_hash);
	jg_kint(&g, "createdAt", now_ms());
	jg_obj_end(&g);
	jg_finish(&g, out);
	jg_free(&g);
}

/* The key is taken: whose is it, and is its task there yet? */
static enum idem_claim judge_existing(const char *key_id, const char *body_hash,
				      const struct buf *rec, char existing[TASK_ID_LEN + 1])
{
	yajl_val doc;
	if (store_load(IDEM_KIND, key_id, &doc) != STORE_OK)
		return IDEM_ERROR;
	snprintf(existing, TASK_ID_LEN + 1, "%s", json_str_or(doc, "taskId", ""));
	bool same_body = strcmp(json_str_or(doc, "bodyHash", ""), body_hash) == 0;
	int64_t age = now_ms() - json_int_or(doc, "createdAt", 0);
	yajl_tree_free(doc);
	if (!same_body)
		return IDEM_MISMATCH;
	if (store_exists("tasks", existing))
		return IDEM_REPLAY;
	if (age < IDEM_STORING_MS)
		return IDEM_IN_PROGRESS;
	return store_put(IDEM_KIND, key_id, rec->data, rec->len) == STORE_OK ? IDEM_NEW
									       : IDEM_ERROR;
}

enum idem_claim idempotency_claim(const char *key, const char *body, size_t body_len,
				  const char *task_id, char existing[TASK_ID_LEN + 1])
{
	char key_id[65], body_hash[65];
	sha256_hex(key, strlen(key), key_id);
	sha256_hex(body, body_len, body_hash);
	existing[0] = '\0';
	struct buf rec = BUF_INIT;
	record_text(task_id, body_hash, &rec);
	enum idem_claim result = IDEM_ERROR;
	int rc = store_create(IDEM_KIND, key_id, rec.data, rec.len);
	if (rc == STORE_OK)
		result = IDEM_NEW;
	else if (rc == STORE_EXISTS)
		result = judge_existing(key_id, body_hash, &rec, existing);
	buf_free(&rec);
	return result;
}
