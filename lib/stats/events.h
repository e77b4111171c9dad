/* events: the append-only hourly event log that statistics are folded from, and the
 * only code that reads or writes the stats/ folder of the state tree.
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
 * Readers (lib/stats.c) skip lines they do not understand, so fields and types may
 * be added. */
#ifndef TASKGATE_EVENTS_H
#define TASKGATE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
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

/* ---- the stats/ folder (readers take no lock; writers replace files atomically) ---- */

struct events_fileinfo {
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
};

/* rel is relative to stats/ ("events/2024010112.jsonl", "totals.json"); it is a
 * constant or built from an hour name by the caller, never request data.
 * Returns STORE_OK, STORE_NOENT or STORE_IO. */
int events_file_info(const char *rel, struct events_fileinfo *fi);
/* Appends bytes [offset, offset + max) of the file to out; fi (may be NULL) receives
 * the file's identity as opened. STORE_OK, STORE_NOENT, STORE_IO. */
int events_file_read(const char *rel, uint64_t offset, uint64_t max, struct buf *out,
		     struct events_fileinfo *fi);
/* Replaces stats/<dir>/<name> (dir may be "") atomically and durably. */
int events_file_write(const char *dir, const char *name, const char *data, size_t len);
/* The same with the document g generated, plus a newline; STORE_IO when g failed.
 * g stays the caller's to free. */
int events_file_write_json(const char *dir, const char *name, struct jgen *g);
int events_file_remove(const char *rel);

/* Removes the temp files (".<name>...tmp") a killed writer left in stats/<dir> ("" for
 * stats/ itself). Only for callers that hold the rollup's run lock: every writer of
 * those folders does. Returns how many were removed. */
int events_clean_temp(const char *dir);

/* Hour starts (ms) of the files "<YYYYMMDDHH><suffix>" in stats/<dir>, ascending.
 * Returns how many; *out is the caller's to free. */
size_t events_list_hours(const char *dir, const char *suffix, int64_t **out);
/* Whether hour is one of the n ascending hour starts of v (such a list). */
bool events_hours_has(const int64_t *v, size_t n, int64_t hour);

#endif
