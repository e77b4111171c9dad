/* intake: a backend's update body (Cog's webhook, an http-json callback, a
 * synchronous answer) read as it arrives and turned into what the task keeps, so
 * that an answer of several MiB is never held whole:
 *
 * - the members an update is made of (status, error, metrics, a tail of the logs,
 *   output) are kept; the rest (Cog echoes the whole input) is skipped unread;
 * - inside output, a data URI is decoded into a file of the task (decodeDataUris,
 *   on by default), and a URL of taskgate's upload route (where Cog's
 *   --upload-url put a file) is rewritten; either becomes the file's URL,
 *   <publicUrl>/api/v2/tasks/<id>/files/<name>, so a client never parses base64
 *   out of JSON and never sees an upload secret;
 * - an output longer than outputInlineBytes (default 256 KiB) is written to the
 *   task's file output.json, and the update carries its URL in its place.
 *
 * Every file is durable before intake_read() returns, so an update naming it can
 * be acknowledged. */
#ifndef TASKGATE_INTAKE_H
#define TASKGATE_INTAKE_H

#include <sys/types.h>

#include "base/buf.h"
#include "base/json.h"

/* Reads the body through read (bytes read, 0 at the end, -1 on error) for task
 * task_id. Returns 0 with *body the update (an object the caller frees with
 * yajl_tree_free), or -1 with err saying why (not JSON, not an object, a file that
 * could not be written, a read that failed). */
int intake_read(const char *task_id, ssize_t (*read)(void *ctx, char *dst, size_t n),
		void *ctx, yajl_val *body, struct buf *err);

/* callbackMaxBytes (config.json, default 8 MiB): the largest update body taken,
 * by callback or as a synchronous answer. */
long long intake_max_bytes(void);

/* The URL a task's file is served at, into out. */
void intake_file_url(const char *task_id, const char *name, struct buf *out);

#endif
