#include "model/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "model/config.h"
#include "base/util.h"

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes base64 into out (NUL-terminated); -1 on bad input or overflow. */
static int b64_decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (; *in && *in != '='; in++) {
		int v = b64_value(*in);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return 0;
}

const char *auth_bearer(const char *authorization)
{
	static char token[512];
	if (!authorization)
		return NULL;
	while (*authorization == ' ')
		authorization++;
	if (strncasecmp(authorization, "Bearer ", 7) == 0) {
		const char *t = authorization + 7;
		while (*t == ' ')
			t++;
		size_t n = strcspn(t, " \t");
		if (n == 0 || n >= sizeof token)
			return NULL;
		memcpy(token, t, n);
		token[n] = '\0';
		return token;
	}
	if (strncasecmp(authorization, "Basic ", 6) == 0) {
		char decoded[512];
		if (b64_decode(authorization + 6, decoded, sizeof decoded) < 0)
			return NULL;
		const char *colon = strchr(decoded, ':');
		if (!colon || !colon[1])
			return NULL;
		snprintf(token, sizeof token, "%s", colon + 1);
		return token;
	}
	return NULL;
}

/* Compares the presented token's digest with a stored "sha256:<hex>" or plain
 * token, in constant time over fixed-length digests. */
static bool digest_matches(const char given[65], const char *stored)
{
	char want[65];
	if (!stored || !*stored)
		return false;
	if (strncmp(stored, "sha256:", 7) == 0)
		snprintf(want, sizeof want, "%s", stored + 7);
	else
		sha256_hex(stored, strlen(stored), want);
	return secure_equal(given, strlen(given), want, strlen(want));
}

bool auth_token_matches(const char *token, const char *stored)
{
	char given[65];
	if (!token)
		return false;
	sha256_hex(token, strlen(token), given);
	return digest_matches(given, stored);
}

enum auth_level auth_level_of(const char *token)
{
	char given[65];
	if (!token)
		return AUTH_NONE;
	sha256_hex(token, strlen(token), given);
	/* Both comparisons always run, so timing does not tell which token matched. */
	bool admin = digest_matches(given, config_str("adminToken", NULL));
	bool client = digest_matches(given, config_str("clientToken", NULL));
	return admin ? AUTH_ADMIN : client ? AUTH_CLIENT : AUTH_NONE;
}
