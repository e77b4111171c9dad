#include "fs/store.h"
#include "fs/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/journal.h"
#include "base/log.h"
#include "base/util.h"

#define LOCK_STRIPES 64
/* Our own documents are small; anything bigger is damage, not data. */
#define STORE_MAX_DOC (4u << 20)

struct kind_info {
	const char *name;
	bool sharded;
};

/* Every kind the tree holds. Sharded kinds can grow to millions of files. */
static const struct kind_info kinds[] = {
	{STORE_ROOT, false},
	{"servers", false},
	{"tasks", true},
	{"idempotency", true},
};

static char root_dir[PATH_MAX] = "state";
static unsigned lock_wait_ms = 5000;

static const char *const tree_dirs[] = {
	"servers", "tasks", "idempotency", "queue", "active", "created", "finished", "sending",
	"cancelling",
	"locks", "run", "corrupt",
	"journal", "log", "files",
	"stats", "stats/events", "stats/hourly",
};

const char *store_strerror(int rc)
{
	switch (rc) {
	case STORE_OK:
		return "ok";
	case STORE_NOENT:
		return "not found";
	case STORE_EXISTS:
		return "already exists";
	case STORE_INVALID:
		return "invalid id";
	case STORE_CORRUPT:
		return "corrupt document (quarantined)";
	case STORE_BUSY:
		return "lock wait timed out";
	case STORE_IO:
		return "file system error";
	case STORE_UNCHANGED:
		return "unchanged";
	default:
		return "aborted by edit";
	}
}

static const struct kind_info *kind_lookup(const char *kind)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].name, kind) == 0)
			return &kinds[i];
	/* A kind is a constant in our code, never request data: a miss is a bug. */
	log_error("store: unknown kind '%s'", kind);
	abort();
}

int store_init(const char *root)
{
	/* Through a copy: root may be root_dir itself (store_init(store_root())). */
	char copy[PATH_MAX];
	if (snprintf(copy, sizeof copy, "%s", root) >= (int)sizeof copy)
		return -1;
	memcpy(root_dir, copy, sizeof root_dir);
	if (mkdir(root_dir, 0750) < 0 && errno != EEXIST) {
		log_error("store: cannot create %s: %s", root_dir, strerror(errno));
		return -1;
	}
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof tree_dirs / sizeof tree_dirs[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", root_dir, tree_dirs[i]);
		if (mkdir(path, 0750) < 0 && errno != EEXIST) {
			log_error("store: cannot create %s: %s", path, strerror(errno));
			return -1;
		}
	}
	journal_init(root_dir);
	return 0;
}

const char *store_root(void)
{
	return root_dir;
}

void store_set_lock_wait(unsigned ms)
{
	lock_wait_ms = ms;
}

bool store_id_valid(const char *id)
{
	if (!id)
		return false;
	size_t n = strlen(id);
	if (n == 0 || n > STORE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '-' && c != '_')))
			return false;
	}
	return true;
}

static uint32_t id_hash(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a: cheap, stable across hosts and builds */
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

unsigned store_shard(const char *id)
{
	return id_hash(id) & 0xff;
}

/* Directory holding the object; for sharded kinds creates the shard lazily. */
static void object_dir(const struct kind_info *k, const char *id, char *out, size_t n)
{
	if (k->sharded)
		snprintf(out, n, "%s/%s/%02x", root_dir, k->name, store_shard(id));
	else
		snprintf(out, n, "%s/%s", root_dir, k->name);
}

static void object_path(const struct kind_info *k, const char *id, char *out, size_t n)
{
	char dir[PATH_MAX];
	object_dir(k, id, dir, sizeof dir);
	snprintf(out, n, "%s/%s.json", dir, id);
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The path relative to the state root, or NULL for a file outside it. */
static const char *rel_to_root(const char *path)
{
	size_t n = strlen(root_dir);
	return strncmp(path, root_dir, n) == 0 && path[n] == '/' ? path + n + 1 : NULL;
}

/* Durability for a file already in place (or just removed): a journal record
 * (lib/journal.h) or, when the journal is off or cannot take it, the classic
 * fsync of the file (unless the writer already did, before its rename) and of its
 * directory. The one place that decides between the two. */
static int make_durable(const char *dir, const char *final, enum journal_op op,
			const char *data, size_t len, bool file_synced)
{
	const char *rel = rel_to_root(final);
	if (rel && !file_synced && journal_append(op, rel, data, len) == 0)
		return 0;
	if (op == JOURNAL_PUT && !file_synced) {
		int fd = open(final, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		int rc = fsync(fd);
		close(fd);
		if (rc < 0)
			return -1;
	}
	if (file_fsync_dir(dir) < 0)
		return -1;
	if (rel)
		journal_classic_write();
	return 0;
}

/* Creates final (no clobbering) from an unnamed file (O_TMPFILE) given its name
 * only when complete: readers never see it partly written, and, unlike a named
 * temp file, there is no temp entry to create and unlink. STORE_OK, STORE_EXISTS,
 * or STORE_IO when the file system or a missing /proc does not allow it (the
 * caller then takes the named temp file way). */
static int create_unnamed(const char *dir, const char *final, const char *data, size_t len,
			  bool fsync_file)
{
	int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT && mkdir(dir, 0750) == 0) /* first object of a shard */
		fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0)
		return STORE_IO;
	int rc = STORE_IO;
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	if (write_all(fd, data, len) == 0 && (!fsync_file || fsync(fd) == 0)) {
		if (linkat(AT_FDCWD, self, AT_FDCWD, final, AT_SYMLINK_FOLLOW) == 0)
			rc = STORE_OK;
		else if (errno == EEXIST)
			rc = STORE_EXISTS;
	}
	close(fd);
	return rc;
}

/* sync false skips durability (STORE_NO_FSYNC): still atomic against concurrent
 * readers (temp file + rename), but a crash may lose the update or, on some file
 * systems, leave an empty file that the next reader quarantines. With sync the
 * journal records the write; without a journal both file and directory are
 * fsync'd. */
static int write_file(const char *dir, const char *name, const char *data, size_t len,
		      bool no_clobber, bool sync)
{
	char tmp[PATH_MAX], final[PATH_MAX], rnd[9];
	random_hex(rnd, 4);
	/* Host and pid in the name: several web nodes may share the tree. */
	snprintf(tmp, sizeof tmp, "%s/.%s.%s.%d.%s.tmp", dir, name, host_name(), (int)getpid(),
		 rnd);
	snprintf(final, sizeof final, "%s/%s", dir, name);
	/* Journaled: the file goes down without fsync and make_durable records it;
	 * otherwise its data is flushed before the rename makes it visible. */
	bool fsync_file = sync && !(journal_enabled() && rel_to_root(final));

	if (no_clobber) {
		int rc = create_unnamed(dir, final, data, len, fsync_file);
		if (rc == STORE_EXISTS)
			return rc;
		if (rc == STORE_OK)
			goto placed;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT) {
		/* First object of a shard. */
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			goto fail_log;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	}
	if (fd < 0)
		goto fail_log;
	if (write_all(fd, data, len) < 0 || (fsync_file && fsync(fd) < 0)) {
		close(fd);
		goto fail_unlink;
	}
	if (close(fd) < 0)
		goto fail_unlink;

	if (no_clobber) {
		if (link(tmp, final) < 0) {
			int e = errno;
			unlink(tmp);
			if (e == EEXIST)
				return STORE_EXISTS;
			errno = e;
			goto fail_log;
		}
		unlink(tmp);
	} else if (rename(tmp, final) < 0) {
		goto fail_unlink;
	}
placed:
	if (sync && make_durable(dir, final, JOURNAL_PUT, data, len, fsync_file) < 0)
		goto fail_log;
	return STORE_OK;

fail_unlink:
	{
		int e = errno;
		unlink(tmp);
		errno = e;
	}
fail_log:
	log_error("store: writing %s/%s: %s", dir, name, strerror(errno));
	return STORE_IO;
}

/* After a write, with no lock held: outside batch mode the write is durable when
 * the store returns, and a checkpoint it asked for runs here, not under the lock. */
static int settle(int rc)
{
	if (rc == STORE_OK && !journal_batch() && journal_commit() < 0)
		return STORE_IO;
	return rc;
}

int store_write_file(const char *dir, const char *name, const char *data, size_t len,
		     bool no_clobber)
{
	journal_open();
	return settle(write_file(dir, name, data, len, no_clobber, true));
}

/* Index entries are names, not content: each is a hard link to its folder's one
 * empty file, STORE_ENTRY_PROTO, so adding one allocates no inode and removing
 * one frees none. That halves the inodes a task costs (shared hosts count them)
 * and the file system work of creating it: allocating an inode was the largest
 * single cost of a task's creation on ext4. A folder reaching the link limit
 * gets a fresh empty file; a file system without hard links gets plain files. */
static int make_dirs(const char *dir)
{
	return file_make_dirs(dir, root_dir);
}

static int link_entry(const char *dir, const char *path)
{
	char proto[PATH_MAX], fresh[PATH_MAX + 32];
	snprintf(proto, sizeof proto, "%s/" STORE_ENTRY_PROTO, dir);
	for (int tries = 0; tries < 4; tries++) {
		if (link(proto, path) == 0 || errno == EEXIST)
			return 0;
		if (errno != ENOENT && errno != EMLINK)
			return -1;
		if (errno == ENOENT && make_dirs(dir) < 0)
			return -1;
		/* A new empty file put in place by rename: links to the old one stay. */
		char rnd[9];
		random_hex(rnd, 4);
		snprintf(fresh, sizeof fresh, "%s.%d.%s.tmp", proto, (int)getpid(), rnd);
		int fd = open(fresh, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
		close(fd);
		if (rename(fresh, proto) < 0) {
			unlink(fresh);
			return -1;
		}
	}
	return -1;
}

int store_touch_entry(const char *dir, const char *name)
{
	/* Under an object's lock (entries are made inside task edits) the slot is open
	 * already and this does nothing; it never claims one under a lock. */
	journal_open();
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (link_entry(dir, path) < 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0 && errno == ENOENT && make_dirs(dir) == 0)
			fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			log_error("store: creating entry %s: %s", path, strerror(errno));
			return STORE_IO;
		}
		close(fd);
	}
	/* A hint: recorded, but it rides on the next commit instead of forcing one. */
	const char *rel = rel_to_root(path);
	if (rel)
		journal_append(JOURNAL_TOUCH, rel, NULL, 0);
	return STORE_OK;
}

void *store_dir_sorted(const char *dir, size_t size, size_t max,
		       bool (*add)(const char *name, void *elem, const void *arg), const void *arg,
		       int (*cmp)(const void *, const void *), size_t *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char *v = NULL;
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && *n < max) {
		if (de->d_name[0] == '.')
			continue;
		v = array_grow(v, *n, &cap, size, 64);
		if (add(de->d_name, v + *n * size, arg))
			(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, size, cmp);
	return v;
}

int store_lock_path(const char *rel, unsigned wait_ms)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", root_dir, rel);
	return file_lock(path, wait_ms);
}

void store_unlock(int fd)
{
	file_unlock(fd);
}

static int lock_object(const struct kind_info *k, const char *id)
{
	/* The slot is claimed first: claiming takes the journal's host lock, which must
	 * not be taken under an object's lock. */
	journal_open();
	char rel[128];
	snprintf(rel, sizeof rel, "locks/%s.%u", strcmp(k->name, STORE_ROOT) ? k->name : "root",
		 id_hash(id) % LOCK_STRIPES);
	return store_lock_path(rel, lock_wait_ms);
}

/* Validates the id and locks its object: STORE_OK with *fd held, or why not. */
static int lock_valid(const struct kind_info *k, const char *id, int *fd)
{
	if (!store_id_valid(id))
		return STORE_INVALID;
	*fd = lock_object(k, id);
	if (*fd < 0)
		return errno == EWOULDBLOCK ? STORE_BUSY : STORE_IO;
	return STORE_OK;
}

/* Reads the whole file; STORE_NOENT, STORE_IO or STORE_OK. */
static int read_file(const char *path, struct buf *out, ino_t *ino)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_NOENT : STORE_IO;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)STORE_MAX_DOC) {
		close(fd);
		return STORE_CORRUPT;
	}
	if (ino)
		*ino = st.st_ino;
	buf_grow(out, (size_t)st.st_size);
	for (;;) {
		buf_grow(out, 4096);
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return STORE_IO;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
		if (out->len > STORE_MAX_DOC) {
			close(fd);
			return STORE_CORRUPT;
		}
	}
	close(fd);
	return STORE_OK;
}

bool store_writable(void)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/run", root_dir);
	return store_write_file(dir, "health-probe", "ok\n", 3, false) == STORE_OK;
}

int store_read_file(const char *dir, const char *name, struct buf *out)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return read_file(path, out, NULL);
}

static const struct json_limits doc_limits = {
	.max_bytes = STORE_MAX_DOC, .max_depth = 96, .max_string = STORE_MAX_DOC};

/* Loads without locking or quarantining; *ino receives the file's inode. */
static int load_doc(const struct kind_info *k, const char *id, yajl_val *out, ino_t *ino)
{
	char path[PATH_MAX];
	struct buf text = BUF_INIT;
	object_path(k, id, path, sizeof path);
	*out = NULL;
	int rc = read_file(path, &text, ino);
	if (rc == STORE_OK) {
		*out = json_parse(text.data ? text.data : "", text.len, &doc_limits, NULL);
		if (!*out || !YAJL_IS_OBJECT(*out)) {
			if (*out)
				yajl_tree_free(*out);
			*out = NULL;
			rc = STORE_CORRUPT;
		}
	} else if (rc == STORE_IO) {
		log_error("store: reading %s: %s", path, strerror(errno));
	}
	buf_free(&text);
	return rc;
}

/* Caller holds the object's lock. */
static void quarantine_locked(const struct kind_info *k, const char *id, const char *why)
{
	char path[PATH_MAX], dest[PATH_MAX];
	object_path(k, id, path, sizeof path);
	snprintf(dest, sizeof dest, "%s/corrupt/%s.%s.%lld.json", root_dir,
		 strcmp(k->name, STORE_ROOT) ? k->name : "root", id, (long long)now_ms());
	if (rename(path, dest) == 0)
		log_error("store: %s/%s is corrupt (%s); moved to %s", k->name, id, why, dest);
	else if (errno != ENOENT)
		log_error("store: cannot quarantine %s: %s", path, strerror(errno));
}

void store_quarantine(const char *kind, const char *id, const char *why)
{
	const struct kind_info *k = kind_lookup(kind);
	if (!store_id_valid(id))
		return;
	int fd = lock_object(k, id);
	if (fd < 0)
		return;
	/* Re-check under the lock: a writer may have replaced the bad file meanwhile. */
	yajl_val doc;
	ino_t ino;
	if (load_doc(k, id, &doc, &ino) == STORE_CORRUPT)
		quarantine_locked(k, id, why);
	if (doc)
		yajl_tree_free(doc);
	store_unlock(fd);
}

int store_load(const char *kind, const char *id, yajl_val *out)
{
	const struct kind_info *k = kind_lookup(kind);
	*out = NULL;
	if (!store_id_valid(id))
		return STORE_INVALID;
	int rc = load_doc(k, id, out, NULL);
	if (rc == STORE_CORRUPT)
		store_quarantine(kind, id, "does not parse as a JSON object");
	return rc;
}

int store_load_text(const char *kind, const char *id, struct buf *out)
{
	const struct kind_info *k = kind_lookup(kind);
	char path[PATH_MAX];
	if (!store_id_valid(id))
		return STORE_INVALID;
	object_path(k, id, path, sizeof path);
	int rc = read_file(path, out, NULL);
	if (rc == STORE_CORRUPT)
		store_quarantine(kind, id, "larger than any document we write");
	else if (rc == STORE_IO)
		log_error("store: reading %s: %s", path, strerror(errno));
	return rc;
}

void store_stamp(const char *kind, const char *id, struct file_stamp *out)
{
	const struct kind_info *k = kind_lookup(kind);
	char path[PATH_MAX];
	if (!store_id_valid(id)) {
		memset(out, 0, sizeof *out);
		return;
	}
	object_path(k, id, path, sizeof path);
	file_stamp_take(path, out);
}

bool store_exists(const char *kind, const char *id)
{
	const struct kind_info *k = kind_lookup(kind);
	char path[PATH_MAX];
	if (!store_id_valid(id))
		return false;
	object_path(k, id, path, sizeof path);
	return access(path, F_OK) == 0;
}

int store_create(const char *kind, const char *id, const char *data, size_t len)
{
	const struct kind_info *k = kind_lookup(kind);
	char dir[PATH_MAX], name[STORE_ID_MAX + 8];
	if (!store_id_valid(id))
		return STORE_INVALID;
	object_dir(k, id, dir, sizeof dir);
	snprintf(name, sizeof name, "%s.json", id);
	return store_write_file(dir, name, data, len, true);
}


static int put_locked(const struct kind_info *k, const char *id, const char *data, size_t len,
		      bool sync)
{
	char dir[PATH_MAX], name[STORE_ID_MAX + 8];
	object_dir(k, id, dir, sizeof dir);
	snprintf(name, sizeof name, "%s.json", id);
	return write_file(dir, name, data, len, false, sync);
}

int store_update(const char *kind, const char *id, int flags, store_edit_fn *edit, void *arg)
{
	const struct kind_info *k = kind_lookup(kind);
	int fd;
	int rc = lock_valid(k, id, &fd);
	if (rc != STORE_OK)
		return rc;

	yajl_val old = NULL;
	struct jgen gen;
	struct buf out = BUF_INIT;
	jg_init(&gen);
	rc = load_doc(k, id, &old, NULL);
	if (rc == STORE_CORRUPT) {
		quarantine_locked(k, id, "does not parse as a JSON object");
		goto out;
	}
	if (rc == STORE_NOENT && (flags & STORE_UPSERT))
		rc = STORE_OK;
	if (rc != STORE_OK)
		goto out;
	rc = edit(old, &gen, arg);
	if (rc != STORE_OK)
		goto out;
	if (jg_finish(&gen, &out) < 0) {
		log_error("store: edit of %s/%s generated invalid JSON", kind, id);
		rc = STORE_IO;
		goto out;
	}
	rc = put_locked(k, id, out.data, out.len, !(flags & STORE_NO_FSYNC));
out:
	if (old)
		yajl_tree_free(old);
	jg_free(&gen);
	buf_free(&out);
	store_unlock(fd);
	return settle(rc);
}

int store_put(const char *kind, const char *id, const char *data, size_t len)
{
	const struct kind_info *k = kind_lookup(kind);
	int fd;
	int rc = lock_valid(k, id, &fd);
	if (rc != STORE_OK)
		return rc;
	rc = put_locked(k, id, data, len, true);
	store_unlock(fd);
	return settle(rc);
}

int store_remove(const char *kind, const char *id)
{
	const struct kind_info *k = kind_lookup(kind);
	char path[PATH_MAX], dir[PATH_MAX];
	int fd;
	int rc = lock_valid(k, id, &fd);
	if (rc != STORE_OK)
		return rc;
	object_path(k, id, path, sizeof path);
	object_dir(k, id, dir, sizeof dir);
	if (unlink(path) < 0)
		rc = errno == ENOENT ? STORE_NOENT : STORE_IO;
	else if (make_durable(dir, path, JOURNAL_REMOVE, NULL, 0, false) < 0)
		rc = STORE_IO;
	store_unlock(fd);
	return settle(rc);
}

/* Ids from "<id>.json" names; dot files (temp files) and others are skipped. */
static int list_dir(const char *dir, store_list_fn *fn, void *arg)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int rc = 0;
	struct dirent *e;
	char id[STORE_ID_MAX + 1];
	while (rc == 0 && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n <= 5 || n - 5 > STORE_ID_MAX ||
		    strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		memcpy(id, e->d_name, n - 5);
		id[n - 5] = '\0';
		if (store_id_valid(id))
			rc = fn(id, arg);
	}
	closedir(d);
	return rc;
}

int store_list(const char *kind, store_list_fn *fn, void *arg)
{
	const struct kind_info *k = kind_lookup(kind);
	char dir[PATH_MAX];
	if (!k->sharded) {
		snprintf(dir, sizeof dir, "%s/%s", root_dir, k->name);
		return list_dir(dir, fn, arg);
	}
	for (unsigned s = 0; s < 256; s++) {
		snprintf(dir, sizeof dir, "%s/%s/%02x", root_dir, k->name, s);
		int rc = list_dir(dir, fn, arg);
		if (rc)
			return rc;
	}
	return 0;
}

struct id_set {
	char (*v)[STORE_ID_MAX + 1];
	size_t n, cap, max;
};

static int id_add(const char *id, void *arg)
{
	struct id_set *l = arg;
	if (l->n >= l->max)
		return 1;
	l->v = array_grow(l->v, l->n, &l->cap, sizeof *l->v, 16);
	snprintf(l->v[l->n++], sizeof *l->v, "%s", id);
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

size_t store_list_ids(const char *kind, size_t max, char (**out)[STORE_ID_MAX + 1])
{
	struct id_set l = {NULL, 0, 0, max};
	store_list(kind, id_add, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, cmp_id);
	*out = l.v;
	return l.n;
}

static int clean_dir(const char *dir, time_t cutoff)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int removed = 0;
	struct dirent *e;
	char path[PATH_MAX];
	struct stat st;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] != '.' || n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0 && st.st_mtime < cutoff && unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int store_clean_temp(const char *kind, int max_age_s)
{
	const struct kind_info *k = kind_lookup(kind);
	char dir[PATH_MAX];
	time_t cutoff = time(NULL) - max_age_s;
	int removed = 0;
	if (!k->sharded) {
		snprintf(dir, sizeof dir, "%s/%s", root_dir, k->name);
		return clean_dir(dir, cutoff);
	}
	for (unsigned s = 0; s < 256; s++) {
		snprintf(dir, sizeof dir, "%s/%s/%02x", root_dir, k->name, s);
		removed += clean_dir(dir, cutoff);
	}
	return removed;
}
