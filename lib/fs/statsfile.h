/* statsfile: the only code that reads or writes the stats/ folder of the state tree
 * (store_init creates the folders with the rest of the tree; the files are ours).
 *
 *   stats/events/<YYYYMMDDHH>.jsonl   the hourly event log (lines appended here)
 *   stats/hourly/<YYYYMMDDHH>.json    folded hours, stats/totals.json, stats/alerts.json
 *
 * Callers name files relative to stats/ ("events/2024010112.jsonl", "totals.json"),
 * built from constants and hour names, never from request data. Readers take no lock:
 * documents are replaced atomically (temp file + rename) and event files only grow.
 * What the lines and documents mean is the stats layer's business; here they are
 * bytes. */
#ifndef TASKGATE_STATSFILE_H
#define TASKGATE_STATSFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/json.h"
#include "fs/file.h"

/* The folders of stats/ (also the dir arguments below; "" is stats/ itself). */
#define STATSFILE_EVENTS "events"
#define STATSFILE_HOURLY "hourly"

/* "<dir>/<YYYYMMDDHH><suffix>", the name of hour's file in dir. */
void statsfile_hour_rel(char *out, size_t n, const char *dir, int64_t hour, const char *suffix);

/* Appends one line (len bytes, newline included) to the event file of the hour
 * holding ms, with a single write() on an O_APPEND descriptor: lines under 4 KiB from
 * concurrent processes do not interleave on a local file system, and no lock is
 * taken. The hour's descriptor stays open between calls (one open per hour and process); a
 * file removed meanwhile is opened again by name. Failures are logged, not returned:
 * losing an event costs a statistic, never a task. */
void statsfile_append_event(int64_t ms, const char *line, size_t len);

/* The stamp of stats/<rel>. STORE_OK, STORE_NOENT, STORE_IO (STORE_INVALID for a
 * name that is not relative). */
int statsfile_info(const char *rel, struct file_stamp *st);
/* Appends bytes [offset, offset + max) of stats/<rel> to out; st (may be NULL)
 * receives the stamp of the file as opened. STORE_OK, STORE_NOENT, STORE_IO. */
int statsfile_read(const char *rel, uint64_t offset, uint64_t max, struct buf *out,
		   struct file_stamp *st);
/* Replaces stats/<dir>/<name> (dir may be "") atomically and durably. */
int statsfile_write(const char *dir, const char *name, const char *data, size_t len);
/* The same with the document g generated, plus a newline; STORE_IO when g failed.
 * g stays the caller's to free. */
int statsfile_write_json(const char *dir, const char *name, struct jgen *g);
int statsfile_remove(const char *rel);

/* Removes the temp files (".<name>...tmp") a killed writer left in stats/<dir> ("" for
 * stats/ itself). Only for callers that hold the rollup's run lock: every writer of
 * those folders does. Returns how many were removed. */
int statsfile_clean_temp(const char *dir);

/* Hour starts (ms) of the files "<YYYYMMDDHH><suffix>" in stats/<dir>, ascending.
 * Returns how many; *out is the caller's to free. */
size_t statsfile_list_hours(const char *dir, const char *suffix, int64_t **out);
/* Whether hour is one of the n ascending hour starts of v (such a list). */
bool statsfile_hours_has(const int64_t *v, size_t n, int64_t hour);

/* In a child just forked: closes its copy of the hourly event file's descriptor
 * (the next event opens its own). */
void statsfile_forget_inherited(void);

#endif
