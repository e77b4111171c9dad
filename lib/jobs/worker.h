/* worker: where the work that follows an answer runs (sending tasks to backends,
 * draining the queue, the piggy-backed periodic work), so that a request process
 * only ever serves requests.
 *
 * Why a process of its own. A FastCGI manager (lighttpd, mod_fcgid) gives a
 * process its next request the moment the answer ends: after-work done there
 * delays whoever comes next, and deadlocks when the work waits on a request to
 * taskgate itself (Cog sends its start webhook inside the PUT and answers the PUT
 * only once that webhook was answered). Plain CGI holds the client until the
 * process has closed stdout and exited, and Apache's mod_cgi kills a CGI's
 * process once its request is over. Threads would survive neither, and would
 * share every per-process cache and the journal slot. So the request process
 * forks; the child forks again and exits at once, leaving a grandchild in a
 * session of its own (setsid) with standard input and output on /dev/null, no
 * socket of the web server and no parent to wait for it or kill it: the same
 * under lighttpd, mod_fcgid, plain CGI and suEXEC (where it stays the site's
 * user, as its parent was).
 *
 * Bounds. At most workers.max workers per state tree (config.json, default 4),
 * each holding one slot lock, locks/worker.<n>, for its whole life; a spawn that
 * finds every slot taken forks nothing, since the work is in the tree (queue and
 * index folders) and a running worker finds it there: a worker that ran out of
 * work lets go of its slot and then looks once more, so work added by a spawn that
 * found its slot taken is never left behind. A worker runs rounds of work while
 * they find something to do, and lingers up to workers.lingerMs (default 1000)
 * for more when they do not, watching wake_dirs, so a stream of requests is served
 * by running workers instead of a fork each; for at most workers.maxSeconds
 * (default 30; a watchdog timer ends one that is stuck). What is left waits in the tree for the
 * next worker or the sweep. Every step of the work is crash-safe on its own (see
 * sched/dispatch.h), so killing a worker at any instant loses nothing. */
#ifndef TASKGATE_WORKER_H
#define TASKGATE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

struct worker_work {
	/* One round of work, finished by until_mono (mono_ms()); returns how many
	 * things it did (0: nothing was there to do). */
	int (*round)(void *arg, int64_t until_mono);
	/* Whether the tree holds work a round would do (a few folder reads). */
	bool (*pending)(void *arg);
	/* The folders (relative to the state tree, NULL-terminated) where new work
	 * appears, watched while the worker lingers. */
	const char *const *wake_dirs;
	void *arg;
};

/* Called by a request process after its answer is complete. Starts a detached
 * worker that runs w's rounds, unless every slot is taken. log_path: where the
 * worker's standard error goes (NULL keeps the one it inherits: right for
 * FastCGI, whose standard error is the server's log file; plain CGI must pass a
 * file, because the server reads a CGI's standard error through a pipe until
 * every copy of it is closed). Returns true when a worker was started; the
 * caller never runs w itself. */
bool worker_spawn(const struct worker_work *w, const char *log_path);

/* Whether a worker holds a slot right now (for /api/v2/health and tests). */
int worker_running(void);

#endif
