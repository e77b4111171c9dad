/* journal: group commit for the state tree's durable writes.
 *
 * Without it every acknowledged write costs two flushes (the file, then its
 * directory), about 0.6 ms on a virtual disk, and a request that writes four files
 * pays that four times. With it, a durable write puts the file in place without
 * fsync (still atomic for readers: temp file + rename) and appends a record of it
 * (path and full content, CRC-checked) to this process's journal slot; one
 * fdatasync of the slot, a preallocated file overwritten in place (no metadata to
 * commit), makes every write of the request durable at once, before the answer.
 * Databases call this a write-ahead log; here it is a redo log of whole files.
 *
 * Layout, under <state>/journal/ (one set per host, for trees shared over NFS):
 *   <host>.<n>.log   slot n: records appended from offset 0, flock'd by the one
 *                    process that owns it (up to JOURNAL_SLOTS processes at once)
 *   <host>.synced    {"bootId": ..., "syncedThrough": <ns>}: every write before
 *                    syncedThrough is on disk (a checkpoint ran syncfs()), so older
 *                    records are redundant and slots may be overwritten
 *   <host>.lock      serialises recovery, slot claims and checkpoints
 *
 * Recovery: the first process to open the journal after the machine restarted
 * (the recorded boot id differs from /proc's) re-applies, in time order, every
 * record newer than syncedThrough from every slot, then checkpoints. Within one
 * boot the page cache holds every write, so nothing needs replaying. A slot's
 * next owner appends after the records of the one before (which went away, maybe
 * killed), so those stay replayable until the slot wraps behind a checkpoint.
 *
 * Every program that writes durably uses the journal (the FastCGI program in
 * batch mode, committing before it answers; cron programs and tools commit each
 * write at once), so record order is write order. A write the journal cannot
 * take (no free slot, a record too large, the slot full) is fsync'd the classic
 * way and then checkpointed, which makes every older record redundant and so
 * keeps replay from undoing it.
 *
 * Locks: the host lock is only ever taken by journal_open(), journal_commit() and
 * the checkpoints, which run holding no other lock; journal_append() takes none.
 * So a process holds at most one lock at any time, as the store promises. Trees written by several hosts must set "journal": false in
 * config.json: one host's replay cannot see the others' later writes. */
#ifndef TASKGATE_JOURNAL_H
#define TASKGATE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_SLOTS 1024
#define JOURNAL_SLOT_BYTES (8u << 20)

enum journal_op { JOURNAL_PUT = 1, JOURNAL_TOUCH = 2, JOURNAL_REMOVE = 3 };

/* Where the tree is (store_init calls this); closes any open slot. */
void journal_init(const char *state_root);
/* Off: store writes fsync every file again (trees shared by several hosts). */
void journal_enable(bool on);
bool journal_enabled(void);
/* Batch: records become durable only at journal_commit() (the FastCGI program
 * commits before every answer and before talking to a backend). Otherwise each
 * journal_append() of a durable record commits before it returns. */
void journal_set_batch(bool on);

/* Claims this process's slot, replaying first if the machine restarted, unless
 * that was done already. It takes the host lock, so call it holding no other lock:
 * the store calls it before it locks an object. 0, or -1 (writes then take the
 * classic path). */
int journal_open(void);
/* Records that rel (relative to the state root) now holds data (PUT), exists as
 * an empty entry (TOUCH) or is gone (REMOVE). It never waits for a lock and never
 * flushes, so it may be called under an object's lock. 0 when recorded; -1 when
 * the journal cannot take it (off, no slot, a record too large, the slot full):
 * the caller makes the write durable the classic way and calls
 * journal_classic_write(). */
int journal_append(enum journal_op op, const char *rel, const char *data, size_t len);
/* Tells the journal a write in the tree was made durable the classic way: the next
 * journal_commit() checkpoints, so that no older record can undo it on a replay. */
void journal_classic_write(void);
/* Makes every record appended so far durable, then runs the checkpoint a classic
 * write or a full slot asked for. It may take the host lock: call it holding no
 * other lock (the store does after each write outside batch mode; the FastCGI
 * program before it answers and before it talks to a backend). 0, or -1 (nothing
 * acknowledged). */
int journal_commit(void);
/* Whether commits are left to the caller (journal_set_batch). */
bool journal_batch(void);
/* syncfs() the tree, then advance syncedThrough: every older record is redundant. */
int journal_checkpoint(void);
/* A checkpoint when the last one is older than max_age_ms (the sweep's pace:
 * syncfs flushes the whole file system, which on a shared host is not only ours). */
int journal_checkpoint_every(int64_t max_age_ms);
/* Releases this process's slot (commits first). */
void journal_close(void);
/* In a child just forked: lets go of the slot inherited from the parent without
 * writing to it (the parent keeps it, and its flock, which the two share); the
 * child's first write claims a slot of its own. */
void journal_forget_inherited(void);

/* For tests: slot size (records larger than half of it take the classic path). */
void journal_set_slot_bytes(size_t bytes);
/* Replays after a restart; returns the number of records applied, -1 on error.
 * Called by the first append; exposed so tools and tests can run it explicitly. */
int journal_recover(void);

#endif
