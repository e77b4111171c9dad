/* auth: bearer tokens for clients, operators and backends. */
#ifndef TASKGATE_AUTH_H
#define TASKGATE_AUTH_H

#include <stdbool.h>

enum auth_level { AUTH_NONE = 0, AUTH_CLIENT = 1, AUTH_ADMIN = 2 };

/* Extracts the token from an "Authorization: Bearer <token>" value (also accepts
 * HTTP Basic with the token as password, for browsers). Returns NULL if absent.
 * The result points into a static buffer valid until the next call. */
const char *auth_bearer(const char *authorization);

/* What the token grants according to config.json (adminToken, clientToken). */
enum auth_level auth_level_of(const char *token);

/* True if token matches stored, which is "sha256:<hex>" or a plain token. The
 * comparison is of fixed-length digests in constant time, so neither the token's
 * content nor its length leaks through timing. */
bool auth_token_matches(const char *token, const char *stored);

#endif
