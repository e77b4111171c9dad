/* store: the state tree's JSON objects, by kind and id (lib/fs, of which this is
 * the main door, is the one place that touches the tree: see lib/fs/README).
 *
 * Objects are JSON files: <root>/<kind>/<id>.json, or <root>/<kind>/<ab>/<id>.json
 * for sharded kinds (ab = first two hex digits of a hash of the id), and singletons
 * at <root>/<id>.json (kind STORE_ROOT).
 *
 * Guarantees, kept on a local disk and on NFSv4/GlusterFS alike:
 * - writers never rewrite a file in place: temp file in the same directory, write,
 *   fsync, close, rename (or link() to create without clobbering), fsync directory;
 *   a crash at any instant leaves the old or the new document, both parseable;
 * - updates hold an exclusive flock on a stable stripe file locks/<kind>.<n>, never
 *   on the data file (rename replaces that inode); the wait is bounded (STORE_BUSY);
 * - readers take no lock;
 * - a document that does not parse is moved to corrupt/ and reported, never fatal;
 * - ids are validated by store_id_valid() before they become paths.
 * A process never holds two object locks at once (flock would deadlock on itself
 * when two ids share a stripe). The journal's host lock is never taken under an
 * object's lock (lib/fs/journal.h): the store claims a slot before it locks and
 * commits after it unlocks. A periodic job's run lock (lib/jobs/cronjob.h) is the
 * one lock held around others: nothing takes a run lock while holding any other. */
#ifndef TASKGATE_STORE_H
#define TASKGATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "base/json.h"
#include "fs/file.h"

#define STORE_ROOT "."
#define STORE_ID_MAX 64

enum store_rc {
	STORE_OK = 0,
	STORE_NOENT,	 /* no such object */
	STORE_EXISTS,	 /* create found the id taken */
	STORE_INVALID,	 /* the id failed validation */
	STORE_CORRUPT,	 /* the file did not parse; it has been quarantined */
	STORE_BUSY,	 /* the lock was not obtained within the wait bound */
	STORE_IO,	 /* the file system failed (logged) */
	STORE_UNCHANGED, /* an edit decided there was nothing to write */
	STORE_EDIT_BASE = 100 /* edits return STORE_EDIT_BASE + n to abort with reason n */
};

const char *store_strerror(int rc);

/* Sets the root and creates the tree's folders if missing. 0 or -1 (logged). */
int store_init(const char *root);
const char *store_root(void);
/* Milliseconds a writer waits for a lock before STORE_BUSY (default 5000). */
void store_set_lock_wait(unsigned ms);

/* 1..64 chars of [A-Za-z0-9_-], first one alphanumeric. */
bool store_id_valid(const char *id);
/* The shard (0..255) of a sharded object, which a task's other folders (its files)
 * share: stable across hosts and builds. */
unsigned store_shard(const char *id);

/* Parses the object into *out (caller frees with yajl_tree_free). */
int store_load(const char *kind, const char *id, yajl_val *out);
/* The document's text, unparsed (for readers that stream it); the caller checks
 * it and calls store_quarantine() when it does not parse. */
int store_load_text(const char *kind, const char *id, struct buf *out);
bool store_exists(const char *kind, const char *id);
/* The object's file stamp (readers that cache a parsed copy check it); not
 * present when the object is missing or the id invalid. */
void store_stamp(const char *kind, const char *id, struct file_stamp *out);

/* Writes a new object; STORE_EXISTS if the id is taken (nothing changed). */
int store_create(const char *kind, const char *id, const char *data, size_t len);

/* The edit sees the current document (NULL when absent and STORE_UPSERT was given)
 * and either generates the new one into out and returns STORE_OK, or returns any
 * other code, which store_update returns without writing. */
typedef int store_edit_fn(yajl_val old, struct jgen *out, void *arg);
#define STORE_UPSERT 1
/* Skip the fsyncs (still atomic for readers): only for state whose loss in a crash
 * is harmless, such as the load balancer's round-robin cursors (lb-state). */
#define STORE_NO_FSYNC 2
int store_update(const char *kind, const char *id, int flags, store_edit_fn *edit, void *arg);

/* Writes data as the object unconditionally (under the lock). */
int store_put(const char *kind, const char *id, const char *data, size_t len);

int store_remove(const char *kind, const char *id);

/* Calls fn for every id of the kind (order unspecified); stops early when fn
 * returns non-zero and returns that value. */
typedef int store_list_fn(const char *id, void *arg);
int store_list(const char *kind, store_list_fn *fn, void *arg);
/* Up to max ids of the kind (the first store_list() finds), in ascending order.
 * Returns how many; the caller frees *out (which may be NULL). */
size_t store_list_ids(const char *kind, size_t max, char (**out)[STORE_ID_MAX + 1]);

/* Moves the object's file to corrupt/ if it still fails to parse (logged). */
void store_quarantine(const char *kind, const char *id, const char *why);

/* Removes temp files older than max_age_s that crashed writers left in the kind's
 * folders; returns how many. */
int store_clean_temp(const char *kind, int max_age_s);

/* Low-level pieces shared with the indexes and run locks. */
int store_write_file(const char *dir, const char *name, const char *data, size_t len,
		     bool no_clobber);
/* Whether the tree takes a durable write now: a real one (run/health-probe),
 * because access(W_OK) says nothing about a full or read-only file system. */
bool store_writable(void);
/* Reads dir/name whole (a file store_write_file wrote) into out: STORE_OK,
 * STORE_NOENT, STORE_CORRUPT (larger than a document may be) or STORE_IO. */
int store_read_file(const char *dir, const char *name, struct buf *out);
/* Creates the entry dir/name (an index entry: a hard link to the folder's empty
 * STORE_ENTRY_PROTO) without a flush of its own. An entry is only ever created
 * just before a durable write of the object it points to, and the journal records
 * it so that write's commit covers it; without the journal, ext4 and XFS commit
 * metadata operations in order, so the object's directory fsync also commits the
 * entry, and NFS performs metadata operations synchronously. */
int store_touch_entry(const char *dir, const char *name);
/* The empty file every entry of an index folder is a hard link to (a dot file:
 * listings skip it). */
#define STORE_ENTRY_PROTO ".entry"
/* Opens (creating) and flocks root/<rel>; returns the fd or -1 (errno EWOULDBLOCK
 * when wait_ms passed). */
int store_lock_path(const char *rel, unsigned wait_ms);
void store_unlock(int fd);
/* Reads the folder dir (a path) into a new array of elements of size bytes, sorted
 * with cmp: for each name but dot files (temp files), add(name, elem, arg) fills the
 * next element and says whether to keep it; reading stops once max are kept. A
 * folder that cannot be opened has no names. Returns the array, which the caller
 * frees (it may be NULL), and its count in *n. */
void *store_dir_sorted(const char *dir, size_t size, size_t max,
		       bool (*add)(const char *name, void *elem, const void *arg), const void *arg,
		       int (*cmp)(const void *, const void *), size_t *n);

#endif
