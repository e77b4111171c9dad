/* json: the only code that runs yajl's parsers (tree and stream) and allocates its
 * generators; the rest of taskgate walks the trees it returns, supplies callbacks to
 * json_stream(), and writes through struct jgen.
 *
 * Parsing is bounded: json_parse() refuses documents over a size, nesting depth or
 * string length limit, and refuses comments (yajl's tree parser would accept them),
 * before yajl ever builds a tree. Getters tell "absent" (missing or null) from
 * "present with the wrong type", so validation can name the field at fault.
 * The generator records its first error and ignores every call after it, so
 * serialisers can emit a whole document and check once at the end. */
#ifndef TASKGATE_JSON_H
#define TASKGATE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "base/buf.h"

struct json_limits {
	size_t max_bytes;
	unsigned max_depth;
	size_t max_string;
};

extern const struct json_limits json_default_limits;

/* Parses text[0..len) (need not be NUL-terminated). On success returns a tree the
 * caller frees with yajl_tree_free(). On failure returns NULL and writes a
 * one-line reason into err (which may be NULL). */
yajl_val json_parse(const char *text, size_t len, const struct json_limits *lim,
		    struct buf *err);

/* Where text[0..len) stops being JSON, for a person fixing a file by hand: the
 * 1-based line and column (in bytes) of the byte yajl stopped at (the end of the
 * text when it is merely incomplete). */
void json_error_location(const char *text, size_t len, unsigned *line, unsigned *column);

enum json_rc { JSON_OK = 0, JSON_ABSENT, JSON_WRONG_TYPE };

/* Runs yajl's stream parser over text[0..len) with the given callbacks and context
 * (a callback returning 0 stops the stream). Returns 0 when the text is one whole,
 * well-formed document and no callback stopped it; -1 otherwise. Nothing is built. */
int json_stream(const char *text, size_t len, const yajl_callbacks *cb, void *ctx);

/* The same parser fed in pieces, for a document that is read as it arrives (a
 * backend's answer of several MiB is never held whole). */
struct json_stream;
struct json_stream *json_stream_open(const yajl_callbacks *cb, void *ctx);
/* 0, or -1 once the text is malformed or a callback stopped it (then every later
 * feed is -1 too). */
int json_stream_feed(struct json_stream *s, const char *text, size_t len);
/* Ends the document: 0 when it was whole and well-formed. Frees s. */
int json_stream_close(struct json_stream *s);

/* What json_top_string() found. */
enum json_top { JSON_TOP_FOUND, JSON_TOP_ABSENT, JSON_TOP_NOT_OBJECT };
/* The string value of `key` among the top-level members of the object in
 * text[0..len), read as a stream: nothing is built, and the text may stop anywhere
 * after that value (the kept start of a longer answer). FOUND copies the value into
 * out (cut to outlen-1 bytes); ABSENT: an object without that string member as far
 * as the text goes; NOT_OBJECT: the text does not start an object. */
enum json_top json_top_string(const char *text, size_t len, const char *key, char *out,
			      size_t outlen);

/* Appends "/" and one reference token to the JSON pointer in out (RFC 6901: '~' is
 * written "~0", '/' "~1"), cut at the end of out[0..n), which stays terminated. */
void json_pointer_add(char *out, size_t n, const char *token, size_t len);

/* yajl's tree keeps every member of an object, a repeated name too, and json_get()
 * finds the first, where most parsers keep the last: a body read differently by a
 * proxy in front and by taskgate. True when some object in v, at any depth, has a
 * name twice; pointer[0..n) then names the repeated member ("/input/x"). */
bool json_duplicate_member(yajl_val v, char *pointer, size_t n);

yajl_val json_get(yajl_val obj, const char *key); /* NULL if absent or obj not an object */
int json_get_str(yajl_val obj, const char *key, const char **out);
int json_get_int(yajl_val obj, const char *key, long long *out);
int json_get_num(yajl_val obj, const char *key, double *out);
int json_get_bool(yajl_val obj, const char *key, bool *out);
int json_get_obj(yajl_val obj, const char *key, yajl_val *out);
int json_get_arr(yajl_val obj, const char *key, yajl_val *out);

/* Convenience reads with a fallback for absent or wrong-typed fields (for reading
 * our own files, whose schema we wrote). */
const char *json_str_or(yajl_val obj, const char *key, const char *fallback);
long long json_int_or(yajl_val obj, const char *key, long long fallback);
double json_num_or(yajl_val obj, const char *key, double fallback);
bool json_bool_or(yajl_val obj, const char *key, bool fallback);

struct jgen {
	yajl_gen g;
	int err; /* first yajl_gen_status that was not yajl_gen_status_ok, else 0 */
};

void jg_init(struct jgen *j);
void jg_free(struct jgen *j);
void jg_obj(struct jgen *j);
void jg_obj_end(struct jgen *j);
void jg_arr(struct jgen *j);
void jg_arr_end(struct jgen *j);
void jg_key(struct jgen *j, const char *key);
void jg_str(struct jgen *j, const char *s); /* NULL emits null */
void jg_strn(struct jgen *j, const char *s, size_t len);
void jg_int(struct jgen *j, long long v);
void jg_num(struct jgen *j, double v);
void jg_bool(struct jgen *j, bool v);
void jg_null(struct jgen *j);
void jg_value(struct jgen *j, yajl_val v); /* deep copy of a parsed value */
/* key + value shorthands */
void jg_kstr(struct jgen *j, const char *key, const char *s);
void jg_kint(struct jgen *j, const char *key, long long v);
void jg_knum(struct jgen *j, const char *key, double v);
void jg_kbool(struct jgen *j, const char *key, bool v);
void jg_numtext(struct jgen *j, const char *num, size_t len); /* a number as parsed */
/* Appends the generated text to out; returns 0, or -1 if any call failed. */
int jg_finish(struct jgen *j, struct buf *out);
/* Appends the text generated so far to out and forgets it, the generator's state
 * kept, so a long document can be written out as it is made. 0 or -1. */
int jg_take(struct jgen *j, struct buf *out);

#endif
