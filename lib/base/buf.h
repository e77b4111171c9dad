/* buf: a growable, always NUL-terminated byte string (git's strbuf in miniature).
 *
 * Rules: a zero-initialised struct buf (BUF_INIT) is a valid empty string; every
 * append keeps data[len] == '\0'; the owner calls buf_free() once. Allocation
 * failure aborts the process: a FastCGI worker that cannot allocate a few KiB cannot
 * answer anyway, and the web server restarts it. */
#ifndef TASKGATE_BUF_H
#define TASKGATE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NULL until the first append; buf_str() never returns NULL */
	size_t len;
	size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b); /* length 0, memory kept */
void buf_free(struct buf *b);
const char *buf_str(const struct buf *b);
/* Hands the string to the caller (who frees it) and leaves b empty. */
char *buf_detach(struct buf *b);

#endif
