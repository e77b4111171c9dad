#include "model/auth.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/store.h"
#include "model/config.h"

static char parsed_token[512];

/* RFC 7235's token68: the alphabet of base64 and base64url, then trailing '='. */
static bool token68(const char *t, size_t n)
{
	size_t i = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
	if (i == 0 || i > n)
		return false;
	while (i < n && t[i] == '=')
		i++;
	return i == n;
}

/* After the scheme word: the value's one credential word, or NULL. */
static const char *credential_of(const char *authorization, const char *scheme)
{
	size_t sl = strlen(scheme);
	if (authorization) /* a header value's optional white space (RFC 9110 5.6.3) */
		authorization += strspn(authorization, " \t");
	if (!authorization || strncasecmp(authorization, scheme, sl) != 0 ||
	    authorization[sl] != ' ')
		return NULL;
	const char *t = authorization + sl;
	while (*t == ' ')
		t++;
	size_t n = strcspn(t, " \t");
	if (n == 0 || n >= sizeof parsed_token || t[n + strspn(t + n, " \t")] != '\0' ||
	    !token68(t, n))
		return NULL;
	memcpy(parsed_token, t, n);
	parsed_token[n] = '\0';
	return parsed_token;
}

const char *auth_bearer(const char *authorization)
{
	return credential_of(authorization, "Bearer");
}

const char *auth_basic_password(const char *authorization)
{
	const char *word = credential_of(authorization, "Basic");
	if (!word)
		return NULL;
	/* One word of base64; browsers pad it, a hand-made header may not. */
	char enc[sizeof parsed_token + 4];
	size_t n = strlen(word);
	memcpy(enc, word, n);
	while (n % 4)
		enc[n++] = '=';
	unsigned char decoded[sizeof parsed_token];
	long got = base64_decode(enc, n, decoded);
	if (got < 0 || (size_t)got >= sizeof decoded || memchr(decoded, 0, (size_t)got))
		return NULL;
	decoded[got] = '\0';
	const char *colon = strchr((const char *)decoded, ':');
	if (!colon || !colon[1])
		return NULL;
	snprintf(parsed_token, sizeof parsed_token, "%s", colon + 1);
	return parsed_token;
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

#define CALLBACK_KEY_ID "callback-key"

/* The tree's callback key, read once per process; made (no clobber, so the first
 * maker wins and every process ends up with the same key) when absent. */
static const char *callback_key(void)
{
	static char key[65];
	if (key[0])
		return key;
	for (int tries = 0; tries < 2 && !key[0]; tries++) {
		yajl_val doc = NULL;
		if (store_load(STORE_ROOT, CALLBACK_KEY_ID, &doc) == STORE_OK) {
			const char *k = json_str_or(doc, "key", "");
			if (strlen(k) == 64)
				memcpy(key, k, 65);
			yajl_tree_free(doc);
			continue;
		}
		char fresh[65], text[96];
		random_hex(fresh, 32);
		int n = snprintf(text, sizeof text, "{\"key\":\"%s\"}\n", fresh);
		int rc = store_create(STORE_ROOT, CALLBACK_KEY_ID, text, (size_t)n);
		if (rc == STORE_OK)
			memcpy(key, fresh, sizeof fresh);
		else if (rc != STORE_EXISTS)
			log_error("auth: cannot create %s.json: %s", CALLBACK_KEY_ID, store_strerror(rc));
	}
	return key[0] ? key : NULL;
}

int auth_attempt_secret(const char *task_id, int attempt, char out[33])
{
	const char *key = callback_key();
	if (!key)
		return -1;
	char msg[128], mac[65];
	int n = snprintf(msg, sizeof msg, "%s.%d", task_id, attempt);
	hmac_sha256_hex(key, strlen(key), msg, (size_t)n, mac);
	memcpy(out, mac, 32);
	out[32] = '\0';
	return 0;
}
