/* testutil: small helpers shared by the unit tests.
 *
 * Header-only on purpose: the Makefile links every tests/unit/test_<name>.c alone
 * with the lib objects, so there is no place for a shared .c file. Everything is
 * static inline so a test that does not use a helper gets no unused warning. */
#ifndef TASKGATE_TESTUTIL_H
#define TASKGATE_TESTUTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* A fresh private directory under $TMPDIR (or /tmp); the caller frees the name. */
static inline char *tu_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/taskgate-unit.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		abort();
	}
	return strdup(tmpl);
}

static inline int tu_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf dir (never follows symlinks). */
static inline void tu_rmtree(const char *dir)
{
	if (dir)
		nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes data to path (created or truncated); 0 or -1. */
static inline int tu_write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* Reads a whole file into a NUL-terminated heap string (NULL if unreadable). */
static inline char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *data = malloc(cap);
	size_t got;
	while (data && (got = fread(data + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			cap *= 2;
			data = realloc(data, cap);
		}
	}
	fclose(f);
	if (!data)
		abort();
	data[n] = '\0';
	if (len)
		*len = n;
	return data;
}

/* Sets a file's access and modification time to now - age_s. */
static inline int tu_age_file(const char *path, int age_s)
{
	struct timeval tv[2];
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	return utimes(path, tv);
}

/* Number of entries of dir (not . and ..) whose name starts with prefix and ends
 * with suffix (either may be ""); -1 if dir cannot be opened. */
static inline int tu_count_entries(const char *dir, const char *prefix, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	size_t plen = strlen(prefix), slen = strlen(suffix);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (len < plen + slen || strncmp(e->d_name, prefix, plen) != 0 ||
		    strcmp(e->d_name + len - slen, suffix) != 0)
			continue;
		n++;
	}
	closedir(d);
	return n;
}

static inline bool tu_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

#endif
