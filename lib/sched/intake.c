#include "sched/intake.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mime.h"
#include "base/util.h"
#include "fs/taskfiles.h"
#include "model/config.h"
#include "model/task.h"

#define READ_CHUNK 65536
#define MAX_DEPTH 64
#define ERROR_MAX 8192 /* bytes of a failure's text kept */
#define SPILL_NAME "output.json"
#define UPLOAD_PATH "/api/v2/uploads/"
#define MAX_DECODED_FILES 1000

/* Which top-level member's value is being read. */
enum member { M_NONE, M_SKIP, M_KEEP, M_LOGS, M_OUTPUT };

struct intake {
	const char *task_id;
	size_t inline_max;
	bool decode_data_uris;
	struct jgen rest;   /* the kept members but output */
	struct jgen out;    /* the output value */
	struct buf out_text; /* output text not yet written out */
	struct taskfile_writer spill;
	bool spilling;	     /* the output goes to output.json */
	bool has_output;
	bool has_logs;
	int depth;	     /* 0 outside the top object, 1 in it */
	enum member cur;
	int files;	     /* data URIs decoded */
	struct buf why;	     /* the first failure */
};

static int fail(struct intake *in, const char *why)
{
	if (!in->why.len)
		buf_adds(&in->why, why);
	return 0; /* stops the parser */
}

static struct jgen *target(struct intake *in)
{
	return in->cur == M_KEEP ? &in->rest : in->cur == M_OUTPUT ? &in->out : NULL;
}

/* Moves generated output text to output.json once it outgrows the inline bound. */
static int flush_output(struct intake *in)
{
	if (jg_take(&in->out, &in->out_text) < 0)
		return fail(in, "the output could not be re-encoded");
	if (!in->spilling && in->out_text.len > in->inline_max) {
		if (taskfile_create(in->task_id, SPILL_NAME, &in->spill) < 0)
			return fail(in, "the output could not be stored");
		in->spilling = true;
	}
	if (in->spilling && in->out_text.len >= READ_CHUNK) {
		if (taskfile_write(&in->spill, in->out_text.data, in->out_text.len) < 0)
			return fail(in, "the output could not be stored");
		buf_reset(&in->out_text);
	}
	return 1;
}

/* After a value event: a value at depth 1 ends its member. */
static int after_value(struct intake *in)
{
	bool output = in->cur == M_OUTPUT;
	if (in->depth == 1)
		in->cur = M_NONE;
	if (in->rest.err || in->out.err)
		return fail(in, "the update could not be re-encoded");
	return output ? flush_output(in) : 1;
}

/* A value must sit inside the top object; a scalar at the top is not an update. */
static int value_allowed(struct intake *in)
{
	if (in->depth == 0)
		return fail(in, "the body must be a JSON object");
	return 1;
}

static int on_null(void *ctx)
{
	struct intake *in = ctx;
	if (!value_allowed(in))
		return 0;
	if (target(in))
		jg_null(target(in));
	return after_value(in);
}

static int on_boolean(void *ctx, int b)
{
	struct intake *in = ctx;
	if (!value_allowed(in))
		return 0;
	if (target(in))
		jg_bool(target(in), b != 0);
	return after_value(in);
}

static int on_number(void *ctx, const char *s, size_t len)
{
	struct intake *in = ctx;
	if (!value_allowed(in))
		return 0;
	if (target(in))
		jg_numtext(target(in), s, len);
	return after_value(in);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The length of s[0..len) cut to at most max bytes on a UTF-8 boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max && (s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* A data URI's payload, decoded (base64 or percent-encoded) into a new buffer. */
static unsigned char *decode_payload(const char *p, size_t n, bool base64, size_t *out_len)
{
	unsigned char *out = malloc(n / 4 * 3 + 4);
	if (!out)
		abort();
	if (base64) {
		long got = base64_decode(p, n, out);
		if (got < 0) {
			free(out);
			return NULL;
		}
		*out_len = (size_t)got;
		return out;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int hi = p[i] == '%' && i + 2 < n ? hex_digit(p[i + 1]) : -1;
		int lo = hi >= 0 ? hex_digit(p[i + 2]) : -1;
		if (lo >= 0) {
			out[o++] = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = (unsigned char)p[i];
		}
	}
	*out_len = o;
	return out;
}

/* data:[<type>][;param]*[;base64],<payload> into a file of the task; its name
 * (output-<k>.<ext>) into name. 0, or -1 when it is not a data URI we can decode
 * (then the string stays as it is) or the file could not be written. */
static int decode_data_uri(struct intake *in, const char *s, size_t len, char *name,
			   size_t name_len)
{
	const char *comma = memchr(s, ',', len);
	if (!comma || in->files >= MAX_DECODED_FILES)
		return -1;
	const char *type = s + 5;
	size_t meta = (size_t)(comma - type);
	bool base64 = meta >= 7 && memcmp(comma - 7, ";base64", 7) == 0;
	size_t n;
	unsigned char *data = decode_payload(comma + 1, len - (size_t)(comma + 1 - s), base64, &n);
	if (!data)
		return -1;
	in->files++;
	snprintf(name, name_len, "output-%d.%s", in->files,
		 meta ? mime_extension(type, meta) : "txt");
	struct taskfile_writer w;
	int rc = taskfile_create(in->task_id, name, &w);
	if (rc == 0 && taskfile_write(&w, data, n) == 0)
		rc = taskfile_commit(&w);
	else
		rc = -1;
	free(data);
	if (rc < 0)
		fail(in, "a file of the output could not be stored");
	return rc;
}

/* The file name at the end of a URL of the upload route into name; false when s
 * is no such URL. */
static bool upload_name(const char *s, size_t len, char *name, size_t name_len)
{
	const char *hit = NULL;
	for (const char *p = s; (p = memmem(p, len - (size_t)(p - s), UPLOAD_PATH,
					   strlen(UPLOAD_PATH))) != NULL;
	     p++)
		hit = p;
	if (!hit)
		return false;
	size_t end = (size_t)(hit - s);
	while (end < len && s[end] != '?' && s[end] != '#')
		end++;
	const char *slash = s + end;
	while (slash > hit && slash[-1] != '/')
		slash--;
	size_t n = (size_t)(s + end - slash);
	if (n == 0 || n >= name_len)
		return false;
	memcpy(name, slash, n);
	name[n] = '\0';
	return taskfile_name_valid(name);
}

static void emit_output_string(struct intake *in, const char *s, size_t len)
{
	char name[TASKFILE_NAME_MAX + 1];
	bool is_file = false;
	if (in->decode_data_uris && len > 5 && strncmp(s, "data:", 5) == 0)
		is_file = decode_data_uri(in, s, len, name, sizeof name) == 0;
	else if (len < 4096 && memmem(s, len, UPLOAD_PATH, strlen(UPLOAD_PATH)))
		is_file = upload_name(s, len, name, sizeof name);
	if (!is_file) {
		jg_strn(&in->out, s, len);
		return;
	}
	struct buf url = BUF_INIT;
	intake_file_url(in->task_id, name, &url);
	jg_strn(&in->out, url.data, url.len);
	buf_free(&url);
}

static int on_string(void *ctx, const unsigned char *us, size_t len)
{
	struct intake *in = ctx;
	const char *s = (const char *)us;
	if (!value_allowed(in))
		return 0;
	if (in->cur == M_LOGS && in->depth == 1 && !in->has_logs) {
		in->has_logs = true;
		size_t keep = len > TASK_LOG_TAIL ? TASK_LOG_TAIL : len;
		const char *start = s + len - keep;
		while (keep && (*start & 0xc0) == 0x80) {
			start++;
			keep--;
		}
		jg_key(&in->rest, "logs");
		jg_strn(&in->rest, start, keep);
	} else if (in->cur == M_OUTPUT) {
		emit_output_string(in, s, len);
	} else if (in->cur == M_KEEP) {
		jg_strn(&in->rest, s, utf8_cut(s, len, ERROR_MAX));
	}
	return after_value(in);
}

static int on_start(struct intake *in, bool map)
{
	if (in->depth >= MAX_DEPTH)
		return fail(in, "the body is nested too deeply");
	if (in->depth == 0 && !map)
		return fail(in, "the body must be a JSON object");
	if (in->depth == 0) {
		jg_obj(&in->rest);
	} else if (target(in)) {
		if (map)
			jg_obj(target(in));
		else
			jg_arr(target(in));
	}
	in->depth++;
	return 1;
}

static int on_start_map(void *ctx)
{
	return on_start(ctx, true);
}

static int on_start_array(void *ctx)
{
	return on_start(ctx, false);
}

static int on_end(void *ctx, bool map)
{
	struct intake *in = ctx;
	in->depth--;
	if (in->depth == 0) {
		jg_obj_end(&in->rest);
		return 1;
	}
	if (target(in)) {
		if (map)
			jg_obj_end(target(in));
		else
			jg_arr_end(target(in));
	}
	return after_value(in);
}

static int on_end_map(void *ctx)
{
	return on_end(ctx, true);
}

static int on_end_array(void *ctx)
{
	return on_end(ctx, false);
}

static enum member member_of(const char *key, size_t len)
{
#define IS(k) (len == strlen(k) && memcmp(key, k, len) == 0)
	if (IS("output"))
		return M_OUTPUT;
	if (IS("logs"))
		return M_LOGS;
	if (IS("status") || IS("error") || IS("metrics"))
		return M_KEEP;
	return M_SKIP;
#undef IS
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct intake *in = ctx;
	if (in->depth > 1) {
		if (target(in))
			jg_strn(target(in), (const char *)key, len);
		return 1;
	}
	in->cur = member_of((const char *)key, len);
	if (in->cur == M_OUTPUT) {
		if (in->has_output)
			return fail(in, "the body has two output members");
		in->has_output = true;
	} else if (in->cur == M_KEEP) {
		jg_strn(&in->rest, (const char *)key, len);
	}
	return 1;
}

static const yajl_callbacks intake_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

long long intake_max_bytes(void)
{
	return config_int("callbackMaxBytes", 8 << 20, 1024, 1LL << 30);
}

void intake_file_url(const char *task_id, const char *name, struct buf *out)
{
	config_public_url(out);
	buf_printf(out, "/api/v2/tasks/%s/files/%s", task_id, name);
}

/* The update as text: {"output": <output or its file's URL>, <the kept members>}. */
static int compose(struct intake *in, struct buf *text)
{
	struct buf rest = BUF_INIT;
	int rc = jg_finish(&in->rest, &rest);
	if (rc == 0 && in->has_output) {
		buf_adds(text, "{\"output\":");
		if (in->spilling) {
			struct jgen g;
			struct buf url = BUF_INIT;
			intake_file_url(in->task_id, SPILL_NAME, &url);
			jg_init(&g);
			jg_strn(&g, url.data, url.len);
			rc = jg_finish(&g, text);
			jg_free(&g);
			buf_free(&url);
		} else {
			buf_add(text, in->out_text.data, in->out_text.len);
		}
		if (rest.len > 2)
			buf_addch(text, ',');
		buf_add(text, rest.data + 1, rest.len - 1); /* after the '{' */
	} else if (rc == 0) {
		buf_add(text, rest.data, rest.len);
	}
	buf_free(&rest);
	return rc;
}

static int finish(struct intake *in, yajl_val *body)
{
	if (in->spilling && (taskfile_write(&in->spill, in->out_text.data, in->out_text.len) < 0 ||
			     taskfile_commit(&in->spill) < 0))
	{
		fail(in, "the output could not be stored");
		return -1;
	}
	struct buf text = BUF_INIT;
	int rc = compose(in, &text);
	struct json_limits lim = json_default_limits;
	lim.max_bytes = in->inline_max + 2 * ERROR_MAX + 2 * TASK_LOG_TAIL + 65536;
	lim.max_depth = MAX_DEPTH + 1;
	lim.max_string = lim.max_bytes;
	struct buf err = BUF_INIT;
	*body = rc == 0 ? json_parse(text.data, text.len, &lim, &err) : NULL;
	if (!*body)
		fail(in, err.len ? buf_str(&err) : "the update could not be re-encoded");
	buf_free(&err);
	buf_free(&text);
	return *body ? 0 : -1;
}

int intake_read(const char *task_id, ssize_t (*read)(void *ctx, char *dst, size_t n),
		void *ctx, yajl_val *body, struct buf *err)
{
	struct intake in = {
	    .task_id = task_id,
	    .inline_max = (size_t)config_int("outputInlineBytes", 256 * 1024, 1024, 2 << 20),
	    .decode_data_uris = config_bool("decodeDataUris", true),
	};
	in.spill.fd = -1;
	*body = NULL;
	jg_init(&in.rest);
	jg_init(&in.out);
	struct json_stream *js = json_stream_open(&intake_callbacks, &in);
	char *chunk = malloc(READ_CHUNK);
	if (!chunk)
		abort();
	bool fed = true, empty = true;
	for (;;) {
		ssize_t n = read(ctx, chunk, READ_CHUNK);
		if (n < 0) {
			fail(&in, "the body could not be read");
			fed = false;
			break;
		}
		if (n == 0)
			break;
		empty = false;
		if (json_stream_feed(js, chunk, (size_t)n) < 0) {
			fed = false;
			break;
		}
	}
	free(chunk);
	bool whole = json_stream_close(js) == 0 && fed && !empty;
	if (!whole)
		fail(&in, empty ? "the body is empty" : "the body is not valid JSON");
	int rc = whole && !in.why.len ? finish(&in, body) : -1;
	if (rc < 0)
		buf_add(err, in.why.data, in.why.len);
	taskfile_abort(&in.spill);
	jg_free(&in.rest);
	jg_free(&in.out);
	buf_free(&in.out_text);
	buf_free(&in.why);
	return rc;
}
