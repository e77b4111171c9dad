#include "fs/reqcount.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "fs/store.h"

const int reqcount_codes[REQCOUNT_CODES - 1] = {200, 201, 202, 204, 206, 304, 400, 401,
						403, 404, 405, 409, 411, 413, 415, 416,
						422, 429, 500, 502, 503, 504, 507};

/* This process's map, and the table it is for. */
static struct reqcount *mapped;
static uint64_t mapped_table;

static void dir_path(char *out, size_t n)
{
	snprintf(out, n, "%s/run/requests", store_root());
}

static struct reqcount *map_file(uint64_t table)
{
	if (mapped && mapped_table == table)
		return mapped;
	char dir[PATH_MAX], path[PATH_MAX + 96];
	dir_path(dir, sizeof dir);
	mkdir(dir, 0750);
	snprintf(path, sizeof path, "%s/%.64s-%016" PRIx64 ".bin", dir, host_name(), table);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640);
	if (fd < 0)
		return NULL;
	struct stat st;
	/* Growing it is safe to race: every process sets the same size, and the new
	 * bytes read as zero. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    ((size_t)st.st_size < sizeof(struct reqcount) &&
	     ftruncate(fd, (off_t)sizeof(struct reqcount)) < 0)) {
		close(fd);
		return NULL;
	}
	void *m = mmap(NULL, sizeof(struct reqcount), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd); /* the map stays */
	if (m == MAP_FAILED)
		return NULL;
	if (mapped)
		munmap(mapped, sizeof *mapped);
	mapped = m;
	mapped_table = table;
	return mapped;
}

static int code_slot(int code)
{
	for (int i = 0; i < REQCOUNT_CODES - 1; i++)
		if (reqcount_codes[i] == code)
			return i;
	return REQCOUNT_CODES - 1;
}

void reqcount_add(uint64_t table, int route, int code, int64_t us)
{
	if (route < 0 || route >= REQCOUNT_ROUTES)
		return;
	struct reqcount *c = map_file(table);
	if (!c)
		return;
	struct reqcount_route *r = &c->route[route];
	if (us < 0)
		us = 0;
	/* Other processes add to the same words at the same time. */
	__atomic_fetch_add(&r->by_code[code_slot(code)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->sum_us, (uint64_t)us, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->b[hist_bucket_of(us / 1000)], 1, __ATOMIC_RELAXED);
}

static void add_file(int dfd, const char *name, struct reqcount *out)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return;
	struct stat st;
	struct reqcount one;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    pread(fd, &one, sizeof one, 0) == (ssize_t)sizeof one) {
		uint64_t *to = (uint64_t *)out, *from = (uint64_t *)&one;
		for (size_t i = 0; i < sizeof one / sizeof(uint64_t); i++)
			to[i] += from[i];
	}
	close(fd);
}

int reqcount_read(uint64_t table, struct reqcount *out)
{
	memset(out, 0, sizeof *out);
	char dir[PATH_MAX], suffix[32];
	dir_path(dir, sizeof dir);
	snprintf(suffix, sizeof suffix, "-%016" PRIx64 ".bin", table);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	size_t slen = strlen(suffix);
	struct dirent *e;
	/* One file per host that served this tree: a handful. */
	for (int n = 0; n < 4096 && (e = readdir(d)); n++) {
		size_t len = strlen(e->d_name);
		if (len > slen && strcmp(e->d_name + len - slen, suffix) == 0)
			add_file(dirfd(d), e->d_name, out);
	}
	closedir(d);
	return 0;
}
