#include "base/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct json_limits json_default_limits = {
	.max_bytes = 1 << 20,
	.max_depth = 64,
	.max_string = 256 * 1024,
};

/* One pass over the raw text enforcing the limits yajl's tree parser lacks. It
 * only needs to track string boundaries and nesting; yajl does the real parse. */
static int json_prescan(const char *t, size_t len, const struct json_limits *lim,
			struct buf *err)
{
	unsigned depth = 0;
	size_t strlen_now = 0;
	bool in_str = false, esc = false;

	for (size_t i = 0; i < len; i++) {
		char c = t[i];
		if (in_str) {
			if (esc) {
				esc = false;
				/* yajl decodes \u0000 to a NUL byte, which would silently
				 * cut every C-string view of the value ("a\u0000b" -> "a"). */
				if (c == 'u' && len - i > 4 && memcmp(t + i + 1, "0000", 4) == 0) {
					if (err)
						buf_adds(err, "NUL character (\\u0000) in a string");
					return -1;
				}
			} else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			if (in_str && ++strlen_now > lim->max_string) {
				if (err)
					buf_printf(err, "a string is longer than %zu bytes",
						   lim->max_string);
				return -1;
			}
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			strlen_now = 0;
			break;
		case '{':
		case '[':
			if (++depth > lim->max_depth) {
				if (err)
					buf_printf(err, "nesting deeper than %u levels",
						   lim->max_depth);
				return -1;
			}
			break;
		case '}':
		case ']':
			if (depth)
				depth--;
			break;
		case '/':
			if (err)
				buf_adds(err, "comments are not allowed in JSON");
			return -1;
		case '\0':
			if (err)
				buf_adds(err, "NUL byte in JSON text");
			return -1;
		default:
			break;
		}
	}
	return 0;
}

yajl_val json_parse(const char *text, size_t len, const struct json_limits *lim,
		    struct buf *err)
{
	if (!lim)
		lim = &json_default_limits;
	if (len > lim->max_bytes) {
		if (err)
			buf_printf(err, "document larger than %zu bytes", lim->max_bytes);
		return NULL;
	}
	if (json_prescan(text, len, lim, err) < 0)
		return NULL;

	/* yajl_tree_parse wants a NUL-terminated string. */
	char *copy = malloc(len + 1);
	if (!copy)
		abort();
	memcpy(copy, text, len);
	copy[len] = '\0';

	char ebuf[256] = "";
	yajl_val v = yajl_tree_parse(copy, ebuf, sizeof ebuf);
	free(copy);
	if (!v && err) {
		/* yajl's message spans lines and quotes the input; keep the first line. */
		size_t n = strcspn(ebuf, "\n");
		while (n && (ebuf[n - 1] == ' ' || ebuf[n - 1] == '.'))
			n--;
		if (n)
			buf_add(err, ebuf, n);
		else
			buf_adds(err, "malformed JSON");
	}
	return v;
}

void json_error_location(const char *text, size_t len, unsigned *line, unsigned *column)
{
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	if (!h)
		abort();
	size_t at = len;
	/* yajl has consumed the byte (or token) it refused: point at its last byte. */
	if (yajl_parse(h, (const unsigned char *)text, len) != yajl_status_ok) {
		at = yajl_get_bytes_consumed(h);
		if (at)
			at--;
	}
	yajl_free(h);
	if (at > len)
		at = len;
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < at; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*column = 1;
		} else {
			(*column)++;
		}
	}
}

void json_pointer_add(char *out, size_t n, const char *token, size_t len)
{
	if (n == 0)
		return;
	size_t o = strnlen(out, n - 1);
	if (o + 1 < n)
		out[o++] = '/';
	for (size_t i = 0; i < len && o + 1 < n; i++) {
		if (token[i] == '~' || token[i] == '/') {
			if (o + 2 >= n)
				break;
			out[o++] = '~';
			out[o++] = token[i] == '~' ? '0' : '1';
		} else {
			out[o++] = token[i];
		}
	}
	out[o] = '\0';
}

static int key_order(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The pointer so far is in out (its length at); on a find, out names the member. */
static bool duplicate_in(yajl_val v, char *out, size_t n, size_t at)
{
	if (YAJL_IS_ARRAY(v)) {
		for (size_t i = 0; i < v->u.array.len; i++) {
			char idx[24];
			int len = snprintf(idx, sizeof idx, "%zu", i);
			out[at] = '\0';
			json_pointer_add(out, n, idx, (size_t)len);
			if (duplicate_in(v->u.array.values[i], out, n, strlen(out)))
				return true;
		}
		return false;
	}
	if (!YAJL_IS_OBJECT(v) || v->u.object.len == 0)
		return false;
	size_t len = v->u.object.len;
	/* Sorted copies of the names: a body of 100 KiB may hold thousands of members,
	 * and comparing each with each would cost millions of strcmp. */
	const char **names = malloc(len * sizeof *names);
	if (!names)
		abort();
	memcpy(names, v->u.object.keys, len * sizeof *names);
	qsort(names, len, sizeof *names, key_order);
	for (size_t i = 1; i < len; i++)
		if (strcmp(names[i - 1], names[i]) == 0) {
			out[at] = '\0';
			json_pointer_add(out, n, names[i], strlen(names[i]));
			free(names);
			return true;
		}
	free(names);
	for (size_t i = 0; i < len; i++) {
		out[at] = '\0';
		json_pointer_add(out, n, v->u.object.keys[i], strlen(v->u.object.keys[i]));
		if (duplicate_in(v->u.object.values[i], out, n, strlen(out)))
			return true;
	}
	return false;
}

bool json_duplicate_member(yajl_val v, char *pointer, size_t n)
{
	if (n == 0)
		return false;
	pointer[0] = '\0';
	bool found = v && duplicate_in(v, pointer, n, 0);
	if (!found)
		pointer[0] = '\0';
	return found;
}

yajl_val json_get(yajl_val obj, const char *key)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0) {
			yajl_val v = obj->u.object.values[i];
			return (v && !YAJL_IS_NULL(v)) ? v : NULL;
		}
	return NULL;
}

int json_get_str(yajl_val obj, const char *key, const char **out)
{
	yajl_val v = json_get(obj, key);
	if (!v)
		return JSON_ABSENT;
	if (!YAJL_IS_STRING(v))
		return JSON_WRONG_TYPE;
	*out = YAJL_GET_STRING(v);
	return JSON_OK;
}

int json_get_int(yajl_val obj, const char *key, long long *out)
{
	yajl_val v = json_get(obj, key);
	if (!v)
		return JSON_ABSENT;
	if (YAJL_IS_INTEGER(v)) {
		*out = YAJL_GET_INTEGER(v);
		return JSON_OK;
	}
	/* 3.0 is an integer to a JSON user even if yajl stores it as a double. */
	if (YAJL_IS_DOUBLE(v)) {
		double d = YAJL_GET_DOUBLE(v);
		if (d == floor(d) && fabs(d) < 9e15) {
			*out = (long long)d;
			return JSON_OK;
		}
	}
	return JSON_WRONG_TYPE;
}

int json_get_num(yajl_val obj, const char *key, double *out)
{
	yajl_val v = json_get(obj, key);
	if (!v)
		return JSON_ABSENT;
	if (!YAJL_IS_NUMBER(v))
		return JSON_WRONG_TYPE;
	*out = YAJL_IS_INTEGER(v) ? (double)YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
	return JSON_OK;
}

int json_get_bool(yajl_val obj, const char *key, bool *out)
{
	yajl_val v = json_get(obj, key);
	if (!v)
		return JSON_ABSENT;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return JSON_WRONG_TYPE;
	*out = YAJL_IS_TRUE(v);
	return JSON_OK;
}

int json_get_obj(yajl_val obj, const char *key, yajl_val *out)
{
	yajl_val v = json_get(obj, key);
	if (!v)
		return JSON_ABSENT;
	if (!YAJL_IS_OBJECT(v))
		return JSON_WRONG_TYPE;
	*out = v;
	return JSON_OK;
}

int json_get_arr(yajl_val obj, const char *key, yajl_val *out)
{
	yajl_val v = json_get(obj, key);
	if (!v)
		return JSON_ABSENT;
	if (!YAJL_IS_ARRAY(v))
		return JSON_WRONG_TYPE;
	*out = v;
	return JSON_OK;
}

const char *json_str_or(yajl_val obj, const char *key, const char *fallback)
{
	const char *s;
	return json_get_str(obj, key, &s) == JSON_OK ? s : fallback;
}

long long json_int_or(yajl_val obj, const char *key, long long fallback)
{
	long long v;
	return json_get_int(obj, key, &v) == JSON_OK ? v : fallback;
}

double json_num_or(yajl_val obj, const char *key, double fallback)
{
	double v;
	return json_get_num(obj, key, &v) == JSON_OK ? v : fallback;
}

bool json_bool_or(yajl_val obj, const char *key, bool fallback)
{
	bool v;
	return json_get_bool(obj, key, &v) == JSON_OK ? v : fallback;
}

/* ---- generator ---- */

static void jg_check(struct jgen *j, yajl_gen_status st)
{
	if (st != yajl_gen_status_ok && !j->err)
		j->err = (int)st;
}

void jg_init(struct jgen *j)
{
	j->g = yajl_gen_alloc(NULL);
	if (!j->g)
		abort();
	yajl_gen_config(j->g, yajl_gen_validate_utf8, 1);
	j->err = 0;
}

void jg_free(struct jgen *j)
{
	if (j->g)
		yajl_gen_free(j->g);
	j->g = NULL;
}

#define JG_CALL(j, call)                                                                   \
	do {                                                                               \
		if (!(j)->err)                                                             \
			jg_check((j), (call));                                             \
	} while (0)

void jg_obj(struct jgen *j)
{
	JG_CALL(j, yajl_gen_map_open(j->g));
}
void jg_obj_end(struct jgen *j)
{
	JG_CALL(j, yajl_gen_map_close(j->g));
}
void jg_arr(struct jgen *j)
{
	JG_CALL(j, yajl_gen_array_open(j->g));
}
void jg_arr_end(struct jgen *j)
{
	JG_CALL(j, yajl_gen_array_close(j->g));
}
void jg_key(struct jgen *j, const char *key)
{
	JG_CALL(j, yajl_gen_string(j->g, (const unsigned char *)key, strlen(key)));
}
void jg_strn(struct jgen *j, const char *s, size_t len)
{
	JG_CALL(j, yajl_gen_string(j->g, (const unsigned char *)s, len));
}
void jg_str(struct jgen *j, const char *s)
{
	if (!s)
		jg_null(j);
	else
		jg_strn(j, s, strlen(s));
}
void jg_int(struct jgen *j, long long v)
{
	/* yajl_gen_integer formats with sprintf; a task document has a dozen
	 * integers, written twice per change (stored and API forms). */
	char text[24], *p = text + sizeof text;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	JG_CALL(j, yajl_gen_number(j->g, p, (size_t)(text + sizeof text - p)));
}
void jg_num(struct jgen *j, double v)
{
	/* JSON has no NaN or infinity; a non-finite figure is "unknown". */
	if (!isfinite(v))
		jg_null(j);
	else if (v == floor(v) && fabs(v) < 9e15)
		jg_int(j, (long long)v);
	else {
		/* yajl prints doubles with %.20g, which shows binary noise
		 * (0.20999999999999999223); ten significant digits are plenty for
		 * every figure we report. */
		char txt[32];
		int n = snprintf(txt, sizeof txt, "%.10g", v);
		JG_CALL(j, yajl_gen_number(j->g, txt, (size_t)n));
	}
}
void jg_bool(struct jgen *j, bool v)
{
	JG_CALL(j, yajl_gen_bool(j->g, v));
}
void jg_null(struct jgen *j)
{
	JG_CALL(j, yajl_gen_null(j->g));
}

void jg_value(struct jgen *j, yajl_val v)
{
	if (!v || YAJL_IS_NULL(v)) {
		jg_null(j);
	} else if (YAJL_IS_STRING(v)) {
		jg_str(j, YAJL_GET_STRING(v));
	} else if (YAJL_IS_NUMBER(v)) {
		/* The original text keeps big integers and exact decimals intact. */
		const char *txt = YAJL_GET_NUMBER(v);
		JG_CALL(j, yajl_gen_number(j->g, txt, strlen(txt)));
	} else if (YAJL_IS_TRUE(v)) {
		jg_bool(j, true);
	} else if (YAJL_IS_FALSE(v)) {
		jg_bool(j, false);
	} else if (YAJL_IS_OBJECT(v)) {
		jg_obj(j);
		for (size_t i = 0; i < v->u.object.len; i++) {
			jg_key(j, v->u.object.keys[i]);
			jg_value(j, v->u.object.values[i]);
		}
		jg_obj_end(j);
	} else if (YAJL_IS_ARRAY(v)) {
		jg_arr(j);
		for (size_t i = 0; i < v->u.array.len; i++)
			jg_value(j, v->u.array.values[i]);
		jg_arr_end(j);
	}
}

void jg_kstr(struct jgen *j, const char *key, const char *s)
{
	jg_key(j, key);
	jg_str(j, s);
}
void jg_kint(struct jgen *j, const char *key, long long v)
{
	jg_key(j, key);
	jg_int(j, v);
}
void jg_knum(struct jgen *j, const char *key, double v)
{
	jg_key(j, key);
	jg_num(j, v);
}
void jg_kbool(struct jgen *j, const char *key, bool v)
{
	jg_key(j, key);
	jg_bool(j, v);
}

int jg_finish(struct jgen *j, struct buf *out)
{
	if (j->err)
		return -1;
	const unsigned char *p;
	size_t n;
	if (yajl_gen_get_buf(j->g, &p, &n) != yajl_gen_status_ok)
		return -1;
	buf_add(out, p, n);
	return 0;
}

int jg_take(struct jgen *j, struct buf *out)
{
	if (jg_finish(j, out) < 0)
		return -1;
	yajl_gen_clear(j->g);
	return 0;
}

void jg_numtext(struct jgen *j, const char *num, size_t len)
{
	JG_CALL(j, yajl_gen_number(j->g, num, len));
}

/* ---- one top-level string, streamed ---- */

struct top_scan {
	const char *key;
	int depth;	    /* 1 inside the top-level object */
	bool object;	    /* the first value was an object */
	bool want;	    /* the last top-level key was ours */
	bool found;
	char *out;
	size_t outlen;
};

static int top_scalar(void *ctx)
{
	struct top_scan *t = ctx;
	if (t->depth == 1)
		t->want = false;
	return 1;
}

static int top_null(void *ctx)
{
	return top_scalar(ctx);
}

static int top_bool(void *ctx, int v)
{
	(void)v;
	return top_scalar(ctx);
}

static int top_number(void *ctx, const char *v, size_t len)
{
	(void)v;
	(void)len;
	return top_scalar(ctx);
}

static int top_string(void *ctx, const unsigned char *v, size_t len)
{
	struct top_scan *t = ctx;
	if (t->depth == 1 && t->want) {
		size_t n = len < t->outlen - 1 ? len : t->outlen - 1;
		memcpy(t->out, v, n);
		t->out[n] = '\0';
		t->found = true;
		return 0; /* done: yajl stops here */
	}
	return top_scalar(ctx);
}

static int top_map_key(void *ctx, const unsigned char *k, size_t len)
{
	struct top_scan *t = ctx;
	if (t->depth == 1)
		t->want = len == strlen(t->key) && memcmp(k, t->key, len) == 0;
	return 1;
}

static int top_open(void *ctx)
{
	struct top_scan *t = ctx;
	if (t->depth == 0)
		t->object = true;
	else if (t->depth == 1)
		t->want = false; /* a container, not a string */
	t->depth++;
	return 1;
}

static int top_open_array(void *ctx)
{
	struct top_scan *t = ctx;
	if (t->depth == 1)
		t->want = false;
	t->depth++;
	return 1;
}

static int top_close(void *ctx)
{
	struct top_scan *t = ctx;
	t->depth--;
	return 1;
}

static const yajl_callbacks top_callbacks = {
    .yajl_null = top_null,
    .yajl_boolean = top_bool,
    .yajl_number = top_number,
    .yajl_string = top_string,
    .yajl_start_map = top_open,
    .yajl_map_key = top_map_key,
    .yajl_end_map = top_close,
    .yajl_start_array = top_open_array,
    .yajl_end_array = top_close,
};

struct json_stream {
	yajl_handle h;
	bool failed;
};

struct json_stream *json_stream_open(const yajl_callbacks *cb, void *ctx)
{
	struct json_stream *s = calloc(1, sizeof *s);
	if (!s)
		abort();
	s->h = yajl_alloc(cb, NULL, ctx);
	if (!s->h)
		abort();
	return s;
}

int json_stream_feed(struct json_stream *s, const char *text, size_t len)
{
	if (!s->failed && yajl_parse(s->h, (const unsigned char *)text, len) != yajl_status_ok)
		s->failed = true;
	return s->failed ? -1 : 0;
}

int json_stream_close(struct json_stream *s)
{
	if (!s->failed && yajl_complete_parse(s->h) != yajl_status_ok)
		s->failed = true;
	int rc = s->failed ? -1 : 0;
	yajl_free(s->h);
	free(s);
	return rc;
}

int json_stream(const char *text, size_t len, const yajl_callbacks *cb, void *ctx)
{
	struct json_stream *s = json_stream_open(cb, ctx);
	int fed = json_stream_feed(s, text, len);
	return json_stream_close(s) == 0 && fed == 0 ? 0 : -1;
}

enum json_top json_top_string(const char *text, size_t len, const char *key, char *out,
			      size_t outlen)
{
	struct top_scan t = {.key = key, .out = out, .outlen = outlen};
	if (outlen == 0)
		return JSON_TOP_ABSENT;
	out[0] = '\0';
	/* A parse error (a cut-off text, a stop once found) ends the stream; what was
	 * seen before it stands. */
	(void)json_stream(text, len, &top_callbacks, &t);
	if (t.found)
		return JSON_TOP_FOUND;
	return t.object ? JSON_TOP_ABSENT : JSON_TOP_NOT_OBJECT;
}

