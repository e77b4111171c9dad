/* A task's files: PUT /api/v2/uploads/:server/:secret/:name (Cog's --upload-url;
 * lib/sched/upload.h) and GET /api/v2/tasks/:id/files/:name (lib/fs/taskfiles.h),
 * served in pieces with their type, length, ETag and byte ranges. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mime.h"
#include "fs/store.h"
#include "fs/taskfiles.h"
#include "model/config.h"
#include "sched/intake.h"
#include "sched/upload.h"
#include "app.h"

/* ---- serving ---- */

static ssize_t file_read_at(void *ctx, char *dst, size_t n, unsigned long long off)
{
	return taskfile_read_at((int)(intptr_t)ctx, dst, n, off);
}

static void file_close(void *ctx)
{
	taskfile_close((int)(intptr_t)ctx);
}

/* One range of RFC 9110 14.1.2 ("bytes=a-b", "bytes=a-", "bytes=-n") over size
 * bytes into [*first, *last]. 1: a range; 0: serve the whole file (no Range, one
 * we do not take such as several ranges, or one that is not well formed);
 * -1: not satisfiable (416). */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	const char *p = h + 6;
	char *end;
	if (*p == '-') {
		errno = 0;
		unsigned long long n = strtoull(p + 1, &end, 10);
		if (errno || *end || end == p + 1)
			return 0;
		if (n == 0 || size == 0)
			return -1;
		*first = n >= size ? 0 : size - n;
		*last = size - 1;
		return 1;
	}
	errno = 0;
	unsigned long long a = strtoull(p, &end, 10);
	if (errno || end == p || *end != '-')
		return 0;
	unsigned long long b = size ? size - 1 : 0;
	if (end[1]) {
		char *end2;
		b = strtoull(end + 1, &end2, 10);
		if (errno || *end2 || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

int api_tasks_file(struct http_req *rq, struct http_resp *rs)
{
	const char *id = rq->param[0], *name = rq->param[1];
	if (!store_id_valid(id) || !store_exists("tasks", id))
		return http_problem(rs, 404, NULL, "task '%s' not found", id);
	struct taskfile_info info;
	int fd = taskfile_open(id, name, &info);
	if (fd < 0)
		return http_problem(rs, 404, NULL, "task '%s' has no file '%s'", id, name);
	char etag[80];
	snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", info.size,
		 (uint64_t)info.mtime_ns, info.ino);
	http_header(rs, "ETag", "%s", etag);
	http_header(rs, "Accept-Ranges", "bytes");
	http_header(rs, "Cache-Control", "private");
	/* Files come from backends: never let a browser run one as a page of ours. */
	http_header(rs, "X-Content-Type-Options", "nosniff");
	http_header(rs, "Content-Security-Policy", "sandbox");
	if (rq->if_none_match && strstr(rq->if_none_match, etag)) {
		taskfile_close(fd);
		return 304;
	}
	uint64_t first = 0, last = info.size ? info.size - 1 : 0;
	int ranged = parse_range(rq->range, info.size, &first, &last);
	if (ranged < 0) {
		taskfile_close(fd);
		http_header(rs, "Content-Range", "bytes */%" PRIu64, info.size);
		return http_problem(rs, 416, "Range", "the range is outside the file's %" PRIu64
				    " bytes", info.size);
	}
	rs->content_type = mime_of_name(name);
	rs->stream = (struct http_stream){.read_at = file_read_at,
					  .close = file_close,
					  .ctx = (void *)(intptr_t)fd,
					  .off = first,
					  .len = info.size ? last - first + 1 : 0};
	if (ranged) {
		http_header(rs, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first,
			    last, info.size);
		return 206;
	}
	return 200;
}

/* ---- receiving ---- */

int api_uploads_put(struct http_req *rq, struct http_resp *rs)
{
	const char *server = rq->param[0], *secret = rq->param[1], *name = rq->param[2];
	char task_id[TASK_ID_LEN + 1];
	int rc = upload_check(server, secret, rq->prediction_id, task_id);
	switch (rc) {
	case STORE_OK:
		break;
	case UPLOAD_BAD_SECRET:
		return http_problem(rs, 401, NULL, "this is not an upload URL of server '%s'",
				    server);
	case UPLOAD_BAD_PREDICTION:
		return http_problem(rs, 400, "X-Prediction-ID",
				    "X-Prediction-ID must name the prediction taskgate started "
				    "(<task id>-<attempt>)");
	case UPLOAD_NOT_RUNNING:
		return http_problem(rs, 409, "X-Prediction-ID",
				    "prediction '%s' is not running on server '%s'; nothing stored",
				    rq->prediction_id, server);
	default:
		return app_store_problem(rs, rc, "task", task_id);
	}
	if (!taskfile_name_valid(name))
		return http_problem(rs, 400, "filename",
				    "a file name is 1 to %d letters, digits, '.', '_' and '-', "
				    "not starting with '.'",
				    TASKFILE_NAME_MAX);
	long long max = config_int("uploadMaxBytes", 64LL << 20, 1024, 1LL << 40);
	if (rq->content_length > max)
		return http_problem(rs, 413, "/", "a file of %lld bytes exceeds uploadMaxBytes (%lld)",
				    rq->content_length, max);
	if (upload_receive(task_id, name, http_req_body_piece, rq,
			   (uint64_t)rq->content_length) < 0) {
		if (rq->body_taken < rq->content_length)
			return http_problem(rs, 400, NULL, "the file could not be read");
		return http_problem(rs, 500, NULL, "the file could not be stored");
	}
	struct buf url = BUF_INIT;
	intake_file_url(task_id, name, &url);
	struct jgen g;
	jg_init(&g);
	jg_obj(&g);
	jg_kstr(&g, "name", name);
	jg_kint(&g, "bytes", rq->content_length);
	jg_kstr(&g, "url", buf_str(&url));
	jg_obj_end(&g);
	int status = http_json(rs, 201, &g);
	jg_free(&g);
	buf_free(&url);
	return status;
}
