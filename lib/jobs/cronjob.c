#include "jobs/cronjob.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/config.h"
#include "fs/journal.h"
#include "base/log.h"
#include "fs/store.h"
#include "base/util.h"
#include "jobs/failover.h"
#include "sched/server_health.h"

#define MAX_EXTRA	 16
#define FUTURE_MARGIN_MS (3600LL * 1000)

/* ---- options ---- */

static bool parse_long(const char *s, long min, long max, long *out)
{
	if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
		return false;
	long v = strtol(s, NULL, 10);
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static void usage(FILE *f, const char *name, const char *about, const struct cronjob_option *extra)
{
	fprintf(f, "usage: taskgate-%s [--for SECONDS [--every SECONDS]] [--quiet]", name);
	for (const struct cronjob_option *x = extra; x && x->name; x++)
		if (x->arg)
			fprintf(f, " [--%s %s]", x->name, x->arg);
		else
			fprintf(f, " [--%s]", x->name);
	fprintf(f, "\n%s\n\n", about);
	fprintf(f,
		"  --for SECONDS    keep running this long (0..%d; default 0: one run)\n"
		"  --every SECONDS  start a run this often within --for (default %d)\n"
		"  --quiet          print nothing when all is well\n",
		CRONJOB_FOR_MAX, CRONJOB_EVERY_DEFAULT);
	for (const struct cronjob_option *x = extra; x && x->name; x++) {
		char left[64];
		snprintf(left, sizeof left, "--%s%s%s", x->name, x->arg ? " " : "",
			 x->arg ? x->arg : "");
		fprintf(f, "  %-16s %s\n", left, x->help);
	}
	fprintf(f, "  --help           this text\n\n"
		   "The state tree is $STATE_DIR. Exit status (Nagios): 0 OK, 1 WARNING, "
		   "2 CRITICAL,\n3 UNKNOWN; 0 at once when another copy is running.\n");
}

int cronjob_parse(int argc, char **argv, const char *name, const char *about,
		  const struct cronjob_option *extra, struct cronjob_opts *o)
{
	enum { O_FOR = 1000, O_EVERY, O_QUIET, O_HELP, O_EXTRA };
	struct option opts[5 + MAX_EXTRA] = {
	    {"for", required_argument, NULL, O_FOR},
	    {"every", required_argument, NULL, O_EVERY},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"help", no_argument, NULL, O_HELP},
	};
	int nextra = 0;
	for (const struct cronjob_option *x = extra; x && x->name; x++) {
		if (nextra == MAX_EXTRA)
			abort(); /* a program bug, not input */
		opts[4 + nextra] = (struct option){
		    x->name, x->arg ? required_argument : no_argument, NULL, O_EXTRA + nextra};
		nextra++;
	}
	memset(&opts[4 + nextra], 0, sizeof opts[0]);

	o->for_s = 0;
	o->every_s = CRONJOB_EVERY_DEFAULT;
	o->quiet = false;
	optind = 0; /* glibc: a full re-initialisation, so the parser can be reused */
	opterr = 0;
	int c;
	long v;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *opt = argv[optind - 1];
		switch (c) {
		case O_FOR:
			if (!parse_long(optarg, 0, CRONJOB_FOR_MAX, &v))
				goto bad_value;
			o->for_s = (int)v;
			break;
		case O_EVERY:
			if (!parse_long(optarg, 1, CRONJOB_FOR_MAX, &v))
				goto bad_value;
			o->every_s = (int)v;
			break;
		case O_QUIET:
			o->quiet = true;
			log_set_quiet(1);
			break;
		case O_HELP:
			usage(stdout, name, about, extra);
			return CRONJOB_OK;
		default:
			if (c >= O_EXTRA && c < O_EXTRA + nextra) {
				const struct cronjob_option *x = &extra[c - O_EXTRA];
				if (!x->arg) {
					if (x->flag)
						*x->flag = true;
				} else if (!parse_long(optarg, x->min, x->max, &v)) {
					goto bad_value;
				} else if (x->value) {
					*x->value = v;
				}
				break;
			}
			fprintf(stderr, "taskgate-%s: unknown or incomplete option '%s'\n", name,
				opt);
			usage(stderr, name, about, extra);
			return CRONJOB_UNKNOWN;
		}
		continue;
	bad_value:
		fprintf(stderr, "taskgate-%s: invalid value '%s' for %s\n", name, optarg, opt);
		return CRONJOB_UNKNOWN;
	}
	if (optind < argc) {
		fprintf(stderr, "taskgate-%s: unexpected argument '%s'\n", name, argv[optind]);
		usage(stderr, name, about, extra);
		return CRONJOB_UNKNOWN;
	}
	return -1;
}

/* ---- the state tree ---- */

int cronjob_open_state(const char *name, struct buf *why)
{
	char prog[48];
	snprintf(prog, sizeof prog, "taskgate-%s", name);
	log_set_program(prog);
	const char *dir = config_state_dir();
	struct stat st;
	/* store_init() would create a missing tree; a cron line with a wrong STATE_DIR
	 * must say so instead of checking an empty tree of its own making. */
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		buf_printf(why, "state folder %s does not exist (set STATE_DIR)", dir);
		return -1;
	}
	if (store_init(dir) < 0) {
		buf_printf(why, "state tree %s is not usable", dir);
		return -1;
	}
	if (config_refresh() < 0) {
		buf_printf(why, "no readable config.json in %s (run 'taskgate.fcgi init')", dir);
		return -1;
	}
	journal_enable(config_bool("journal", true));
	health_set_change_hook(failover_on_health_change, NULL);
	return 0;
}

/* ---- run lock and stamp ---- */

static void check_name(const char *name)
{
	/* Names are constants in our programs; a bad one is a bug. */
	if (!store_id_valid(name))
		abort();
}

int cronjob_lock(const char *name)
{
	char rel[STORE_ID_MAX + 16];
	check_name(name);
	snprintf(rel, sizeof rel, "run/%s.lock", name);
	return store_lock_path(rel, 0);
}

void cronjob_unlock(int fd)
{
	store_unlock(fd);
}

int cronjob_stamp(const char *name)
{
	char dir[PATH_MAX], file[STORE_ID_MAX + 8], text[32];
	check_name(name);
	snprintf(dir, sizeof dir, "%s/run", store_root());
	snprintf(file, sizeof file, "%s.last", name);
	int n = snprintf(text, sizeof text, "%lld\n", (long long)now_ms());
	return store_write_file(dir, file, text, (size_t)n, false) == STORE_OK ? 0 : -1;
}

int64_t cronjob_last_run(const char *name)
{
	char dir[PATH_MAX], file[STORE_ID_MAX + 8];
	struct buf text = BUF_INIT;
	check_name(name);
	snprintf(dir, sizeof dir, "%s/run", store_root());
	snprintf(file, sizeof file, "%s.last", name);
	/* A few bytes written atomically by cronjob_stamp (rename): no lock needed. */
	long long v = 0;
	if (store_read_file(dir, file, &text) == STORE_OK && text.len) {
		char *end;
		v = strtoll(text.data, &end, 10);
		if (end == text.data || v < 0)
			v = 0;
	}
	buf_free(&text);
	return v;
}

bool cronjob_overdue(const char *name, int interval_s)
{
	int64_t last = cronjob_last_run(name), now = now_ms();
	if (last <= 0 || last > now + FUTURE_MARGIN_MS)
		return true;
	return now - last > (int64_t)interval_s * 1000;
}

int cronjob_piggyback_begin(const char *name, int interval_s)
{
	if (!cronjob_overdue(name, interval_s))
		return -1;
	int fd = cronjob_lock(name);
	if (fd < 0)
		return -1;
	if (!cronjob_overdue(name, interval_s)) {
		cronjob_unlock(fd);
		return -1;
	}
	return fd;
}

void cronjob_piggyback_end(const char *name, int fd, bool success)
{
	if (success)
		cronjob_stamp(name);
	cronjob_unlock(fd);
}

/* ---- the loop ---- */

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	if (stop_flag) {
		/* Second signal: the operator means it. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_flag = 1;
}

bool cronjob_stopping(void)
{
	return stop_flag != 0;
}

int cronjob_run(const char *name, const struct cronjob_opts *o, cronjob_step_fn *step, void *arg)
{
	int fd = cronjob_lock(name);
	if (fd < 0) {
		if (errno == EWOULDBLOCK)
			return CRONJOB_BUSY;
		log_error("cannot take the run lock run/%s.lock", name);
		return CRONJOB_UNKNOWN;
	}
	struct sigaction sa, old_term, old_int;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	stop_flag = 0;

	int64_t start = mono_ms(), end = start + (int64_t)o->for_s * 1000;
	int64_t every = (int64_t)(o->every_s > 0 ? o->every_s : CRONJOB_EVERY_DEFAULT) * 1000;
	int64_t tick = start;
	int code;
	for (;;) {
		code = step(arg);
		if (code != CRONJOB_UNKNOWN)
			cronjob_stamp(name);
		if (o->for_s <= 0 || stop_flag)
			break;
		tick += every;
		int64_t now = mono_ms();
		if (tick < now)
			tick = now; /* a run overran its slot: start the next one now */
		if (tick >= end)
			break; /* leave the last slot to the next cron copy */
		while (!stop_flag && (now = mono_ms()) < tick) {
			int64_t left = tick - now;
			sleep_ms(left > 100 ? 100 : (unsigned)left);
		}
		if (stop_flag)
			break;
	}
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	cronjob_unlock(fd);
	return code;
}
