/* events: the append-only hourly event log that statistics are folded from.
 *
 * One JSON line per event in stats/events/<YYYYMMDDHH>.jsonl, written with a single
 * write() on an O_APPEND descriptor: lines under PIPE_BUF-ish sizes (we keep them
 * under 4 KiB) from concurrent processes do not interleave on a local file system,
 * and no lock is taken on the request path. Losing an event to a crash costs a
 * statistic, never a task. */
#ifndef TASKGATE_EVENTS_H
#define TASKGATE_EVENTS_H

#include <stdint.h>

#include "server.h"
#include "task.h"

/* type: created, dispatched, completed, failed, timed_out, cancelled, retried.
 * duration_ms: run time of the attempt that ended (0 when not applicable). */
void events_task(const char *type, const struct task *t, const char *server_id,
		 int64_t duration_ms);
/* A server's status changed. */
void events_server(const char *server_id, const char *from, const char *to);

#endif
