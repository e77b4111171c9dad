#include "fs/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "fs/file.h"
#include "base/util.h"

#define RECORD_MAGIC 0x314a4754u /* "TGJ1" little-endian */
#define LOCK_WAIT_MS 10000
/* No slot file of ours is larger (JOURNAL_SLOT_BYTES is 8 MiB). */
#define SLOT_FILE_MAX ((size_t)64 << 20)

/* On-disk record header; the payload (path, NUL, content) follows. crc covers
 * everything after the crc field, payload included. */
struct record_head {
	uint32_t magic;
	uint32_t crc;
	uint32_t len; /* payload bytes */
	uint32_t op;
	int64_t ts_ns; /* CLOCK_REALTIME when written: replay order */
	uint64_t reserved;
};

/* A slot's run-end hint (<host>.<n>.end, beside the slot): where its last record
 * starts and ends. Rewritten, unsynced, before every append, so a new owner finds
 * where to append from two small reads instead of walking the whole run. Never
 * trusted: see hint_run_end(). */
#define HINT_MAGIC 0x48454754u /* "TGEH" little-endian */
struct slot_hint {
	uint32_t magic;
	uint32_t reserved;
	uint64_t last; /* offset of the last record */
	uint64_t end;  /* offset just past it: the next record's */
	int64_t ts_ns; /* the last record's */
};

static struct {
	char root[PATH_MAX];
	bool disabled;
	bool batch;
	bool failed;	/* could not open: every write takes the classic path */
	int fd;		/* our slot, -1 when none */
	int hint_fd;	/* its run-end hint, -1 when none */
	size_t pos;	/* next record's offset in the slot */
	bool dirty;	/* records appended since the last commit */
	bool checkpoint_due; /* a classic write or a full slot waits for a checkpoint */
	bool wrap_due;	/* the slot is full: start again from 0 after that checkpoint */
	bool checkpointed_while_off; /* "journal": false, and one checkpoint ran since */
	size_t slot_bytes;
} J = {.fd = -1, .hint_fd = -1, .slot_bytes = JOURNAL_SLOT_BYTES};

void journal_init(const char *state_root)
{
	journal_close();
	snprintf(J.root, sizeof J.root, "%s", state_root);
	J.failed = false;
	static bool registered;
	if (!registered)
		registered = atexit(journal_close) == 0; /* index entries ride on a commit */
	/* Before this program reads or writes anything: after a restart, what the
	 * journal holds is newer than what the files hold. Even with the journal
	 * switched off, since records from before the switch may wait for replay. */
	if (journal_recover() < 0)
		log_error("journal: recovery under %s/journal failed", J.root);
}

void journal_enable(bool on)
{
	if (!on)
		journal_close();
	J.disabled = !on;
}

bool journal_enabled(void)
{
	return !J.disabled;
}

void journal_set_batch(bool on)
{
	J.batch = on;
}

void journal_set_slot_bytes(size_t bytes)
{
	journal_close();
	J.slot_bytes = bytes;
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void journal_path(char *out, size_t n, const char *suffix)
{
	snprintf(out, n, "%s/journal/%s.%s", J.root, host_name(), suffix);
}

/* The host lock serialises recovery, slot claims and checkpoints. */
static int lock_host(void)
{
	char path[PATH_MAX];
	journal_path(path, sizeof path, "lock");
	return file_lock(path, LOCK_WAIT_MS);
}

/* This boot's id, read once: it cannot change while the process lives. */
static bool read_boot_id(char out[64])
{
	static char boot[64];
	if (!boot[0]) {
		int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return false;
		ssize_t n = read(fd, boot, sizeof boot - 1);
		close(fd);
		if (n <= 0)
			return false;
		boot[n] = '\0';
		boot[strcspn(boot, "\n")] = '\0';
	}
	memcpy(out, boot, sizeof boot);
	return out[0] != '\0';
}

/* The synced file: boot id and syncedThrough. false when missing or unreadable. */
static bool read_synced(char boot[64], int64_t *through)
{
	char path[PATH_MAX];
	journal_path(path, sizeof path, "synced");
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char text[512];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	yajl_val doc = json_parse(text, n, NULL, NULL);
	bool ok = doc && YAJL_IS_OBJECT(doc);
	if (ok) {
		snprintf(boot, 64, "%s", json_str_or(doc, "bootId", ""));
		*through = json_int_or(doc, "syncedThrough", 0);
	}
	if (doc)
		yajl_tree_free(doc);
	return ok;
}

/* Writes the synced file the classic way: it is what makes records redundant,
 * so it must be on disk itself before anyone overwrites them. */
static int write_synced(const char *boot, int64_t through)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], dir[PATH_MAX], text[256];
	journal_path(path, sizeof path, "synced");
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	snprintf(dir, sizeof dir, "%s/journal", J.root);
	int n = snprintf(text, sizeof text, "{\"bootId\":\"%s\",\"syncedThrough\":%lld}\n", boot,
			 (long long)through);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return file_fsync_dir(dir);
}

static int sync_tree(void)
{
	int fd = open(J.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = syncfs(fd);
	close(fd);
	return rc;
}

static int recover_locked(void);

/* Caller holds the host lock. */
static int checkpoint_locked(void)
{
	/* Records of an earlier boot that were never replayed must not be declared
	 * redundant by a checkpoint of this one. */
	if (recover_locked() < 0)
		return -1;
	int64_t t0 = realtime_ns(); /* every write finished before t0 is flushed below */
	if (sync_tree() < 0)
		return -1;
	char boot[64], recorded[64];
	int64_t through = 0;
	if (!read_boot_id(boot))
		return -1;
	if (read_synced(recorded, &through) && strcmp(recorded, boot) == 0 && through >= t0)
		return 0; /* someone checkpointed later than us meanwhile */
	return write_synced(boot, t0);
}

int journal_checkpoint(void)
{
	if (!J.root[0])
		return 0;
	int lk = lock_host();
	if (lk < 0)
		return -1;
	int rc = checkpoint_locked();
	file_unlock(lk);
	return rc;
}

int journal_checkpoint_every(int64_t max_age_ms)
{
	char boot[64], current[64];
	int64_t through = 0;
	if (!J.root[0])
		return 0;
	if (read_synced(boot, &through) && read_boot_id(current) && strcmp(boot, current) == 0 &&
	    realtime_ns() - through < max_age_ms * 1000000)
		return 0;
	return journal_checkpoint();
}

/* ---- reading slots ---- */

static bool head_valid(const struct record_head *h, size_t at, size_t size)
{
	return h->magic == RECORD_MAGIC && h->len > 0 && h->len <= size &&
	       at + sizeof *h + h->len <= size;
}

static uint32_t record_crc(const struct record_head *h, const char *payload)
{
	uLong c = crc32(0L, Z_NULL, 0);
	c = crc32(c, (const Bytef *)&h->len, (uInt)(sizeof *h - offsetof(struct record_head, len)));
	c = crc32(c, (const Bytef *)payload, h->len);
	return (uint32_t)c;
}

struct pending {
	int64_t ts;
	uint32_t op;
	size_t order; /* tie-break: slot and position */
	char *path;   /* owns path and content: "<path>\0<content>" */
	size_t content_len;
};

static int pending_cmp(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* A path we wrote ourselves: relative, no "..", plain characters. */
static bool rel_path_ok(const char *rel)
{
	if (!*rel || *rel == '/' || strstr(rel, ".."))
		return false;
	for (const char *p = rel; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '/'))
			return false;
	return true;
}

/* The whole slot file (at most SLOT_FILE_MAX: anything larger is not ours). */
static void slot_text(int fd, struct buf *out)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (size_t)st.st_size > SLOT_FILE_MAX)
		return;
	buf_grow(out, (size_t)st.st_size + 1);
	ssize_t got = pread(fd, out->data, (size_t)st.st_size, 0);
	out->len = got > 0 ? (size_t)got : 0;
}

/* The record at `at`, if whole and intact (header, bounds, CRC). */
static bool record_at(const struct buf *text, size_t at, struct record_head *h)
{
	if (at + sizeof *h > text->len)
		return false;
	memcpy(h, text->data + at, sizeof *h);
	return head_valid(h, at, text->len) &&
	       record_crc(h, text->data + at + sizeof *h) == h->crc;
}

/* Collects the valid records newer than `after` from one slot file: from offset
 * 0 up to the first record that is not intact (a torn end, or the middle of an
 * older record the slot has wrapped over). */
static void collect_slot(const char *path, int64_t after, struct pending **v, size_t *n,
			 size_t *cap, size_t slot_no)
{
	struct buf text = BUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	slot_text(fd, &text);
	close(fd);
	struct record_head h;
	/* The bound: each record is at least a header long. */
	for (size_t at = 0; record_at(&text, at, &h); at += sizeof h + h.len) {
		const char *payload = text.data + at + sizeof h;
		const char *nul = memchr(payload, '\0', h.len);
		if (h.ts_ns <= after || !nul || !rel_path_ok(payload))
			continue;
		*v = array_grow(*v, *n, cap, sizeof **v, 64);
		struct pending *p = &(*v)[(*n)++];
		p->ts = h.ts_ns;
		p->op = h.op;
		p->order = slot_no * SLOT_FILE_MAX + at;
		p->path = malloc(h.len);
		if (!p->path)
			abort();
		memcpy(p->path, payload, h.len);
		p->content_len = h.len - (size_t)(nul - payload) - 1;
	}
	buf_free(&text);
}

static int apply_record(const struct pending *p)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32], dir[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", J.root, p->path);
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	if (p->op == JOURNAL_REMOVE)
		return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
	file_make_dirs(dir, J.root); /* a shard or index folder the crash lost */
	if (p->op == JOURNAL_TOUCH) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
		return fd < 0 ? -1 : close(fd);
	}
	snprintf(tmp, sizeof tmp, "%s.replay.%d.tmp", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	const char *content = p->path + strlen(p->path) + 1;
	bool ok = write(fd, content, p->content_len) == (ssize_t)p->content_len;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Slot files of this host: "<host>.<n><ext>" (".log", or ".end" for a hint);
 * returns n or -1. */
static long slot_number(const char *name, const char *ext)
{
	const char *host = host_name();
	size_t hl = strlen(host);
	if (strncmp(name, host, hl) != 0 || name[hl] != '.')
		return -1;
	char *end;
	long n = strtol(name + hl + 1, &end, 10);
	if (end == name + hl + 1 || strcmp(end, ext) != 0 || n < 0 || n >= JOURNAL_SLOTS)
		return -1;
	return n;
}

/* Caller holds the host lock. */
static int replay_locked(int64_t after, const char *boot)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	snprintf(dir, sizeof dir, "%s/journal", J.root);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct pending *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		long slot = slot_number(de->d_name, ".log");
		if (slot_number(de->d_name, ".end") >= 0) {
			/* Unsynced, so after a power cut a hint may name a record that did
			 * not survive, or skip one torn in the middle: next owners walk. */
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			unlink(path);
			continue;
		}
		if (slot < 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		collect_slot(path, after, &v, &n, &cap, (size_t)slot);
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof *v, pending_cmp);
	int applied = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (apply_record(&v[i]) == 0)
			applied++;
		else
			failed++;
		free(v[i].path);
	}
	free(v);
	if (failed)
		log_error("journal: %d of %zu records could not be re-applied", failed, n);
	if (n)
		log_info("journal: re-applied %d records written before the restart", applied);
	int64_t t0 = realtime_ns();
	if (sync_tree() < 0 || write_synced(boot, t0) < 0)
		return -1;
	return failed ? -1 : applied;
}

/* Caller holds the host lock. */
static int recover_locked(void)
{
	char boot[64], recorded[64];
	int64_t through = 0;
	if (!read_boot_id(boot))
		return -1;
	if (!read_synced(recorded, &through))
		/* A new tree (or a journal removed by hand): nothing older to replay. The
		 * file goes down before any record can exist. */
		return write_synced(boot, realtime_ns()) < 0 ? -1 : 0;
	if (strcmp(recorded, boot) == 0)
		return 0;
	return replay_locked(through, boot);
}

int journal_recover(void)
{
	if (!J.root[0])
		return 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/journal", J.root);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -1;
	int lk = lock_host();
	if (lk < 0)
		return -1;
	int rc = recover_locked();
	file_unlock(lk);
	return rc;
}

/* ---- owning a slot ---- */

/* The intact record at `at` of a slot file of `size` bytes, read with two small
 * reads. */
static bool record_in_file(int fd, size_t size, size_t at, struct record_head *h)
{
	if (pread(fd, h, sizeof *h, (off_t)at) != (ssize_t)sizeof *h || !head_valid(h, at, size))
		return false;
	struct buf text = BUF_INIT;
	buf_grow(&text, sizeof *h + h->len);
	bool ok = pread(fd, text.data, sizeof *h + h->len, (off_t)at) ==
		  (ssize_t)(sizeof *h + h->len);
	text.len = ok ? sizeof *h + h->len : 0;
	ok = ok && record_at(&text, 0, h);
	buf_free(&text);
	return ok;
}

static size_t file_size(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
}

/* Where the slot's current run ends (its records from offset 0, in write order).
 * A new owner appends there: the records of an owner that went away stay, and
 * stay replayable, until the slot wraps behind a checkpoint. Read record by
 * record, so a slot nobody has written since it was zero-filled costs one read. */
static size_t slot_run_end(int fd)
{
	size_t size = file_size(fd);
	struct record_head h;
	int64_t last = INT64_MIN;
	size_t at = 0;
	/* Bounded: every record is at least a header long. */
	for (size_t i = 0; i <= size / sizeof h && record_in_file(fd, size, at, &h) &&
			   h.ts_ns >= last;
	     i++) {
		last = h.ts_ns;
		at += sizeof h + h.len;
	}
	return at;
}

/* The run end the hint names, or SIZE_MAX when it cannot be shown to be the one
 * slot_run_end() would find: the hint must name an intact record that ends where
 * the hint says, and no intact record of the run may follow it. Within one boot
 * the page cache holds every record whole, and the hint is written before its
 * record, so a hint that passes names the run's true last record: one written
 * before a record that never got there fails the first test, and a stale one
 * (records were appended after it) the second. After a power cut the hints are
 * not used at all: recovery removes them (replay_locked), so a run torn in the
 * middle is walked. */
static size_t hint_run_end(int fd, int hint_fd)
{
	struct slot_hint hint;
	struct record_head h;
	if (hint_fd < 0 || pread(hint_fd, &hint, sizeof hint, 0) != (ssize_t)sizeof hint ||
	    hint.magic != HINT_MAGIC || hint.last >= hint.end)
		return SIZE_MAX;
	size_t size = file_size(fd);
	if (!record_in_file(fd, size, (size_t)hint.last, &h) || h.ts_ns != hint.ts_ns ||
	    hint.last + sizeof h + h.len != hint.end)
		return SIZE_MAX;
	int64_t last_ts = h.ts_ns;
	if (record_in_file(fd, size, (size_t)hint.end, &h) && h.ts_ns >= last_ts)
		return SIZE_MAX; /* the run goes on past the hint */
	return (size_t)hint.end;
}

/* The hint for a record about to be appended at `at` (see struct slot_hint). */
static void hint_write(size_t at, size_t size, int64_t ts_ns)
{
	struct slot_hint hint = {.magic = HINT_MAGIC, .last = at, .end = at + size, .ts_ns = ts_ns};
	if (J.hint_fd >= 0 && pwrite(J.hint_fd, &hint, sizeof hint, 0) != (ssize_t)sizeof hint) {
		close(J.hint_fd); /* a next owner walks the run instead */
		J.hint_fd = -1;
	}
}

/* Zero-filled once, so later overwrites allocate nothing and fdatasync has no
 * metadata to commit. */
static int preallocate(int fd, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	if ((size_t)st.st_size >= J.slot_bytes)
		return 0;
	static const char zeros[65536];
	for (size_t at = (size_t)st.st_size; at < J.slot_bytes;) {
		size_t chunk = J.slot_bytes - at < sizeof zeros ? J.slot_bytes - at : sizeof zeros;
		if (pwrite(fd, zeros, chunk, (off_t)at) != (ssize_t)chunk)
			return -1;
		at += chunk;
	}
	if (fsync(fd) < 0)
		return -1;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = '\0';
	return file_fsync_dir(dir);
}

/* Caller holds the host lock. */
static int claim_slot_locked(void)
{
	char path[PATH_MAX], suffix[32];
	for (int n = 0; n < JOURNAL_SLOTS; n++) {
		snprintf(suffix, sizeof suffix, "%d.log", n);
		journal_path(path, sizeof path, suffix);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			continue;
		}
		if (preallocate(fd, path) < 0) {
			close(fd);
			return -1;
		}
		snprintf(suffix, sizeof suffix, "%d.end", n);
		journal_path(path, sizeof path, suffix);
		J.fd = fd;
		J.hint_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		J.pos = hint_run_end(fd, J.hint_fd);
		if (J.pos == SIZE_MAX)
			J.pos = slot_run_end(fd);
		return 0;
	}
	log_error("journal: all %d slots are taken", JOURNAL_SLOTS);
	return -1;
}

int journal_open(void)
{
	if (J.fd >= 0)
		return 0;
	if (J.failed || J.disabled || !J.root[0])
		return -1;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/journal", J.root);
	int lk = -1;
	if ((mkdir(dir, 0750) == 0 || errno == EEXIST) && (lk = lock_host()) >= 0 &&
	    recover_locked() >= 0 && claim_slot_locked() == 0) {
		file_unlock(lk);
		return 0;
	}
	if (lk >= 0)
		file_unlock(lk);
	log_error("journal: cannot open a slot under %s (%s); writes fsync each file", dir,
		  strerror(errno));
	J.failed = true;
	return -1;
}

static int flush_slot(void)
{
	if (J.fd < 0 || !J.dirty)
		return 0;
	if (fdatasync(J.fd) < 0) {
		log_error("journal: fdatasync: %s", strerror(errno));
		return -1;
	}
	J.dirty = false;
	return 0;
}

int journal_commit(void)
{
	if (flush_slot() < 0)
		return -1;
	if (!J.checkpoint_due && !J.wrap_due)
		return 0;
	/* Runs here, never inside journal_append: the caller of an append holds an
	 * object's lock, and the checkpoint takes the host lock. The writes that asked
	 * for it are not acknowledged before this returns, so until then a replay
	 * undoing them would only undo what nobody was told. */
	if (journal_checkpoint() < 0)
		return -1;
	J.checkpoint_due = false;
	J.checkpointed_while_off = J.disabled;
	if (J.wrap_due) {
		J.pos = 0; /* every record in the slot is redundant now */
		J.wrap_due = false;
	}
	return 0;
}

void journal_classic_write(void)
{
	/* With the journal off no new records appear: one checkpoint after the first
	 * classic write makes whatever an earlier run left redundant for good. */
	if (!(J.disabled && J.checkpointed_while_off))
		J.checkpoint_due = true;
}

int journal_append(enum journal_op op, const char *rel, const char *data, size_t len)
{
	size_t plen = strlen(rel) + 1 + len;
	struct record_head h = {.magic = RECORD_MAGIC, .op = (uint32_t)op};
	if (J.disabled || J.fd < 0 || J.wrap_due || sizeof h + plen > J.slot_bytes / 2)
		return -1;
	if (J.pos + sizeof h + plen > J.slot_bytes) {
		J.wrap_due = true; /* journal_commit() checkpoints, then starts over */
		return -1;
	}
	struct buf rec = BUF_INIT;
	h.len = (uint32_t)plen;
	h.ts_ns = realtime_ns();
	buf_add(&rec, (const char *)&h, sizeof h);
	buf_add(&rec, rel, strlen(rel) + 1);
	buf_add(&rec, data ? data : "", len);
	struct record_head *hp = (struct record_head *)(void *)rec.data;
	hp->crc = record_crc(hp, rec.data + sizeof h);
	hint_write(J.pos, rec.len, h.ts_ns); /* before the record: see hint_run_end() */
	ssize_t n = pwrite(J.fd, rec.data, rec.len, (off_t)J.pos);
	bool ok = n == (ssize_t)rec.len;
	buf_free(&rec);
	if (!ok) {
		log_error("journal: append: %s", n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	J.pos += sizeof h + plen;
	J.dirty = true;
	return 0;
}

bool journal_batch(void)
{
	return J.batch;
}

void journal_close(void)
{
	if (J.fd < 0)
		return;
	journal_commit();
	close(J.fd); /* releases the slot's flock */
	J.fd = -1;
	if (J.hint_fd >= 0)
		close(J.hint_fd);
	J.hint_fd = -1;
	J.pos = 0;
	J.dirty = false;
}

void journal_forget_inherited(void)
{
	if (J.fd >= 0)
		close(J.fd); /* the parent's descriptor keeps the flock */
	J.fd = -1;
	if (J.hint_fd >= 0)
		close(J.hint_fd);
	J.hint_fd = -1;
	J.pos = 0;
	J.dirty = false;
	J.checkpoint_due = false;
	J.wrap_due = false;
}
