/* Unit tests for lib/journal.c through the store: after a restart (a boot id that
 * differs from the recorded one) the journal restores what the files lost, in
 * write order; records older than a checkpoint stay unapplied; a torn tail is
 * ignored; a full slot wraps behind a checkpoint; a write too large for the
 * journal is not undone by older records; removals are replayed; a slot's
 * run-end hint is used only when it names the run's true end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/journal.h"
#include "fs/store.h"
#include "base/util.h"
#include "testutil.h"

static char *root;

static int setup(void **state)
{
	(void)state;
	root = tu_mkdtemp();
	journal_set_slot_bytes(JOURNAL_SLOT_BYTES);
	journal_enable(true);
	journal_set_batch(false);
	assert_int_equal(store_init(root), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	journal_close();
	tu_rmtree(root);
	free(root);
	return 0;
}

static void path_of(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s", root, rel);
}

static void write_raw(const char *rel, const char *text)
{
	char path[4096];
	path_of(path, sizeof path, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *read_raw(const char *rel)
{
	char path[4096];
	path_of(path, sizeof path, rel);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char text[65536];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	return text;
}

static int64_t synced_through(void)
{
	char rel[256];
	snprintf(rel, sizeof rel, "journal/%s.synced", host_name());
	const char *text = read_raw(rel);
	assert_non_null(text);
	const char *p = strstr(text, "\"syncedThrough\":");
	assert_non_null(p);
	return strtoll(p + 16, NULL, 10);
}

/* What a power loss followed by a reboot looks like to the journal: the
 * recorded boot is another one. Then the tree is opened again. */
static void restart(void)
{
	char rel[256], text[256];
	int64_t through = synced_through();
	journal_close();
	snprintf(rel, sizeof rel, "journal/%s.synced", host_name());
	snprintf(text, sizeof text, "{\"bootId\":\"previous-boot\",\"syncedThrough\":%lld}\n",
		 (long long)through);
	write_raw(rel, text);
	assert_int_equal(store_init(root), 0);
}

static void put(const char *id, const char *text)
{
	assert_int_equal(store_put("servers", id, text, strlen(text)), STORE_OK);
}

static void test_restart_restores_lost_writes(void **state)
{
	(void)state;
	put("a", "{\"v\":1}");
	put("a", "{\"v\":2}");
	put("b", "{\"v\":1}");
	/* The crash kept the first version of a and lost b altogether. */
	write_raw("servers/a.json", "{\"v\":1}");
	char path[4096];
	path_of(path, sizeof path, "servers/b.json");
	unlink(path);
	restart();
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":2}");
	assert_string_equal(read_raw("servers/b.json"), "{\"v\":1}");
	/* Replay ends with a checkpoint: a second restart applies nothing again. */
	write_raw("servers/a.json", "{\"v\":9}");
	restart();
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":9}");
}

static void test_next_owner_keeps_the_records_before_it(void **state)
{
	(void)state;
	put("a", "{\"v\":1}");
	journal_close(); /* the process goes away; the next one gets the same slot */
	assert_int_equal(store_init(root), 0);
	int64_t before = synced_through();
	put("b", "{\"v\":1}");
	assert_int_equal(synced_through(), before); /* no checkpoint was needed */
	char path[4096];
	path_of(path, sizeof path, "servers/a.json");
	unlink(path);
	path_of(path, sizeof path, "servers/b.json");
	unlink(path);
	restart();
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":1}");
	assert_string_equal(read_raw("servers/b.json"), "{\"v\":1}");
}

static void test_same_boot_replays_nothing(void **state)
{
	(void)state;
	put("a", "{\"v\":1}");
	write_raw("servers/a.json", "{\"v\":7}"); /* a later write outside the journal */
	journal_close();
	assert_int_equal(store_init(root), 0); /* a new process, same boot */
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":7}");
}

static void test_checkpoint_makes_records_redundant(void **state)
{
	(void)state;
	put("a", "{\"v\":1}");
	int64_t before = synced_through();
	assert_int_equal(journal_checkpoint(), 0);
	assert_true(synced_through() > before);
	write_raw("servers/a.json", "{\"v\":5}");
	restart();
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":5}");
}

static void test_torn_tail_is_ignored(void **state)
{
	(void)state;
	put("a", "{\"v\":1}");
	put("a", "{\"v\":2}");
	journal_close();
	/* Garbage where a third record was being written when the power failed. */
	char rel[256], path[4096];
	snprintf(rel, sizeof rel, "journal/%s.0.log", host_name());
	path_of(path, sizeof path, rel);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	off_t end = 0;
	unsigned char head[32];
	/* Walk the two records: magic, crc, then the payload length at offset 8. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pread(fd, head, sizeof head, end), (ssize_t)sizeof head);
		assert_memory_equal(head, "TGJ1", 4);
		uint32_t len;
		memcpy(&len, head + 8, sizeof len);
		end += (off_t)(sizeof head + len);
	}
	assert_true(end > 0);
	assert_int_equal(pwrite(fd, "TGJ1\x01\x02\x03\x04garbage", 15, end), 15);
	close(fd);
	assert_int_equal(store_init(root), 0);
	write_raw("servers/a.json", "{\"v\":1}");
	restart();
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":2}");
}

static void test_full_slot_wraps_behind_a_checkpoint(void **state)
{
	(void)state;
	journal_set_slot_bytes(16384);
	assert_int_equal(store_init(root), 0);
	int64_t before = synced_through();
	char text[600], id[16];
	memset(text, 0, sizeof text);
	for (int i = 0; i < 60; i++) {
		snprintf(id, sizeof id, "s%d", i);
		int n = snprintf(text, sizeof text, "{\"i\":%d,\"pad\":\"%0400d\"}", i, i);
		assert_int_equal(store_put("servers", id, text, (size_t)n), STORE_OK);
	}
	assert_true(synced_through() > before); /* 60 x ~470 bytes do not fit in 16 KiB */
	write_raw("servers/s0.json", "{\"stale\":true}");
	write_raw("servers/s59.json", "{\"stale\":true}");
	restart();
	/* s0 was written before the last wrap's checkpoint: not replayed. */
	assert_string_equal(read_raw("servers/s0.json"), "{\"stale\":true}");
	assert_non_null(strstr(read_raw("servers/s59.json"), "\"i\":59"));
}

static void test_classic_write_is_not_undone(void **state)
{
	(void)state;
	journal_set_slot_bytes(16384);
	assert_int_equal(store_init(root), 0);
	put("a", "{\"v\":\"small\"}");
	/* Larger than half a slot: fsync'd the classic way, then checkpointed. */
	static char big[12000];
	int n = snprintf(big, sizeof big, "{\"v\":\"%09000d\"}", 1);
	assert_int_equal(store_put("servers", "a", big, (size_t)n), STORE_OK);
	restart();
	assert_string_equal(read_raw("servers/a.json"), big);
}

static void test_removal_is_replayed(void **state)
{
	(void)state;
	put("a", "{\"v\":1}");
	assert_int_equal(store_remove("servers", "a"), STORE_OK);
	write_raw("servers/a.json", "{\"v\":1}"); /* the unlink did not survive */
	restart();
	assert_null(read_raw("servers/a.json"));
}

static void test_index_entries_are_replayed(void **state)
{
	(void)state;
	char dir[4096];
	path_of(dir, sizeof dir, "queue");
	assert_int_equal(store_touch_entry(dir, "500-1-0-x"), STORE_OK);
	put("a", "{\"v\":1}"); /* the commit the entry rides on */
	char path[4096];
	path_of(path, sizeof path, "queue/500-1-0-x");
	unlink(path);
	restart();
	assert_int_equal(access(path, F_OK), 0);
}

static void test_batch_commits_on_demand(void **state)
{
	(void)state;
	journal_set_batch(true);
	put("a", "{\"v\":1}");
	put("b", "{\"v\":1}");
	assert_int_equal(journal_commit(), 0);
	assert_int_equal(journal_commit(), 0); /* nothing pending: no flush */
	journal_set_batch(false);
	write_raw("servers/a.json", "{}");
	restart();
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":1}");
}

static void test_switched_off_writes_are_not_undone(void **state)
{
	(void)state;
	put("a", "{\"v\":1}");
	journal_enable(false); /* "journal": false in config.json */
	put("a", "{\"v\":2}");
	restart();
	assert_string_equal(read_raw("servers/a.json"), "{\"v\":2}");
	journal_enable(true);
}

/* The run-end hint of slot 0 (a binary file beside it), read or replaced whole. */
static size_t hint_read(char *out, size_t n)
{
	char rel[256], path[4096];
	snprintf(rel, sizeof rel, "journal/%s.0.end", host_name());
	path_of(path, sizeof path, rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t got = fread(out, 1, n, f);
	fclose(f);
	return got;
}

static void hint_replace(const char *bytes, size_t n)
{
	char rel[256], path[4096];
	snprintf(rel, sizeof rel, "journal/%s.0.end", host_name());
	path_of(path, sizeof path, rel);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	fclose(f);
}

static void unlink_server(const char *id)
{
	char rel[256], path[4096];
	snprintf(rel, sizeof rel, "servers/%s.json", id);
	path_of(path, sizeof path, rel);
	unlink(path);
}

/* A hint left behind by later appends (here put back by hand) names an intact
 * record, but not the last: the next owner must append after b and c, not over
 * them, or the restart would lose them. */
static void test_stale_hint_is_not_trusted(void **state)
{
	(void)state;
	char old_hint[64];
	put("a", "{\"v\":1}");
	size_t n = hint_read(old_hint, sizeof old_hint);
	assert_true(n > 0);
	put("b", "{\"v\":1}");
	put("c", "{\"v\":1}");
	journal_close();
	hint_replace(old_hint, n);
	assert_int_equal(store_init(root), 0);
	put("d", "{\"v\":1}");
	unlink_server("a");
	unlink_server("b");
	unlink_server("c");
	unlink_server("d");
	restart();
	assert_non_null(read_raw("servers/a.json"));
	assert_non_null(read_raw("servers/b.json"));
	assert_non_null(read_raw("servers/c.json"));
	assert_non_null(read_raw("servers/d.json"));
}

/* A hint written for a record that never reached the slot (the process died in
 * between) names nothing intact: the next owner walks the run instead, and
 * appends right after a. */
static void test_hint_of_a_lost_record_is_not_trusted(void **state)
{
	(void)state;
	char hint[64];
	put("a", "{\"v\":1}");
	size_t n = hint_read(hint, sizeof hint);
	assert_true(n >= 24);
	journal_close();
	/* last := end, end := end + 100: a record after a that was never written */
	uint64_t last, end;
	memcpy(&end, hint + 16, sizeof end);
	last = end;
	end += 100;
	memcpy(hint + 8, &last, sizeof last);
	memcpy(hint + 16, &end, sizeof end);
	hint_replace(hint, n);
	assert_int_equal(store_init(root), 0);
	put("b", "{\"v\":1}");
	unlink_server("a");
	unlink_server("b");
	restart();
	assert_non_null(read_raw("servers/a.json"));
	assert_non_null(read_raw("servers/b.json"));
}

/* Hints are not flushed, so recovery after a power cut removes them all. */
static void test_restart_removes_the_hints(void **state)
{
	(void)state;
	char hint[64];
	put("a", "{\"v\":1}");
	assert_true(hint_read(hint, sizeof hint) > 0);
	restart();
	assert_int_equal(hint_read(hint, sizeof hint), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restart_restores_lost_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_owner_keeps_the_records_before_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_same_boot_replays_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_makes_records_redundant, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_slot_wraps_behind_a_checkpoint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_classic_write_is_not_undone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removal_is_replayed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_entries_are_replayed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_commits_on_demand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switched_off_writes_are_not_undone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stale_hint_is_not_trusted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hint_of_a_lost_record_is_not_trusted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart_removes_the_hints, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
