/* file: the primitives under the store and the journal: directory fsync, timed
 * locks, and what a file is as stat() sees it (for the per-process caches). It
 * knows nothing of the tree's layout: paths come whole from its callers.
 *
 * A process that keeps a parsed copy of a file (config.json, the server registry,
 * the load balancer's state, rollup documents) checks one stamp before reusing it.
 * Writers replace files by rename, so a new version is a new inode; the size and
 * modification time catch a writer on a file system that reuses inode numbers. */
#ifndef TASKGATE_FILE_H
#define TASKGATE_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct file_stamp {
	bool present; /* the file existed when the stamp was taken */
	uint64_t dev, ino, size;
	int64_t mtime_ns;
};

/* The stamp of what stat() returned. */
void file_stamp_of(const struct stat *st, struct file_stamp *out);
/* Stamps path (present false when it cannot be stat()ed). */
void file_stamp_take(const char *path, struct file_stamp *out);
/* Whether both stamps describe the same version of a file that exists. */
bool file_stamp_same(const struct file_stamp *a, const struct file_stamp *b);

/* What a per-process cache remembers of the file its copy came from. */
struct file_cache {
	bool filled; /* a copy was taken */
	char path[4096];
	struct file_stamp stamp;
};
/* Stamps path into *now; true when c's copy still stands for it: the same path,
 * and the same version of the file, or the file absent both times. When false
 * the caller reloads its copy and then records now with file_cache_set(). */
bool file_cache_fresh(const struct file_cache *c, const char *path, struct file_stamp *now);
void file_cache_set(struct file_cache *c, const char *path, const struct file_stamp *now);

/* mkdir dir (0750) and whatever of its parents below root is missing: an index's
 * priority, bucket, hour and minute folders come and go with their entries. 0 or
 * -1. */
int file_make_dirs(const char *dir, const char *root);

/* fsync() of a directory (makes the names created or removed in it durable). */
int file_fsync_dir(const char *dir);
/* Opens (creating) path and takes an exclusive flock on it, waiting at most
 * wait_ms; returns the fd, or -1 (errno EWOULDBLOCK when the wait ran out). A
 * blocking flock wakes the moment the holder unlocks; a timer bounds the wait. */
int file_lock(const char *path, unsigned wait_ms);
/* Releases a lock file_lock() took. */
void file_unlock(int fd);

/* For a process that leaves the web server: standard input and output become
 * /dev/null, and standard error is appended to log_path (made if missing; /dev/null
 * when it cannot be opened) unless log_path is NULL, which keeps standard error as
 * it is (a log file the server gave, not a pipe it waits on). 0 or -1. */
int file_detach_stdio(const char *log_path);

#endif
