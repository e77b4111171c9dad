#include "jobs/worker.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/file.h"
#include "fs/journal.h"
#include "fs/logfile.h"
#include "fs/statsfile.h"
#include "fs/store.h"
#include "model/config.h"
#include "net/http_client.h"
#include "sched/waiters.h"

#define WORKERS_MAX_LIMIT 64
/* A stuck worker (a round that ignores its deadline) is ended this much later. */
#define WORKER_ALARM_GRACE_S 30
#define WORKER_ROUNDS_MAX 100000
/* A lingering worker looks at the tree at least this often, and this many times
 * at most per linger. */
#define WORKER_LOOK_MS 50
#define WORKER_LOOKS_MAX 100000

static int workers_max(void)
{
	return (int)config_sect_int("workers", "max", 4, 1, WORKERS_MAX_LIMIT);
}

/* A free slot's lock (fd), or -1 when every slot is taken. The slot to try first
 * is spread by pid, so concurrent spawns do not all queue on slot 0. */
static int take_slot(void)
{
	int n = workers_max();
	int first = (int)(getpid() % n);
	for (int i = 0; i < n; i++) {
		char rel[64];
		snprintf(rel, sizeof rel, "locks/worker.%d", (first + i) % n);
		int fd = store_lock_path(rel, 0);
		if (fd >= 0)
			return fd;
	}
	return -1;
}

int worker_running(void)
{
	int busy = 0, n = workers_max();
	for (int i = 0; i < n; i++) {
		char rel[64];
		snprintf(rel, sizeof rel, "locks/worker.%d", i);
		int fd = store_lock_path(rel, 0);
		if (fd >= 0)
			store_unlock(fd);
		else
			busy++;
	}
	return busy;
}

/* A watchdog of its own clock: alarm() would share ITIMER_REAL with the timed
 * lock waits (fs/file.c), which turn it off when they are done. */
static void arm_watchdog(int seconds)
{
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGTERM};
	timer_t timer;
	struct itimerspec when = {.it_value = {.tv_sec = seconds}};
	if (timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0)
		timer_settime(timer, 0, &when, NULL);
}

/* Watches the folders where work appears (inotify; -1 when it cannot). */
static int watch_work(const struct worker_work *w)
{
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return -1;
	for (size_t i = 0; w->wake_dirs && w->wake_dirs[i]; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", config_state_dir(), w->wake_dirs[i]);
		inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
	}
	return fd;
}

/* Waits, up to linger_ms and never past until, for work to appear; true when it
 * did. Woken by inotify the moment an entry is made on this machine; the tree is
 * also looked at every WORKER_LOOK_MS, for entries inotify cannot see (made by
 * another node on a shared tree, or when inotify is unavailable). */
static bool linger(const struct worker_work *w, int watch_fd, int linger_ms, int64_t until)
{
	int64_t end = mono_ms() + linger_ms;
	if (end > until)
		end = until;
	for (int looks = 0; looks < WORKER_LOOKS_MAX; looks++) {
		if (w->pending(w->arg))
			return true;
		int64_t left = end - mono_ms();
		if (left <= 0)
			return false;
		struct pollfd pfd = {.fd = watch_fd, .events = POLLIN};
		int wait = left < WORKER_LOOK_MS ? (int)left : WORKER_LOOK_MS;
		if (watch_fd < 0 || poll(&pfd, 1, wait) <= 0) {
			if (watch_fd < 0)
				poll(NULL, 0, wait);
			continue;
		}
		char events[4096];
		while (read(watch_fd, events, sizeof events) > 0)
			; /* which entry does not matter: pending() looks */
	}
	return false;
}

/* The worker's life: rounds while they find work, lingering a moment for more
 * when they do not (a stream of requests is then served by running workers,
 * instead of a spawn each: fork costs milliseconds on a virtual machine), then
 * let go of the slot and look once more (see worker.h). Never returns. */
static void run(const struct worker_work *w, int slot)
{
	int max_s = (int)config_sect_int("workers", "maxSeconds", 30, 1, 3600);
	int linger_ms = (int)config_sect_int("workers", "lingerMs", 1000, 0, 60000);
	arm_watchdog(max_s + WORKER_ALARM_GRACE_S);
	int64_t until = mono_ms() + (int64_t)max_s * 1000;
	int watch_fd = linger_ms > 0 ? watch_work(w) : -1;
	for (int rounds = 0; rounds < WORKER_ROUNDS_MAX && mono_ms() < until; rounds++) {
		/* A lingering worker outlives config changes: read them, as a request
		 * process does before each request. */
		config_refresh();
		int did = w->round(w->arg, until);
		journal_commit();
		if (did > 0 || linger(w, watch_fd, linger_ms, until))
			continue;
		store_unlock(slot);
		slot = -1;
		if (!w->pending(w->arg) || (slot = take_slot()) < 0)
			break; /* nothing left, or another worker holds a slot and will do it */
	}
	store_unlock(slot);
	journal_close();
	_exit(0);
}

bool worker_spawn(const struct worker_work *w, const char *log_path)
{
	int slot = take_slot();
	if (slot < 0)
		return false;
	pid_t child = fork();
	if (child < 0) {
		log_error("worker: fork: %s", strerror(errno));
		store_unlock(slot);
		return false;
	}
	if (child > 0) {
		/* The slot's lock now belongs to the grandchild's copy of the descriptor. */
		store_unlock(slot);
		int status;
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		return true;
	}
	/* The child: a new session, then a grandchild that init adopts, so neither the
	 * web server nor this process's parent waits for or signals the work. */
	if (setsid() < 0 || fork() != 0)
		_exit(0);
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	file_detach_stdio(log_path);
	/* Every descriptor of the parent's but the slot goes: the caches that hold one
	 * let go of theirs first, then the rest (the client's FastCGI connection when
	 * a waiting request started us, a lock it held) is closed, so that nothing of
	 * the request's outlives it in here. */
	journal_forget_inherited();
	http_client_forget_inherited();
	statsfile_forget_inherited();
	logfile_forget_inherited();
	waiters_forget_inherited();
	if (slot > STDERR_FILENO + 1)
		close_range(STDERR_FILENO + 1, (unsigned)slot - 1, 0);
	close_range((unsigned)slot + 1, ~0U, 0);
	log_set_request_id(NULL);
	run(w, slot);
	return false; /* not reached */
}
