/* waiters: the bound on requests that hold their process while they wait for a
 * task to end (Prefer: wait). A waiting request keeps a web server process busy;
 * left unbounded, a few clients could hold every process and nothing else would be
 * answered. So a wait needs one of a few wait slots (locks/wait.<n>); a request that
 * finds none answers at once, without Preference-Applied (RFC 7240 lets a server
 * ignore a preference).
 *
 * How many: tasks.maxWaiting in config.json when set; otherwise, under FastCGI,
 * one fewer than the request processes there can be, so one is always left for
 * everything else. A fixed pool (lighttpd's max-procs) is counted: each process
 * holds a presence lock, locks/proc.<n>, for its life. A pool that grows on demand
 * (mod_fcgid) starts with one process, so its ceiling is named instead:
 * TASKGATE_MAX_PROCESSES in the process environment (the vhost sets it to
 * MaxProcesses), and the larger of the two counts. Under plain CGI, where every
 * request is a process of its own, 4. */
#ifndef TASKGATE_WAITERS_H
#define TASKGATE_WAITERS_H

#include <stdbool.h>

/* A FastCGI process says it is alive, for the count above (once, at start);
 * pool_max is the ceiling of a pool that grows on demand, 0 when not known. */
void waiters_register_process(int pool_max);

/* A wait slot's lock, or -1 when the bound is reached (then do not wait). */
int waiters_enter(bool cgi);
void waiters_leave(int slot);
/* In a child just forked: lets go of the inherited presence (a worker is not a
 * request process). */
void waiters_forget_inherited(void);

#endif
