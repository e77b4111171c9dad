/* util: time, randomness and ids; small things every module needs. */
#ifndef TASKGATE_UTIL_H
#define TASKGATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (wall clock: stored in files, compared across
 * hosts with a margin). */
int64_t now_ms(void);
/* Milliseconds from a monotonic clock, for timeouts inside one process. */
int64_t mono_ms(void);
int64_t mono_us(void); /* the same clock in microseconds */
void sleep_ms(unsigned ms);

/* Fills out with n cryptographically random bytes (getrandom). Aborts on failure:
 * a secret we cannot make random must not be made at all. */
void random_bytes(void *out, size_t n);
/* Writes 2*n lowercase hex digits of n random bytes plus NUL into out. */
void random_hex(char *out, size_t n);
/* A new lowercase RFC 4122 random UUID (libuuid), 36 chars + NUL. */
void uuid_new(char out[37]);
/* This machine's name made safe for a file name ('/' and '.' become '_'), read
 * once: several web nodes may share the state tree and name files after it. */
const char *host_name(void);

/* Hex-encoded SHA-256 of data (libcrypto), 64 chars + NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);
/* HMAC-SHA256 of msg under key, as 64 lowercase hex digits + NUL (libcrypto). */
void hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
		     char out[65]);
/* Decodes base64 (RFC 4648 with padding; line breaks allowed) of in[0..n) into out
 * (libcrypto's decoder), which must hold 3 * ((n + 3) / 4) bytes. Returns the bytes
 * decoded, or -1 for text that is not base64. */
long base64_decode(const char *in, size_t n, unsigned char *out);
/* Constant-time comparison of two equal-length byte strings; false if lengths differ. */
bool secure_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds. */
void format_time_ms(int64_t ms, char out[32]);

/* A copy of s ("" for NULL) that the caller frees. Running out of memory aborts. */
char *xstrdup(const char *s);

/* ---- growable arrays ----
 * An array is a pointer v, a count n and a capacity (elements allocated); size is
 * sizeof *v. Running out of memory aborts, as everywhere in taskgate. */

/* Makes room for element n: when the array is full, *cap doubles (first when it is
 * 0). Returns the array, which may have moved. */
void *array_grow(void *v, size_t n, size_t *cap, size_t size, size_t first);
/* Inserts a zeroed element at index at (0..*n), growing the array as array_grow()
 * does, and counts it in *n. Returns the array, which may have moved. */
void *array_insert(void *v, size_t *n, size_t *cap, size_t size, size_t at, size_t first);
/* Binary search of v (n elements in ascending order for cmp) for key; cmp(key,
 * element) answers like strcmp. Returns the index of the match (*found true), else
 * where key would be inserted to keep the order (*found false). */
size_t array_search(const void *key, const void *v, size_t n, size_t size,
		    int (*cmp)(const void *key, const void *elem), bool *found);

#endif
