#include "base/util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_ms(void)
{
	return mono_us() / 1000;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void random_bytes(void *out, size_t n)
{
	unsigned char *p = out;
	for (int tries = 0; n > 0 && tries < 100; tries++) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		p += got;
		n -= (size_t)got;
	}
	if (n) {
		fputs("taskgate: getrandom failed\n", stderr);
		abort();
	}
}

void random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	while (n) {
		size_t chunk = n < sizeof raw ? n : sizeof raw;
		random_bytes(raw, chunk);
		for (size_t i = 0; i < chunk; i++) {
			*out++ = hex[raw[i] >> 4];
			*out++ = hex[raw[i] & 15];
		}
		n -= chunk;
	}
	*out = '\0';
}

void uuid_new(char out[37])
{
	/* RFC 4122 version 4 from getrandom() directly: uuid_generate_random() also
	 * mixes in its own PRNG, seeding it with five more system calls (pid, uid,
	 * ppid, tid, time) on every id, which cost more than the id is worth here.
	 * libuuid still formats it. */
	uuid_t u;
	random_bytes(u, sizeof u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* variant 10 */
	uuid_unparse_lower(u, out);
}

const char *host_name(void)
{
	static char host[64];
	if (!host[0]) {
		if (gethostname(host, sizeof host - 1) < 0 || !host[0])
			snprintf(host, sizeof host, "host");
		host[sizeof host - 1] = '\0';
		for (char *p = host; *p; p++)
			if (*p == '/' || *p == '.')
				*p = '_';
	}
	return host;
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	/* Fetched and allocated once: SHA256() looks the algorithm up in OpenSSL 3's
	 * provider tables and EVP_Digest() allocates a context on every call, each of
	 * which costs more than hashing a token. Released at exit with the process. */
	static EVP_MD *sha256;
	static EVP_MD_CTX *ctx;
	unsigned char md[SHA256_DIGEST_LENGTH];
	if (!sha256)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!ctx)
		ctx = EVP_MD_CTX_new();
	if (!sha256 || !ctx || !EVP_DigestInit_ex2(ctx, sha256, NULL) ||
	    !EVP_DigestUpdate(ctx, data, len) || !EVP_DigestFinal_ex(ctx, md, NULL)) {
		fputs("taskgate: SHA-256 unavailable\n", stderr);
		abort();
	}
	for (size_t i = 0; i < sizeof md; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

long base64_decode(const char *in, size_t n, unsigned char *out)
{
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	if (!ctx)
		abort();
	EVP_DecodeInit(ctx);
	long total = 0;
	/* EVP takes an int length: feed long texts in pieces. */
	while (n) {
		int piece = n > (1u << 30) ? 1 << 30 : (int)n, got = 0;
		if (EVP_DecodeUpdate(ctx, out + total, &got, (const unsigned char *)in, piece) < 0) {
			EVP_ENCODE_CTX_free(ctx);
			return -1;
		}
		total += got;
		in += piece;
		n -= (size_t)piece;
	}
	int last = 0;
	int rc = EVP_DecodeFinal(ctx, out + total, &last);
	EVP_ENCODE_CTX_free(ctx);
	return rc < 0 ? -1 : total + last;
}

bool secure_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

void format_time_ms(int64_t ms, char out[32])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

void *array_grow(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : first;
	v = realloc(v, *cap * size);
	if (!v)
		abort();
	return v;
}

void *array_insert(void *v, size_t *n, size_t *cap, size_t size, size_t at, size_t first)
{
	char *p = array_grow(v, *n, cap, size, first);
	memmove(p + (at + 1) * size, p + at * size, (*n - at) * size);
	memset(p + at * size, 0, size);
	(*n)++;
	return p;
}

size_t array_search(const void *key, const void *v, size_t n, size_t size,
		    int (*cmp)(const void *key, const void *elem), bool *found)
{
	const char *p = v;
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp(key, p + mid * size);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

char *xstrdup(const char *s)
{
	char *c = strdup(s ? s : "");
	if (!c)
		abort();
	return c;
}

void hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
		     char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &mdlen) || mdlen != 32) {
		fputs("taskgate: HMAC-SHA256 unavailable\n", stderr);
		abort(); /* a secret that cannot be derived must not be made up */
	}
	for (unsigned i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}
