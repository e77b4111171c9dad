#include "fs/taskfiles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/file.h"
#include "fs/store.h"

/* A task's folder holds a handful of files; this bounds a removal's walk. */
#define FOLDER_MAX_ENTRIES 10000

bool taskfile_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > TASKFILE_NAME_MAX || name[0] == '.')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       n;
}

static int folder_of(const char *task_id, char *out, size_t n)
{
	if (!store_id_valid(task_id))
		return -1;
	int len = snprintf(out, n, "%s/files/%02x/%s", store_root(), store_shard(task_id),
			   task_id);
	return len > 0 && (size_t)len < n ? 0 : -1;
}

int taskfile_create(const char *task_id, const char *name, struct taskfile_writer *w)
{
	memset(w, 0, sizeof *w);
	w->fd = -1;
	if (!taskfile_name_valid(name) || folder_of(task_id, w->dir, sizeof w->dir) < 0)
		return -1;
	char rnd[9];
	random_hex(rnd, 4);
	snprintf(w->final, sizeof w->final, "%s/%s", w->dir, name);
	/* Host and pid in the name: several web nodes may share the tree. */
	snprintf(w->tmp, sizeof w->tmp, "%s/.%s.%s.%d.%s.tmp", w->dir, name, host_name(),
		 (int)getpid(), rnd);
	if (file_make_dirs(w->dir, store_root()) < 0) {
		log_error("taskfiles: cannot make %s: %s", w->dir, strerror(errno));
		return -1;
	}
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (w->fd < 0) {
		log_error("taskfiles: cannot create %s: %s", w->tmp, strerror(errno));
		return -1;
	}
	return 0;
}

int taskfile_write(struct taskfile_writer *w, const void *data, size_t n)
{
	const char *p = data;
	while (w->fd >= 0 && n) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			log_error("taskfiles: writing %s: %s", w->tmp, strerror(errno));
			taskfile_abort(w);
			return -1;
		}
		p += k;
		n -= (size_t)k;
		w->bytes += (uint64_t)k;
	}
	return w->fd >= 0 ? 0 : -1;
}

int taskfile_commit(struct taskfile_writer *w)
{
	if (w->fd < 0)
		return -1;
	if (fsync(w->fd) < 0 || close(w->fd) < 0) {
		log_error("taskfiles: flushing %s: %s", w->tmp, strerror(errno));
		w->fd = -1;
		unlink(w->tmp);
		return -1;
	}
	w->fd = -1;
	if (rename(w->tmp, w->final) < 0 || file_fsync_dir(w->dir) < 0) {
		log_error("taskfiles: placing %s: %s", w->final, strerror(errno));
		unlink(w->tmp);
		return -1;
	}
	return 0;
}

void taskfile_abort(struct taskfile_writer *w)
{
	if (w->fd < 0)
		return;
	close(w->fd);
	w->fd = -1;
	unlink(w->tmp);
}

int taskfile_open(const char *task_id, const char *name, struct taskfile_info *info)
{
	char dir[PATH_MAX], path[PATH_MAX];
	if (!taskfile_name_valid(name) || folder_of(task_id, dir, sizeof dir) < 0) {
		errno = ENOENT;
		return -1;
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	info->size = (uint64_t)st.st_size;
	info->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	info->ino = (uint64_t)st.st_ino;
	return fd;
}

ssize_t taskfile_read_at(int fd, void *dst, size_t n, uint64_t off)
{
	for (;;) {
		ssize_t k = pread(fd, dst, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		return k;
	}
}

void taskfile_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

int taskfile_remove_all(const char *task_id)
{
	char dir[PATH_MAX];
	if (folder_of(task_id, dir, sizeof dir) < 0)
		return -1;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	int rc = 0;
	struct dirent *e;
	for (int seen = 0; seen < FOLDER_MAX_ENTRIES && (e = readdir(d)); seen++) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}
