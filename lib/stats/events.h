/* events: the append-only hourly event log that statistics are folded from: what a
 * line says about a task or a server. The bytes go to fs/statsfile.h, which owns the
 * files.
 *
 * One JSON line per event in stats/events/<YYYYMMDDHH>.jsonl (the UTC hour of the
 * event's own time), written with a single write() on an O_APPEND descriptor: lines
 * under 4 KiB from concurrent processes do not interleave on a local file system,
 * and no lock is taken on the request path. Losing an event to a crash costs a
 * statistic, never a task.
 *
 * Lines (every one has "t", ms since the epoch, and "type"):
 *   task events   {"t","type","task","model","server"?,"ms"?,"waitMs"?,"outcome"?,
 *                  "createdAt"?}
 *     type: created, dispatched, completed, failed, timed_out, cancelled, retried;
 *     ms: run time of the attempt that ended (absent when 0 or not applicable);
 *     waitMs (dispatched only): how long the task waited in the queue for this
 *       attempt: now - max(queuedAt, nextAttemptAt) of the task passed in, i.e. since
 *       it was queued or, after a back-off, since it became due again. Pass the task
 *       as it was while queued (or freshly armed: a task placed at creation has
 *       queuedAt = createdAt and waits ~0);
 *     outcome (events_task_end only): the attempt's outcome (succeeded, failed,
 *       rejected, error, timeout, busy, cancelled);
 *   {"t","type":"server_status","server","from","to"}   health changes
 *   {"t","type":"server_maintenance","server","on":bool} maintenance switch
 * Readers (stats/stats.c) skip lines they do not understand, so fields and types may
 * be added. */
#ifndef TASKGATE_EVENTS_H
#define TASKGATE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/server.h"
#include "model/task.h"

/* duration_ms: run time of the attempt that ended (0 when not applicable). */
void events_task(const char *type, const struct task *t, const char *server_id,
		 int64_t duration_ms);
/* The same, naming the ended attempt's outcome (NULL: none). */
void events_task_end(const char *type, const struct task *t, const char *server_id,
		     int64_t duration_ms, const char *outcome);
/* A server's health status changed. */
void events_server(const char *server_id, const char *from, const char *to);
/* A server's maintenance switch was turned on or off. */
void events_server_maintenance(const char *server_id, bool on);

#endif
