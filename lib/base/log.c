#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"

static char program[32] = "taskgate";
static char request_id[40];
static int quiet;
static void (*sink)(const char *line, size_t len);

void log_set_sink(void (*fn)(const char *line, size_t len))
{
	sink = fn;
}

void log_set_program(const char *name)
{
	snprintf(program, sizeof program, "%s", name);
}

void log_set_request_id(const char *rid)
{
	snprintf(request_id, sizeof request_id, "%s", rid ? rid : "");
}

const char *log_request_id(void)
{
	return request_id;
}

void log_set_quiet(int on)
{
	quiet = on;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
	struct buf msg = BUF_INIT, line = BUF_INIT;
	char when[32];
	buf_vprintf(&msg, fmt, ap);
	format_time_ms(now_ms(), when);
	buf_printf(&line, "%s %s[%d] %s", when, program, (int)getpid(), level);
	if (request_id[0])
		buf_printf(&line, " rid=%s", request_id);
	buf_addch(&line, ' ');
	for (size_t i = 0; i < msg.len; i++) {
		unsigned char c = (unsigned char)msg.data[i];
		buf_addch(&line, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
	}
	buf_addch(&line, '\n');
	/* One write() per line so concurrent processes do not interleave mid-line. */
	ssize_t ignored = write(STDERR_FILENO, line.data, line.len);
	(void)ignored;
	if (sink)
		sink(line.data, line.len);
	buf_free(&msg);
	buf_free(&line);
}

#define LOG_FN(name, level)                                                                \
	void name(const char *fmt, ...)                                                    \
	{                                                                                  \
		va_list ap;                                                                \
		va_start(ap, fmt);                                                         \
		log_line(level, fmt, ap);                                                  \
		va_end(ap);                                                                \
	}

LOG_FN(log_error, "error")
LOG_FN(log_warn, "warn")
void log_info(const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_line("info", fmt, ap);
	va_end(ap);
}
