/* auth: bearer tokens for clients, operators and backends. */
#ifndef TASKGATE_AUTH_H
#define TASKGATE_AUTH_H

#include <stdbool.h>

enum auth_level { AUTH_NONE = 0, AUTH_CLIENT = 1, AUTH_ADMIN = 2 };

/* The token of an "Authorization: Bearer <token>" value, parsed strictly (RFC 6750:
 * the scheme, one or more spaces, one token68 word, nothing after it but spaces).
 * NULL if absent or malformed. Points into a static buffer valid until the next
 * call. */
const char *auth_bearer(const char *authorization);
/* The password of an HTTP Basic value ("Basic <base64 of user:password>"), or
 * NULL. Browsers send Basic by themselves to any page of a site once it was given,
 * cross-site requests included, so only the status page takes it (a page that
 * changes nothing); every other route takes only Bearer. Same buffer rule. */
const char *auth_basic_password(const char *authorization);

/* What the token grants according to config.json (adminToken, clientToken). */
enum auth_level auth_level_of(const char *token);

/* True if token matches stored, which is "sha256:<hex>" or a plain token. The
 * comparison is of fixed-length digests in constant time, so neither the token's
 * content nor its length leaks through timing. */
bool auth_token_matches(const char *token, const char *stored);

/* The callback secret of one attempt: 128 bits (32 hex digits + NUL) of
 * HMAC-SHA256, under the tree's callback key, of "<task id>.<attempt>". Derived
 * rather than drawn at random so that whichever process sends the attempt (a
 * worker, later than the request that placed it) can build its callback URL
 * without the secret ever being stored: the task file keeps only its SHA-256. The
 * key (callback-key.json, 256 random bits) is made by the first process that needs
 * it. Returns 0, or -1 when the key can neither be read nor made. */
int auth_attempt_secret(const char *task_id, int attempt, char out[33]);

#endif
