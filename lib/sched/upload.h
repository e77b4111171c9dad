/* upload: files a server sends for the attempt it runs, as Cog does when started
 * with --upload-url (it PUTs each file output to <upload-url><file name> with an
 * X-Prediction-ID header, then names that URL in its output; see the intake for
 * the rewriting). An http-json server may use the same route.
 *
 * Each server has its own upload URL, <publicUrl>/api/v2/uploads/<server id>/
 * <secret>/, the secret derived from the server id under the tree's callback key
 * (model/auth.h), so it is never stored and a server can only ever put files into
 * an attempt it is running at that moment. */
#ifndef TASKGATE_UPLOAD_H
#define TASKGATE_UPLOAD_H

#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "fs/store.h"
#include "model/task.h"

/* Results besides the STORE_ errors (NOENT: no such task). */
enum upload_result {
	UPLOAD_BAD_SECRET = STORE_EDIT_BASE + 90, /* not this server's upload URL */
	UPLOAD_BAD_PREDICTION, /* X-Prediction-ID missing or not "<task id>-<attempt>" */
	UPLOAD_NOT_RUNNING,    /* the attempt is not running on this server now */
};

/* The server's upload URL into out; -1 when the callback key cannot be had. */
int upload_url(const char *server_id, struct buf *out);

/* Whether secret opens server_id's upload URL, and prediction_id names an attempt
 * running there now; task_id receives its task. STORE_OK or an upload_result or
 * STORE_ error. */
int upload_check(const char *server_id, const char *secret, const char *prediction_id,
		 char task_id[TASK_ID_LEN + 1]);

/* Streams length bytes through read into the task's file name, durable before it
 * returns. 0, or -1 (the read failed or the file could not be written; nothing
 * placed). */
int upload_receive(const char *task_id, const char *name,
		   ssize_t (*read)(void *ctx, char *dst, size_t n), void *ctx, uint64_t length);

#endif
