/* log: one line per event on stderr, which lighttpd and Apache keep in their error
 * log, and to a sink if one is set (fs/logfile: the log file in the state tree). Every line carries the current request id so an operator can follow one
 * request. Callers never pass tokens or callback secrets; log_* additionally
 * replaces control characters so a client cannot forge log lines. */
#ifndef TASKGATE_LOG_H
#define TASKGATE_LOG_H

#include <stddef.h>

void log_set_program(const char *name);
void log_set_request_id(const char *rid); /* copied; NULL or "" clears */
const char *log_request_id(void);
/* Quiet: info lines are dropped, warnings and errors still go out (cron mails
 * whatever a job prints, so --quiet must silence routine news). */
void log_set_quiet(int on);
/* Each whole line (newline included) also goes to sink; NULL: stderr only. */
void log_set_sink(void (*sink)(const char *line, size_t len));

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
