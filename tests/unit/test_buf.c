/* Unit tests for lib/buf.c: the growable, always NUL-terminated string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

/* The invariant every operation must keep: data[len] == '\0' once allocated, and
 * the capacity leaves room for it. */
static void assert_terminated(const struct buf *b)
{
	if (!b->data) {
		assert_int_equal(b->len, 0);
		return;
	}
	assert_true(b->cap >= b->len + 1);
	assert_int_equal(b->data[b->len], '\0');
}

static void test_init_is_empty_string(void **state)
{
	struct buf b = BUF_INIT;
	/* Callers print buf_str() of untouched buffers: it must never be NULL. */
	assert_non_null(buf_str(&b));
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	buf_free(&b); /* freeing an untouched buffer is allowed */
	assert_null(b.data);
}

static void test_add_binary_keeps_length_and_nul(void **state)
{
	struct buf b = BUF_INIT;
	const char bin[] = {'a', '\0', 'b', '\n'};
	buf_add(&b, bin, sizeof bin);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, bin, 4); /* embedded NUL kept, not truncated */
	assert_terminated(&b);
	buf_add(&b, NULL, 0); /* a zero-length append is a no-op, even with NULL */
	assert_int_equal(b.len, 4);
	assert_terminated(&b);
	buf_free(&b);
}

static void test_many_appends_grow(void **state)
{
	struct buf b = BUF_INIT;
	/* 10000 single characters force many reallocations; content must survive. */
	for (int i = 0; i < 10000; i++)
		buf_addch(&b, (char)('a' + i % 26));
	assert_int_equal(b.len, 10000);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(b.data[i], 'a' + i % 26);
	assert_terminated(&b);
	buf_free(&b);
}

static void test_adds_and_printf_append(void **state)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "id=");
	buf_printf(&b, "%s-%d", "gpu", 7);
	buf_printf(&b, "%s", ""); /* empty format output changes nothing */
	assert_string_equal(buf_str(&b), "id=gpu-7");
	assert_int_equal(b.len, strlen("id=gpu-7"));
	assert_terminated(&b);

	/* Longer than the initial allocation: printf itself must grow the buffer. */
	char big[1000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	buf_printf(&b, "[%s]", big);
	assert_int_equal(b.len, 8 + 2 + 999);
	assert_int_equal(b.data[8], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_terminated(&b);
	buf_free(&b);
}

static void test_printf_empty_on_fresh_buffer(void **state)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s", "");
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	assert_terminated(&b);
	buf_free(&b);
}

static void wrapped_vprintf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void wrapped_vprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

static void test_vprintf(void **state)
{
	struct buf b = BUF_INIT;
	wrapped_vprintf(&b, "%d/%s/%zu", -3, "x", (size_t)42);
	assert_string_equal(buf_str(&b), "-3/x/42");
	buf_free(&b);
}

static void test_reset_keeps_memory(void **state)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "something long enough");
	char *data = b.data;
	size_t cap = b.cap;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	/* Reused across requests: the allocation must be kept, not freed. */
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, cap);
	buf_adds(&b, "new");
	assert_string_equal(buf_str(&b), "new");
	buf_free(&b);

	struct buf empty = BUF_INIT;
	buf_reset(&empty); /* on a never-used buffer: no crash, still empty */
	assert_string_equal(buf_str(&empty), "");
}

static void test_detach_transfers_ownership(void **state)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "hello");
	char *s = buf_detach(&b);
	assert_string_equal(s, "hello");
	/* The buffer is empty and reusable; s is the caller's (valgrind checks). */
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	buf_adds(&b, "again");
	assert_string_equal(buf_str(&b), "again");
	free(s);
	buf_free(&b);

	/* Detaching an untouched buffer still gives a freeable "" (never NULL). */
	struct buf e = BUF_INIT;
	char *es = buf_detach(&e);
	assert_non_null(es);
	assert_string_equal(es, "");
	free(es);
}

static void test_free_then_reuse(void **state)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "one");
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	buf_adds(&b, "two");
	assert_string_equal(buf_str(&b), "two");
	buf_free(&b);
	buf_free(&b); /* double free of the struct is harmless */
}

static void test_grow_reserves_without_changing_content(void **state)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "ab");
	buf_grow(&b, 5000);
	assert_true(b.cap >= 2 + 5000 + 1);
	assert_int_equal(b.len, 2);
	assert_string_equal(buf_str(&b), "ab");
	/* A reservation already satisfied must not move the data. */
	char *data = b.data;
	buf_grow(&b, 10);
	assert_ptr_equal(b.data, data);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_is_empty_string),
	    cmocka_unit_test(test_add_binary_keeps_length_and_nul),
	    cmocka_unit_test(test_many_appends_grow),
	    cmocka_unit_test(test_adds_and_printf_append),
	    cmocka_unit_test(test_printf_empty_on_fresh_buffer),
	    cmocka_unit_test(test_vprintf),
	    cmocka_unit_test(test_reset_keeps_memory),
	    cmocka_unit_test(test_detach_transfers_ownership),
	    cmocka_unit_test(test_free_then_reuse),
	    cmocka_unit_test(test_grow_reserves_without_changing_content),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
