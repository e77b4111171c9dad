#include "fs/file.h"

#include <string.h>

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
