/* taskfiles: the only code that touches a task's files folder
 * (files/<shard>/<task id>/): the files a backend uploaded for the task and those
 * taskgate took out of its answers (decoded data URIs, an output too large to keep
 * in the task document). The task's document names them by URL; they go when the
 * task goes.
 *
 * A file is written under a temporary name and renamed into place only after its
 * data is on disk (fsync of the file, then of the folder), so a reader never sees
 * half a file and an acknowledged upload survives a power cut. */
#ifndef TASKGATE_TASKFILES_H
#define TASKGATE_TASKFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TASKFILE_NAME_MAX 128

/* A name a task file may have: 1 to 128 letters, digits, '.', '_' and '-', not
 * starting with '.' (temporary files start with one). */
bool taskfile_name_valid(const char *name);

/* A file being written. */
struct taskfile_writer {
	int fd; /* -1 when closed */
	uint64_t bytes;
	char dir[4096];
	char tmp[4096];
	char final[4096];
};

/* Starts name in the task's folder (made if missing). 0, or -1 (logged). */
int taskfile_create(const char *task_id, const char *name, struct taskfile_writer *w);
/* Appends n bytes. 0, or -1 (the writer is then aborted). */
int taskfile_write(struct taskfile_writer *w, const void *data, size_t n);
/* Makes the file durable and gives it its name (replacing a file of that name).
 * 0, or -1 (nothing placed). The writer is closed either way. */
int taskfile_commit(struct taskfile_writer *w);
/* Drops a file being written; harmless on a closed writer. */
void taskfile_abort(struct taskfile_writer *w);

/* What a reader is told of a file. */
struct taskfile_info {
	uint64_t size;
	int64_t mtime_ns;
	uint64_t ino;
};
/* Opens a task's file for reading: a regular file only (never through a symlink,
 * never blocking on a FIFO). Returns the fd, or -1 (errno ENOENT when there is no
 * such file). */
int taskfile_open(const char *task_id, const char *name, struct taskfile_info *info);
/* Reads up to n bytes at offset off; bytes read, 0 at the end, -1 on error. */
ssize_t taskfile_read_at(int fd, void *dst, size_t n, uint64_t off);
void taskfile_close(int fd);

/* Removes the task's folder and everything in it. 0 (also when there was none)
 * or -1. */
int taskfile_remove_all(const char *task_id);

#endif
