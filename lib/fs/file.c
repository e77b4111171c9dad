#include "fs/file.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

void file_stamp_of(const struct stat *st, struct file_stamp *out)
{
	memset(out, 0, sizeof *out);
	out->present = true;
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->size = (uint64_t)st->st_size;
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

void file_stamp_take(const char *path, struct file_stamp *out)
{
	struct stat st;
	if (stat(path, &st) == 0)
		file_stamp_of(&st, out);
	else
		memset(out, 0, sizeof *out);
}

bool file_stamp_same(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->present && b->present && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime_ns == b->mtime_ns;
}

bool file_cache_fresh(const struct file_cache *c, const char *path, struct file_stamp *now)
{
	file_stamp_take(path, now);
	if (!c->filled || strcmp(c->path, path) != 0)
		return false;
	return now->present ? file_stamp_same(&c->stamp, now) : !c->stamp.present;
}

void file_cache_set(struct file_cache *c, const char *path, const struct file_stamp *now)
{
	c->filled = true;
	snprintf(c->path, sizeof c->path, "%s", path);
	c->stamp = *now;
}

int file_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static void on_lock_alarm(int sig)
{
	(void)sig; /* only interrupts flock() */
}

/* Blocks in flock() until the lock is free or wait_ms passed. A blocking flock
 * wakes the moment the holder unlocks (polling would add its sleep to every
 * contended update); the interval timer bounds the wait by interrupting it. */
static int flock_timed(int fd, unsigned wait_ms)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK || wait_ms == 0)
		return -1;
	struct sigaction sa, old_sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_lock_alarm; /* no SA_RESTART: flock must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old_sa);
	struct itimerval it = {{0, 0}, {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000}};
	struct itimerval off = {{0, 0}, {0, 0}};
	int64_t deadline = mono_ms() + wait_ms;
	int rc = -1;
	setitimer(ITIMER_REAL, &it, NULL);
	for (int tries = 0; tries < 1000; tries++) {
		if (flock(fd, LOCK_EX) == 0) {
			rc = 0;
			break;
		}
		if (errno != EINTR || mono_ms() >= deadline) {
			if (errno == EINTR)
				errno = EWOULDBLOCK;
			break;
		}
	}
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old_sa, NULL);
	return rc;
}

int file_lock(const char *path, unsigned wait_ms)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_error("store: cannot open lock %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock_timed(fd, wait_ms) == 0)
		return fd;
	int e = errno;
	if (e != EWOULDBLOCK)
		log_error("store: flock %s: %s", path, strerror(e));
	close(fd);
	errno = e;
	return -1;
}

void file_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing the only descriptor releases the flock */
}

int file_detach_stdio(const char *log_path)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -1;
	int err = log_path ? open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640) : -1;
	int rc = 0;
	if (dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0)
		rc = -1;
	if (log_path && dup2(err >= 0 ? err : null, STDERR_FILENO) < 0)
		rc = -1;
	close(null);
	if (err >= 0)
		close(err);
	return rc;
}

int file_make_dirs(const char *dir, const char *root)
{
	if (mkdir(dir, 0750) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -1;
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", dir);
	char *slash = strrchr(parent, '/');
	if (!slash || (size_t)(slash - parent) <= strlen(root))
		return -1; /* never above the tree's root */
	*slash = '\0';
	if (file_make_dirs(parent, root) < 0)
		return -1;
	return mkdir(dir, 0750) == 0 || errno == EEXIST ? 0 : -1;
}
