/* config: where the state tree is and what $STATE_DIR/config.json says.
 *
 * The state directory comes from STATE_DIR in the environment at start-up, else
 * from TASKGATE_STATE_DIR fixed at build time. config.json is re-read when its
 * mtime or size changes, so an operator's edit takes effect on the next request
 * without restarting the FastCGI processes. Unknown keys are ignored; missing keys
 * take the documented defaults. */
#ifndef TASKGATE_CONFIG_H
#define TASKGATE_CONFIG_H

#include <stdbool.h>

#include "base/buf.h"

#include "base/json.h"

const char *config_state_dir(void);
/* Loads config.json if it changed since the last call. A file that does not parse
 * is never quarantined: the last good settings (this process's, else the copy kept
 * in run/config.last-good.json whenever one parsed) stay in force, and
 * config_problem() and the log say what is wrong, with line and column. 0 when some
 * good settings are in force; -1 when there are none (no config.json, or never a
 * good one). */
int config_refresh(void);
/* Why config.json is not what is in force ("config.json does not parse (line 3,
 * column 14: ...); ..."), or NULL when it is. */
const char *config_problem(void);
/* The parsed document (may be NULL before the first good load). */
yajl_val config_doc(void);

const char *config_str(const char *key, const char *fallback);
long long config_int(const char *key, long long fallback, long long min, long long max);
double config_num(const char *key, double fallback, double min, double max);
bool config_bool(const char *key, bool fallback);
/* "strictBodies" (default true): a request body's unknown member is a 400 naming it
 * (verr_known_members); false ignores such members, as taskgate once did. */
bool config_strict_bodies(void);
/* Appends publicUrl (how backends and clients reach taskgate) without a trailing
 * '/', for the URLs taskgate hands out. */
void config_public_url(struct buf *out);
/* Reads key inside the object at section (e.g. "health", "rise"). */
long long config_sect_int(const char *section, const char *key, long long fallback,
			  long long min, long long max);
double config_sect_num(const char *section, const char *key, double fallback, double min,
		       double max);

/* Creates the state tree and, when missing, config.json with the given tokens
 * (generated when NULL: printed on stdout, the only time they are shown). Tokens
 * are stored as "sha256:<hex>". Returns 0 or -1. */
int config_init_tree(const char *admin_token, const char *client_token,
		     const char *public_url);

void config_free(void);

#endif
