#include "sched/upload.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "fs/taskfiles.h"
#include "model/auth.h"
#include "model/config.h"

#define PIECE 65536

static int server_secret(const char *server_id, char out[33])
{
	struct buf msg = BUF_INIT;
	buf_printf(&msg, "upload.%s", server_id);
	/* The attempt secrets' derivation, under a name no task id can take ('.'). */
	int rc = auth_attempt_secret(buf_str(&msg), 0, out);
	buf_free(&msg);
	return rc;
}

int upload_url(const char *server_id, struct buf *out)
{
	char secret[33];
	if (server_secret(server_id, secret) < 0)
		return -1;
	config_public_url(out);
	buf_printf(out, "/api/v2/uploads/%s/%s/", server_id, secret);
	return 0;
}

/* "<task id>-<attempt>", the prediction id taskgate gives Cog. */
static bool split_prediction(const char *pid, char task_id[TASK_ID_LEN + 1], int *attempt)
{
	const char *dash = pid ? strrchr(pid, '-') : NULL;
	if (!dash || dash == pid || (size_t)(dash - pid) > TASK_ID_LEN || !dash[1] ||
	    strspn(dash + 1, "0123456789") != strlen(dash + 1) || strlen(dash + 1) > 6)
		return false;
	memcpy(task_id, pid, (size_t)(dash - pid));
	task_id[dash - pid] = '\0';
	*attempt = atoi(dash + 1);
	return store_id_valid(task_id) && *attempt > 0;
}

int upload_check(const char *server_id, const char *secret, const char *prediction_id,
		 char task_id[TASK_ID_LEN + 1])
{
	char want[33];
	if (!store_id_valid(server_id) || !secret || server_secret(server_id, want) < 0 ||
	    !secure_equal(secret, strlen(secret), want, strlen(want)))
		return UPLOAD_BAD_SECRET;
	int attempt;
	if (!split_prediction(prediction_id, task_id, &attempt))
		return UPLOAD_BAD_PREDICTION;
	yajl_val doc;
	int rc = task_load_doc(task_id, &doc);
	if (rc != STORE_OK)
		return rc;
	struct task t;
	task_from_doc(doc, &t);
	struct task_attempt *a = task_current_attempt(&t);
	bool running = t.status == TASK_PROCESSING && a && a->n == attempt && !a->ended_at &&
		       strcmp(a->server_id, server_id) == 0;
	task_free(&t);
	yajl_tree_free(doc);
	return running ? STORE_OK : UPLOAD_NOT_RUNNING;
}

int upload_receive(const char *task_id, const char *name,
		   ssize_t (*read)(void *ctx, char *dst, size_t n), void *ctx, uint64_t length)
{
	struct taskfile_writer w;
	if (taskfile_create(task_id, name, &w) < 0)
		return -1;
	char *piece = malloc(PIECE);
	if (!piece)
		abort();
	int rc = 0;
	while (rc == 0 && w.bytes < length) {
		ssize_t n = read(ctx, piece, PIECE);
		rc = n <= 0 ? -1 : taskfile_write(&w, piece, (size_t)n);
	}
	free(piece);
	if (rc == 0)
		return taskfile_commit(&w);
	taskfile_abort(&w);
	return -1;
}
