#include "model/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "fs/logfile.h"
#include "fs/store.h"
#include "base/util.h"

#ifndef TASKGATE_STATE_DIR
#define TASKGATE_STATE_DIR "/var/lib/taskgate"
#endif

static yajl_val doc;
static struct file_stamp seen;

const char *config_state_dir(void)
{
	static char dir[PATH_MAX];
	if (!dir[0]) {
		const char *env = getenv("STATE_DIR");
		snprintf(dir, sizeof dir, "%s", env && *env ? env : TASKGATE_STATE_DIR);
	}
	return dir;
}

/* "logFile" (relative to the state tree; "" for none), rotated at "logMaxBytes"
 * keeping "logKeep" old files: applied whenever config.json is (re)read. */
static void use_log_file(void)
{
	const char *f = config_str("logFile", "log/taskgate.log");
	char path[PATH_MAX];
	if (*f && f[0] != '/')
		snprintf(path, sizeof path, "%s/%s", config_state_dir(), f);
	else
		snprintf(path, sizeof path, "%s", f);
	logfile_use(path, config_int("logMaxBytes", 4 << 20, 4096, 1LL << 30),
		    (int)config_int("logKeep", 3, 1, 20));
}

int config_refresh(void)
{
	char path[PATH_MAX];
	struct file_stamp st;
	snprintf(path, sizeof path, "%s/config.json", config_state_dir());
	file_stamp_take(path, &st);
	if (!st.present)
		return -1;
	if (doc && file_stamp_same(&st, &seen))
		return 0;
	yajl_val fresh;
	int rc = store_load(STORE_ROOT, "config", &fresh);
	if (rc != STORE_OK) {
		log_error("config: %s: %s", path, store_strerror(rc));
		return -1;
	}
	if (doc)
		yajl_tree_free(doc);
	doc = fresh;
	seen = st;
	use_log_file();
	return 0;
}

yajl_val config_doc(void)
{
	return doc;
}

void config_free(void)
{
	if (doc)
		yajl_tree_free(doc);
	doc = NULL;
	memset(&seen, 0, sizeof seen);
}

const char *config_str(const char *key, const char *fallback)
{
	return json_str_or(doc, key, fallback);
}

static long long clamp_ll(long long v, long long min, long long max)
{
	return v < min ? min : v > max ? max : v;
}

static double clamp_d(double v, double min, double max)
{
	return v < min ? min : v > max ? max : v;
}

long long config_int(const char *key, long long fallback, long long min, long long max)
{
	return clamp_ll(json_int_or(doc, key, fallback), min, max);
}

double config_num(const char *key, double fallback, double min, double max)
{
	return clamp_d(json_num_or(doc, key, fallback), min, max);
}

bool config_bool(const char *key, bool fallback)
{
	return json_bool_or(doc, key, fallback);
}

bool config_strict_bodies(void)
{
	return config_bool("strictBodies", true);
}

long long config_sect_int(const char *section, const char *key, long long fallback,
			  long long min, long long max)
{
	return clamp_ll(json_int_or(json_get(doc, section), key, fallback), min, max);
}

double config_sect_num(const char *section, const char *key, double fallback, double min,
		       double max)
{
	return clamp_d(json_num_or(json_get(doc, section), key, fallback), min, max);
}

static void token_field(struct jgen *g, const char *key, const char *given, const char *who)
{
	char fresh[65], hash[65], stored[72];
	const char *token = given;
	if (!token || !*token) {
		random_hex(fresh, 24);
		token = fresh;
		printf("%s token: %s\n", who, token);
	}
	sha256_hex(token, strlen(token), hash);
	snprintf(stored, sizeof stored, "sha256:%s", hash);
	jg_kstr(g, key, stored);
}

int config_init_tree(const char *admin_token, const char *client_token,
		     const char *public_url)
{
	if (store_init(config_state_dir()) < 0)
		return -1;
	if (store_exists(STORE_ROOT, "config"))
		return 0;
	struct jgen g;
	struct buf out = BUF_INIT;
	jg_init(&g);
	yajl_gen_config(g.g, yajl_gen_beautify, 1);
	jg_obj(&g);
	token_field(&g, "adminToken", admin_token, "admin");
	token_field(&g, "clientToken", client_token, "client");
	jg_kstr(&g, "publicUrl", public_url && *public_url ? public_url : "http://127.0.0.1:8080");
	jg_kint(&g, "maxBodyBytes", 100 * 1024);
	jg_kbool(&g, "logRequests", false);
	jg_obj_end(&g);
	int rc = jg_finish(&g, &out) == 0 ? store_create(STORE_ROOT, "config", out.data, out.len)
					  : STORE_IO;
	jg_free(&g);
	buf_free(&out);
	if (rc == STORE_EXISTS)
		rc = STORE_OK; /* another process got there first: keep its tokens */
	return rc == STORE_OK ? 0 : -1;
}

void config_public_url(struct buf *out)
{
	const char *base = config_str("publicUrl", "http://127.0.0.1:8080");
	size_t n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	buf_add(out, base, n);
}
