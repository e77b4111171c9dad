/* taskgate.fcgi: the one FastCGI program behind every /api/v2 route, and the only
 * code that calls libfcgi (FCGX_*): lib/web sees a request as plain bytes.
 *
 * Started by a FastCGI manager (lighttpd mod_fastcgi, Apache mod_fcgid) it loops
 * on FCGX_Accept_r; started as plain CGI (FCGX_IsCGI) it serves one request from
 * stdin/stdout. `taskgate.fcgi init` creates the state tree and config.json. */
#include <fcgiapp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "model/auth.h"
#include "model/config.h"
#include "jobs/afterwork.h"
#include "jobs/cronjob.h"
#include "jobs/failover.h"
#include "sched/dispatch.h"
#include "sched/server_health.h"
#include "sched/waiters.h"
#include "jobs/health.h"
#include "fs/journal.h"
#include "fs/reqcount.h"
#include "jobs/rollup.h"
#include "fs/statecheck.h"
#include "jobs/sweep.h"
#include "base/log.h"
#include "fs/store.h"
#include "fs/taskindex.h"
#include "base/util.h"
#include "app.h"

extern char **environ;

#define BODY_HARD_CAP (120 * 1024) /* below mod_fcgid's 128 KiB FcgidMaxRequestLen */
static volatile sig_atomic_t in_request, stop_requested;
static bool worker_wanted, serving_cgi;

bool app_is_cgi(void)
{
	return serving_cgi;
}

void app_wake_worker(void)
{
	worker_wanted = true;
}

/* The work a request leaves (sends, cancels, drains, overdue periodic work) is
 * done by a detached worker (lib/jobs/worker.h), never here: the web server
 * counts this process idle the moment its answer ends. */
static void wake_worker(void)
{
	bool wanted = worker_wanted || (!statecheck_refused() && afterwork_periodic_due());
	worker_wanted = false;
	if (!wanted)
		return;
	/* Under plain CGI the server reads our standard error through a pipe until
	 * every copy is closed: the worker's goes to the tree's log instead. */
	char log_path[PATH_MAX];
	snprintf(log_path, sizeof log_path, "%s/log/worker.log", config_state_dir());
	worker_spawn(&afterwork, serving_cgi ? log_path : NULL);
}

void app_wake_worker_now(void)
{
	/* What a backend is told must rest on what survives a crash. */
	if (journal_commit() == 0) {
		worker_wanted = true;
		wake_worker();
	}
}

int app_store_problem(struct http_resp *rs, int rc, const char *what, const char *id)
{
	switch (rc) {
	case STORE_NOENT:
		return http_problem(rs, 404, NULL, "no %s with id '%s'", what, id);
	case STORE_INVALID:
		return http_problem(rs, 404, NULL, "no %s with that id (ids are 1 to 64 letters, "
						   "digits, '-' and '_')", what);
	case STORE_EXISTS:
		return http_problem(rs, 409, "/id", "a %s with id '%s' already exists", what, id);
	case STORE_BUSY:
		http_header(rs, "Retry-After", "1");
		return http_problem(rs, 503, NULL, "the %s is locked by another request; retry",
				    what);
	case STORE_CORRUPT:
		return http_problem(rs, 500, NULL,
				    "the stored %s was damaged and has been quarantined", what);
	default:
		return http_problem(rs, 500, NULL, "the state tree could not be written");
	}
}

const char app_stripped_authorization[] =
	"the web server removed the Authorization header before taskgate could read it "
	"(suEXEC drops REDIRECT_HTTP_AUTHORIZATION): install the .htaccess of this "
	"release, which also passes it as HTTP_AUTHORIZATION, or set 'CGIPassAuth On' "
	"(README, Shared hosting)";

int app_unauthorized(struct http_req *rq, struct http_resp *rs, const char *challenge,
		     const char *detail)
{
	http_header(rs, "WWW-Authenticate", "%s", challenge);
	if (rq->authorization_stripped)
		return http_problem(rs, 401, "Authorization", "%s; but %s", detail,
				    app_stripped_authorization);
	return http_problem(rs, 401, "Authorization", "%s", detail);
}

/* ---- I/O bindings ---- */

static ssize_t fcgx_read(void *ctx, char *dst, size_t n)
{
	FCGX_Request *r = ctx;
	return FCGX_GetStr(dst, (int)(n > 65536 ? 65536 : n), r->in);
}

static int fcgx_write(void *ctx, const char *src, size_t n)
{
	FCGX_Request *r = ctx;
	return FCGX_PutStr(src, (int)n, r->out) == (int)n ? 0 : -1;
}

static ssize_t stdio_read(void *ctx, char *dst, size_t n)
{
	(void)ctx;
	return (ssize_t)fread(dst, 1, n, stdin);
}

static int stdio_write(void *ctx, const char *src, size_t n)
{
	(void)ctx;
	return fwrite(src, 1, n, stdout) == n ? 0 : -1;
}

/* ---- one request ---- */

static size_t body_limit(void)
{
	return (size_t)config_int("maxBodyBytes", 100 * 1024, 1024, BODY_HARD_CAP);
}

static int authorize(const struct route *r, struct http_req *rq, struct http_resp *rs)
{
	rq->token = auth_bearer(rq->authorization);
	if (!rq->token && (r->flags & R_BASIC))
		rq->token = auth_basic_password(rq->authorization);
	rq->auth = auth_level_of(rq->token);
	if (r->flags & (R_CLIENT | R_ADMIN)) {
		if (!rq->token)
			return app_unauthorized(
				rq, rs, "Bearer realm=\"taskgate\"",
				auth_basic_password(rq->authorization)
					? "this route takes only 'Authorization: Bearer <token>': "
					  "HTTP Basic is for the status page"
					: "this route needs 'Authorization: Bearer <token>'");
		int need = (r->flags & R_ADMIN) ? AUTH_ADMIN : AUTH_CLIENT;
		if (rq->auth < need)
			return http_problem(rs, 403, "Authorization", "the token does not grant %s access",
					    need == AUTH_ADMIN ? "admin" : "client");
	}
	return 0;
}

static int parse_body(const struct route *r, struct http_req *rq, struct http_resp *rs)
{
	if (!(r->flags & (R_JSON_BODY | R_OPT_BODY)))
		return 0;
	if (rq->body.len == 0) {
		if (r->flags & R_OPT_BODY)
			return 0;
		return http_problem(rs, 400, "/", "this route needs a JSON request body");
	}
	if (!http_content_is_json(rq))
		return http_problem(rs, 415, "Content-Type", "the body must be application/json");
	struct buf err = BUF_INIT;
	struct json_limits lim = json_default_limits;
	lim.max_bytes = BODY_HARD_CAP;
	lim.max_depth = 32;
	rq->json = json_parse(rq->body.data, rq->body.len, &lim, &err);
	int status = 0;
	char dup[256];
	if (!rq->json)
		status = http_problem(rs, 400, "/", "the body is not valid JSON: %s", buf_str(&err));
	else if (!YAJL_IS_OBJECT(rq->json))
		status = http_problem(rs, 400, "/", "the body must be a JSON object");
	else if (json_duplicate_member(rq->json, dup, sizeof dup))
		/* Whatever strictBodies says: a proxy in front that keeps the last of two
		 * equal names would see another request than taskgate, which keeps the first. */
		status = http_problem(rs, 400, dup, "the member %s appears twice; send it once",
				      dup);
	buf_free(&err);
	return status;
}

static void handle(const struct http_io *io)
{
	struct http_req rq;
	struct http_resp rs;
	int64_t started_us = mono_us();
	http_resp_init(&rs);
	bool config_ok = config_refresh() == 0;
	journal_enable(config_bool("journal", true));

	int status = http_req_read_head(&rq, io);
	if (!rq.request_id[0])
		random_hex(rq.request_id, 8);
	log_set_request_id(rq.request_id);
	http_header(&rs, "X-Request-Id", "%s", rq.request_id);
	struct buf allow = BUF_INIT;
	int miss = 0;
	const struct route *r = router_match(app_routes, app_route_count, &rq, &miss, &allow);
	/* A route that streams its body reads it itself; every other body is read
	 * whole here, under the one limit. */
	if (status == 0 && !(r && (r->flags & R_STREAM_BODY)))
		status = http_req_read_body(&rq, body_limit());

	/* An unsafe state tree (see lib/statecheck.h) refuses every request. */
	const char *unsafe = statecheck_request(config_state_dir(), io->envp);
	if (unsafe) {
		/* The client learns only that something is wrong; the tree's path and
		 * modes are for the operator, in the log (statecheck logs them). */
		http_problem(&rs, 500, NULL, "taskgate is misconfigured; see the error log");
	} else if (status == 413) {
		http_problem(&rs, 413, "/", "the body is larger than %zu bytes", body_limit());
	} else if (status) {
		http_problem(&rs, status, NULL, "the request body could not be read");
	} else if (!config_ok) {
		const char *why = config_problem();
		if (why && strncmp(why, "config.json is missing", 22) != 0)
			http_problem(&rs, 500, NULL, "taskgate has no usable settings: %s", why);
		else
			http_problem(&rs, 500, NULL, "the state tree has no config.json; run "
						     "'taskgate.fcgi init'");
	} else if (!r && miss == 405) {
		http_header(&rs, "Allow", "%s", buf_str(&allow));
		http_problem(&rs, 405, NULL, "%s is not allowed here; allowed: %s", rq.method,
			     buf_str(&allow));
	} else if (!r) {
		http_problem(&rs, 404, NULL, "no route for this path");
	} else if (authorize(r, &rq, &rs) == 0 && parse_body(r, &rq, &rs) == 0) {
		rs.status = r->handler(&rq, &rs);
	}
	buf_free(&allow);
	/* Group commit: every write this request made becomes durable here, before
	 * the answer acknowledges it. */
	if (journal_commit() < 0) {
		http_resp_free(&rs);
		http_resp_init(&rs);
		http_header(&rs, "X-Request-Id", "%s", rq.request_id);
		http_problem(&rs, 500, NULL, "the state tree could not be made durable");
	}
	/* The path as logged is worked out only for a line that is written: it walks
	 * the route table, which most requests need not pay for twice. */
	bool log_line = config_bool("logRequests", false);
	char logged_path[1024] = "";
	if (rs.status >= 500 || log_line)
		router_log_path(app_routes, app_route_count, rq.path, logged_path,
				sizeof logged_path);
	if (rs.status >= 500)
		log_error("%s %s -> %d", rq.method, logged_path, rs.status);
	rs.head_only = strcmp(rq.method, "HEAD") == 0; /* Content-Length of the GET answer */
	http_resp_send(&rs, io);
	reqcount_add(app_route_table_hash(), r ? (int)(r - app_routes) : (int)app_route_count,
		     rs.status, (mono_us() - started_us));
	if (log_line)
		log_info("%s %s %d %lldms", rq.method, logged_path, rs.status,
			 (long long)((mono_us() - started_us) / 1000));
	http_req_free(&rq);
	http_resp_free(&rs);
}

static void on_term(int sig)
{
	(void)sig;
	/* Between requests nothing is half done: leave now. Inside one, finish it;
	 * the loop checks the flag. */
	if (!in_request)
		_exit(0);
	stop_requested = 1;
}

/* TASKGATE_MAX_PROCESSES: the most processes a pool that grows on demand may
 * reach (mod_fcgid's MaxProcesses, set by the vhost); 0 when absent or not a
 * plain number. */
static int pool_max_from_env(void)
{
	const char *v = getenv("TASKGATE_MAX_PROCESSES");
	char *end;
	if (!v || !*v)
		return 0;
	long n = strtol(v, &end, 10);
	return *end == '\0' && n > 0 && n < 1000000 ? (int)n : 0;
}

static int serve_fastcgi(void)
{
	FCGX_Request req;
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	waiters_register_process(pool_max_from_env());
	while (!stop_requested && FCGX_Accept_r(&req) >= 0) {
		in_request = 1;
		struct http_io io = {fcgx_read, fcgx_write, &req, req.envp};
		handle(&io);
		FCGX_Finish_r(&req);
		wake_worker();
		log_set_request_id(NULL);
		in_request = 0;
	}
	FCGX_Free(&req, 1);
	return 0;
}

static int serve_cgi(void)
{
	struct http_io io = {stdio_read, stdio_write, NULL, environ};
	serving_cgi = true;
	handle(&io);
	fflush(stdout);
	wake_worker();
	journal_close();
	return 0;
}

static int cmd_init(void)
{
	if (config_init_tree(getenv("ADMIN_TOKEN"), getenv("CLIENT_TOKEN"),
			     getenv("PUBLIC_URL")) < 0) {
		fprintf(stderr, "taskgate: cannot initialise %s\n", config_state_dir());
		return 1;
	}
	printf("state tree ready: %s\n", config_state_dir());
	return 0;
}

int main(int argc, char **argv)
{
	log_set_program("taskgate");
	if (argc > 1 && strcmp(argv[1], "init") == 0)
		return cmd_init();
	if (argc > 1) {
		fprintf(stderr, "usage: %s [init]\n", argv[0]);
		return 2;
	}
	if (store_init(config_state_dir()) < 0)
		log_error("state tree %s is not usable", config_state_dir());
	health_set_change_hook(failover_on_health_change, NULL);
	journal_set_batch(true);
	if (FCGX_Init() != 0)
		return 1;
	int rc = FCGX_IsCGI() ? serve_cgi() : serve_fastcgi();
	config_free();
	return rc;
}
