#include "model/taskview.h"

#include <string.h>
#include <yajl/yajl_parse.h>

/* Members the store keeps for itself: depth-1 keys of the task object, and
 * "secretHash" inside the attempt objects of "history" (depth 3). */
static const char *const private_top[] = {"idempotencyKey", "avoidServer", "queueKey"};

struct view {
	struct jgen *out;
	int depth;	/* containers open in the output */
	int skipping;	/* > 0: inside a private value's containers */
	bool skip_next; /* the next value belongs to a private key */
	bool started;	/* the document's first token was seen */
	bool in_history;
};

static bool key_is(const unsigned char *key, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(key, name, len) == 0;
}

static bool key_is_private(const struct view *v, const unsigned char *key, size_t len)
{
	if (v->depth == 1) {
		for (size_t i = 0; i < sizeof private_top / sizeof private_top[0]; i++)
			if (key_is(key, len, private_top[i]))
				return true;
		return false;
	}
	return v->depth == 3 && v->in_history && key_is(key, len, "secretHash");
}

/* A scalar: dropped when it is (inside) a private value. Returns whether to emit. */
static bool take_scalar(struct view *v)
{
	if (!v->started)
		return false; /* a bare scalar is not a task document */
	if (v->skipping)
		return false;
	if (v->skip_next) {
		v->skip_next = false;
		return false;
	}
	return true;
}

/* yajl callbacks return 0 to stop the parse: a generator error or a document that
 * is not an object ends the copy as a failure. */
static int on_null(void *ctx)
{
	struct view *v = ctx;
	if (!v->started)
		return 0;
	if (take_scalar(v))
		jg_null(v->out);
	return v->out->err == 0;
}

static int on_boolean(void *ctx, int b)
{
	struct view *v = ctx;
	if (!v->started)
		return 0;
	if (take_scalar(v))
		jg_bool(v->out, b != 0);
	return v->out->err == 0;
}

static int on_number(void *ctx, const char *s, size_t len)
{
	struct view *v = ctx;
	if (!v->started)
		return 0;
	/* The number's own text: nothing is lost to a round trip through a double. */
	if (take_scalar(v) && yajl_gen_number(v->out->g, s, len) != yajl_gen_status_ok)
		v->out->err = 1;
	return v->out->err == 0;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	struct view *v = ctx;
	if (!v->started)
		return 0;
	if (take_scalar(v))
		jg_strn(v->out, (const char *)s, len);
	return v->out->err == 0;
}

static int on_open(struct view *v, bool map)
{
	if (!v->started) {
		if (!map)
			return 0;
		v->started = true;
	} else if (v->skipping || v->skip_next) {
		v->skip_next = false;
		v->skipping++;
		return 1;
	}
	if (map)
		jg_obj(v->out);
	else
		jg_arr(v->out);
	v->depth++;
	return v->out->err == 0;
}

static int on_close(struct view *v, bool map)
{
	if (v->skipping) {
		v->skipping--;
		return 1;
	}
	if (map)
		jg_obj_end(v->out);
	else
		jg_arr_end(v->out);
	v->depth--;
	if (v->depth == 1)
		v->in_history = false;
	return v->out->err == 0;
}

static int on_start_map(void *ctx)
{
	return on_open(ctx, true);
}

static int on_end_map(void *ctx)
{
	return on_close(ctx, true);
}

static int on_start_array(void *ctx)
{
	return on_open(ctx, false);
}

static int on_end_array(void *ctx)
{
	return on_close(ctx, false);
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct view *v = ctx;
	if (v->skipping)
		return 1;
	if (key_is_private(v, key, len)) {
		v->skip_next = true;
		return 1;
	}
	if (v->depth == 1)
		v->in_history = key_is(key, len, "history");
	jg_strn(v->out, (const char *)key, len);
	return v->out->err == 0;
}

static const yajl_callbacks view_callbacks = {
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

int taskview_public(const char *stored, size_t len, struct jgen *out)
{
	struct view v = {.out = out};
	yajl_handle h = yajl_alloc(&view_callbacks, NULL, &v);
	if (!h)
		return -1;
	yajl_status st = yajl_parse(h, (const unsigned char *)stored, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	if (st != yajl_status_ok || !v.started || v.depth != 0 || out->err)
		return -1;
	return 0;
}
