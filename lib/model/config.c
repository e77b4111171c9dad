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

/* The last config.json that parsed, kept beside the run files: a typo in the
 * operator's edit must not take the tokens with it (and under plain CGI no process
 * lives long enough to remember a good copy in memory). */
#define GOOD_COPY_DIR "run"
#define GOOD_COPY_NAME "config.last-good.json"

static char problem[512]; /* why config.json is not in force, or "" */

const char *config_problem(void)
{
	return problem[0] ? problem : NULL;
}

static yajl_val parse_config(const struct buf *text, struct buf *err)
{
	static const struct json_limits lim = {
		.max_bytes = 1 << 20, .max_depth = 32, .max_string = 1 << 20};
	yajl_val v = json_parse(text->data ? text->data : "", text->len, &lim, err);
	if (v && !YAJL_IS_OBJECT(v)) {
		yajl_tree_free(v);
		buf_adds(err, "the document is not a JSON object");
		return NULL;
	}
	return v;
}

/* Refreshes the good copy after a config.json that parsed, unless it is already
 * newer than that file (one stat per process, so plain CGI pays nothing more). */
static void keep_good_copy(const struct buf *text, const struct file_stamp *config)
{
	char dir[PATH_MAX], path[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/" GOOD_COPY_DIR, config_state_dir());
	snprintf(path, sizeof path, "%s/" GOOD_COPY_NAME, dir);
	struct file_stamp copy;
	file_stamp_take(path, &copy);
	if (copy.present && copy.size == config->size && copy.mtime_ns >= config->mtime_ns)
		return;
	if (store_write_file(dir, GOOD_COPY_NAME, text->data ? text->data : "", text->len,
			     false) != STORE_OK)
		log_error("config: could not keep a copy of the good config.json in %s", path);
}

static yajl_val load_good_copy(void)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/" GOOD_COPY_DIR, config_state_dir());
	struct buf text = BUF_INIT, err = BUF_INIT;
	yajl_val v = NULL;
	if (store_read_file(dir, GOOD_COPY_NAME, &text) == STORE_OK)
		v = parse_config(&text, &err);
	buf_free(&text);
	buf_free(&err);
	return v;
}

int config_refresh(void)
{
	char path[PATH_MAX];
	struct file_stamp st;
	snprintf(path, sizeof path, "%s/config.json", config_state_dir());
	file_stamp_take(path, &st);
	if (!st.present) {
		snprintf(problem, sizeof problem, "config.json is missing");
		return -1;
	}
	if (doc && file_stamp_same(&st, &seen))
		return 0;
	struct buf text = BUF_INIT, err = BUF_INIT;
	int rc = store_read_file(config_state_dir(), "config.json", &text);
	yajl_val fresh = rc == STORE_OK ? parse_config(&text, &err) : NULL;
	bool good = fresh != NULL;
	if (good) {
		keep_good_copy(&text, &st);
		problem[0] = '\0';
	} else {
		/* Never quarantined: the operator's file stays where they can fix it,
		 * and the last good settings (this process's, else the kept copy) stay
		 * in force meanwhile. */
		unsigned line = 0, column = 0;
		if (rc == STORE_OK) {
			json_error_location(text.data ? text.data : "", text.len, &line, &column);
			snprintf(problem, sizeof problem,
				 "config.json does not parse (line %u, column %u: %s)", line,
				 column, buf_str(&err));
		} else {
			snprintf(problem, sizeof problem, "config.json cannot be read (%s)",
				 store_strerror(rc));
		}
		if (!doc)
			fresh = load_good_copy();
	}
	buf_free(&text);
	buf_free(&err);
	seen = st; /* a broken file is not re-read until it changes */
	if (fresh) {
		if (doc)
			yajl_tree_free(doc);
		doc = fresh;
		use_log_file(); /* before the line below: the log file is a setting */
	}
	if (!good) {
		log_error("config: %s: %s; %s", path, problem + strlen("config.json "),
			  doc ? "the last good settings stay in force until it is fixed"
			      : "no earlier good copy either");
		size_t n = strlen(problem);
		snprintf(problem + n, sizeof problem - n, "; %s",
			 doc ? "the last good settings are in force" : "no earlier good copy exists");
	}
	return doc ? 0 : -1;
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
	problem[0] = '\0';
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
