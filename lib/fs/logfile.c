#include "fs/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/file.h"

static struct {
	char path[PATH_MAX];
	long long max_bytes;
	int keep;
	int fd;
	dev_t dev;
	ino_t ino;
} lf = {.fd = -1};

static void close_file(void)
{
	if (lf.fd >= 0)
		close(lf.fd);
	lf.fd = -1;
}

/* The descriptor of the file now at lf.path: the one held while the name still
 * points at it, else a new one (after a rotation by anyone, or a removal). */
static int current_fd(void)
{
	struct stat st;
	if (lf.fd >= 0 && lstat(lf.path, &st) == 0 && st.st_dev == lf.dev && st.st_ino == lf.ino)
		return lf.fd;
	close_file();
	/* O_NONBLOCK: a FIFO put in its place must not hang the process; it is then
	 * refused as not a regular file. */
	const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	int fd = open(lf.path, flags, 0640);
	if (fd < 0 && errno == ENOENT) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s", lf.path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0750);
			fd = open(lf.path, flags, 0640);
		}
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	lf.fd = fd;
	lf.dev = st.st_dev;
	lf.ino = st.st_ino;
	return fd;
}

/* <path>.1 ... <path>.keep move up one; <path> becomes <path>.1. Only one process
 * does it (the others skip: the lock is not waited for), and only while the file
 * is still over the limit (someone may have just rotated it). */
static void rotate(void)
{
	char lock[PATH_MAX + 8];
	snprintf(lock, sizeof lock, "%s.lock", lf.path);
	int lk = file_lock(lock, 0);
	if (lk < 0)
		return;
	struct stat st;
	if (lstat(lf.path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= lf.max_bytes) {
		char from[PATH_MAX + 16], to[PATH_MAX + 16];
		for (int k = lf.keep; k > 1; k--) {
			snprintf(from, sizeof from, "%s.%d", lf.path, k - 1);
			snprintf(to, sizeof to, "%s.%d", lf.path, k);
			rename(from, to); /* a missing generation is fine */
		}
		snprintf(to, sizeof to, "%s.1", lf.path);
		rename(lf.path, to);
	}
	file_unlock(lk);
}

static void write_line(const char *line, size_t len)
{
	/* A rotation that cannot take its lock logs why, which comes back here. */
	static bool busy;
	if (busy)
		return;
	busy = true;
	int fd = current_fd();
	if (fd >= 0) {
		ssize_t ignored = write(fd, line, len);
		(void)ignored;
		struct stat st;
		if (fstat(fd, &st) == 0 && st.st_size >= lf.max_bytes)
			rotate();
	}
	busy = false;
}

void logfile_use(const char *path, long long max_bytes, int keep)
{
	if (!path || !*path) {
		close_file();
		lf.path[0] = '\0';
		log_set_sink(NULL);
		return;
	}
	if (strcmp(path, lf.path) != 0) {
		close_file();
		snprintf(lf.path, sizeof lf.path, "%s", path);
	}
	lf.max_bytes = max_bytes;
	lf.keep = keep < 1 ? 1 : keep;
	log_set_sink(write_line);
}

void logfile_forget_inherited(void)
{
	close_file();
}
