#include "model/taskview.h"

#include <string.h>

#include "model/task.h"

/* Which members are copied is task.c's table: a key is copied when the table
 * lists it as a public member of the object it is in, and its value then as a
 * whole, except the structured parts (request, progress, history and its
 * attempts), whose keys are checked in turn. A member the table does not list is
 * left out, so the view can only ever show less than task_to_public, never more. */

/* The structured parts sit at depths 1 to 3; anything deeper is inside a value. */
#define PARTS_DEPTH 4

struct view {
	struct jgen *out;
	int depth;	/* containers open in the output */
	int skipping;	/* > 0: inside a private value's containers */
	bool skip_next; /* the next value belongs to a private key */
	bool started;	/* the document's first token was seen */
	enum task_part next_part; /* what the value of the key just copied holds */
	size_t hint;		  /* where the member table is searched from next */
	enum task_part part[PARTS_DEPTH]; /* what each open container is */
};

static enum task_part current_part(const struct view *v)
{
	return v->depth < PARTS_DEPTH ? v->part[v->depth] : TASK_PART_VALUE;
}

/* The part a container opened now is: the task at the top, an attempt inside
 * history, what the table says for a member's value, else an opaque value. */
static enum task_part opened_part(struct view *v, bool map)
{
	if (v->depth == 0)
		return map ? TASK_PART_TASK : TASK_PART_VALUE;
	enum task_part parent = current_part(v);
	if (parent == TASK_PART_HISTORY)
		return map ? TASK_PART_ATTEMPT : TASK_PART_VALUE;
	if (parent == TASK_PART_VALUE)
		return TASK_PART_VALUE;
	enum task_part p = v->next_part;
	v->next_part = TASK_PART_VALUE;
	/* A shape the table does not describe is copied as an opaque value. */
	if ((p == TASK_PART_HISTORY) == map)
		return TASK_PART_VALUE;
	return p;
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
	enum task_part p = opened_part(v, map);
	if (map)
		jg_obj(v->out);
	else
		jg_arr(v->out);
	v->depth++;
	if (v->depth < PARTS_DEPTH)
		v->part[v->depth] = p;
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
	enum task_part in = current_part(v);
	if (in != TASK_PART_VALUE) {
		const struct task_member_info *m = task_member_find_from(in, (const char *)key, len,
									 &v->hint);
		if (!m || !m->public) {
			v->skip_next = true;
			return 1;
		}
		v->next_part = m->holds;
	}
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
	if (json_stream(stored, len, &view_callbacks, &v) != 0 || !v.started || v.depth != 0 ||
	    out->err)
		return -1;
	return 0;
}
