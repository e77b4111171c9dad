/* taskindex_dir: what the index folders' files (taskindex.c, queueindex.c,
 * createdindex.c) share; nothing outside lib/fs includes it. */
#ifndef TASKGATE_TASKINDEX_DIR_H
#define TASKGATE_TASKINDEX_DIR_H

#include <stdbool.h>
#include <stddef.h>

/* <root>/<sub>[/<name>]. */
void tindex_path(char *out, size_t n, const char *sub, const char *name);
/* Calls fn for each name in dir but dot files while it returns 0; returns what
 * stopped it (0 at the end, or when dir cannot be opened). */
int tindex_each_name(const char *dir, int (*fn)(const char *name, void *arg), void *arg);
/* Whether dir has no name but dot files (a missing dir is empty); reads one small
 * buffer of names, however large the folder. */
bool tindex_dir_empty(const char *dir);
/* Removes dir when it holds nothing but its entries' empty file: unlinks that
 * file, then rmdir (which fails harmlessly when an entry arrived meanwhile; the
 * next entry makes the file again). */
void tindex_prune_dir(const char *dir);

#endif
