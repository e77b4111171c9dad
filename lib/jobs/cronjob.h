/* cronjob: what every periodic program (cron/taskgate-*) shares, and what lets the
 * request path piggy-back on the same work.
 *
 * Conventions for every cron program:
 * - options: --for SECONDS (keep running that long, 0 = one run), --every SECONDS
 *   (pause between runs inside --for, default 10), --quiet (print nothing when all is
 *   well), --help, plus the program's own flags;
 * - a non-blocking run lock, $STATE_DIR/run/<name>.lock (flock): a copy that finds it
 *   held exits 0 at once and silently, so cron may overlap runs freely. The lock is
 *   held for the whole --for loop, and no run starts in the last --every seconds, so
 *   "--for 55 --every 5" from a crontab line every minute never starves;
 * - after each run that did its work, a stamp $STATE_DIR/run/<name>.last holding the
 *   wall-clock milliseconds; cronjob_overdue() reads it for piggy-backing;
 * - exit codes follow the Nagios plugin convention, so any of them can double as a
 *   monitoring check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage error, state
 *   tree or config.json unusable). A held run lock is 0.
 * - SIGTERM/SIGINT end the loop after the current run (a second one kills).
 *
 * A run lock is a flock on a stable file, which works on NFSv4/GlusterFS as well;
 * a crashed holder's lock goes with its process. */
#ifndef TASKGATE_CRONJOB_H
#define TASKGATE_CRONJOB_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

enum cronjob_exit {
	CRONJOB_OK = 0,
	CRONJOB_WARNING = 1,
	CRONJOB_CRITICAL = 2,
	CRONJOB_UNKNOWN = 3,
	CRONJOB_BUSY = 100, /* cronjob_run only: another copy holds the run lock */
};

#define CRONJOB_FOR_MAX	      3600
#define CRONJOB_EVERY_DEFAULT 10

struct cronjob_opts {
	int for_s;   /* 0: one run */
	int every_s; /* pause between run starts within for_s */
	bool quiet;
};

/* A program's own option: a flag (value == NULL, sets *flag) or an integer
 * (arg != NULL, *value in [min, max]). Arrays end with a zeroed entry. */
struct cronjob_option {
	const char *name; /* without the leading "--" */
	const char *arg;  /* NULL for a flag, else the argument's name in --help */
	const char *help;
	bool *flag;
	long *value;
	long min, max;
};

/* Parses argv. Returns -1 to go on, or the exit code to return at once: 0 after
 * --help (usage on stdout), CRONJOB_UNKNOWN after a usage error (message on stderr).
 * about is the one-line description shown by --help; extra may be NULL. */
int cronjob_parse(int argc, char **argv, const char *name, const char *about,
		  const struct cronjob_option *extra, struct cronjob_opts *o);

/* Opens the state tree named by STATE_DIR (config_state_dir()) without creating it
 * elsewhere: the folder must exist and hold a readable config.json. 0, or -1 with a
 * one-line reason in why. Also sets the log's program name. */
int cronjob_open_state(const char *name, struct buf *why);

/* The run lock: an fd, or -1 with errno EWOULDBLOCK when another process holds it
 * (any other errno: the lock file could not be opened; logged). */
int cronjob_lock(const char *name);
void cronjob_unlock(int fd);

/* Writes run/<name>.last = now. 0 or -1 (logged). */
int cronjob_stamp(const char *name);
/* The last stamp in ms since the epoch, 0 if none (or unreadable). */
int64_t cronjob_last_run(const char *name);
/* True when no stamp is younger than interval_s (also when the stamp lies more than
 * an hour in the future: another host's clock is broken, do not starve). */
bool cronjob_overdue(const char *name, int interval_s);

/* Piggy-backing from a request process: returns the run lock's fd when the job is
 * overdue and nobody runs it (checked again under the lock, so a job that another
 * process just finished is not repeated), else -1. Do one bounded step, then call
 * cronjob_piggyback_end (which stamps on success and unlocks). */
int cronjob_piggyback_begin(const char *name, int interval_s);
void cronjob_piggyback_end(const char *name, int fd, bool success);

/* One run; returns a Nagios code. CRONJOB_UNKNOWN means the work was not done (no
 * stamp is written). */
typedef int cronjob_step_fn(void *arg);

/* Takes the run lock (CRONJOB_BUSY if held, CRONJOB_UNKNOWN if it cannot be taken),
 * calls step once, or every every_s seconds for for_s seconds, stamping after each
 * run that did its work. Returns the last run's code. */
int cronjob_run(const char *name, const struct cronjob_opts *o, cronjob_step_fn *step, void *arg);
/* True once SIGTERM/SIGINT arrived during cronjob_run: long steps may stop early. */
bool cronjob_stopping(void);

#endif
