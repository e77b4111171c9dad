/*
 * mock_backend.c - a mock ML inference server (Cog or plain http-json) that
 * the taskgate integration tests start and drive. See README.md here.
 *
 * main() parses options, starts the daemon on 127.0.0.1, publishes the
 * port, then waits for SIGTERM/SIGINT (or the --max-seconds safety net)
 * and tears everything down in order so that valgrind sees no leaks.
 */
#include "mock.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_SECONDS 1800u
#define MAX_MAX_SECONDS 86400u

struct mock_config g_cfg = {
    .protocol = PROTO_COG,
    .name = "mock",
    .max_seconds = DEFAULT_MAX_SECONDS,
};

static void usage(FILE *f)
{
    fputs("usage: mock_backend --protocol cog|http-json [--port N] [--port-file PATH]\n"
          "         [--slots N] [--delay-ms N] [--mode MODE] [--health STATUS]\n"
          "         [--webhook-token TOKEN] [--name NAME] [--async] [--max-seconds N]\n"
          "         [--accept-delay-ms N] [--output-files NAME:BYTES[,...]]\n"
          "         [--upload-url URL] [--setup-ms N] [--release-after-webhook-ms N]\n"
          "MODE: ok fail no-callback busy starting bad-input error500 hang flap\n"
          "STATUS: READY STARTING BUSY SETUP_FAILED DEFUNCT UNHEALTHY\n"
          "Listens on 127.0.0.1 only; prints the bound port on stdout.\n",
          f);
}

/* Strict decimal parse: digits only, 0..max. */
static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
        return false;
    unsigned long v = strtoul(s, NULL, 10);
    if (v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

/* A header value must not smuggle in CR/LF or other control bytes. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool parse_protocol(const char *s, enum protocol *out)
{
    if (strcmp(s, "cog") == 0)
        *out = PROTO_COG;
    else if (strcmp(s, "http-json") == 0)
        *out = PROTO_HTTP_JSON;
    else
        return false;
    return true;
}

/* Returns 0 to run, 1 to exit successfully (--help), 2 on a usage error. */
static int parse_args(int argc, char **argv, struct runtime_cfg *rc)
{
    enum { O_PORT_FILE = 256, O_DELAY, O_WEBHOOK_TOKEN, O_MAX_SECONDS, O_ACCEPT_DELAY,
           O_FILES, O_UPLOAD_URL, O_SETUP_MS, O_RELEASE_MS };
    static const struct option opts[] = {
        {"protocol", required_argument, NULL, 'P'},
        {"port", required_argument, NULL, 'p'},
        {"port-file", required_argument, NULL, O_PORT_FILE},
        {"slots", required_argument, NULL, 's'},
        {"delay-ms", required_argument, NULL, O_DELAY},
        {"mode", required_argument, NULL, 'm'},
        {"health", required_argument, NULL, 'H'},
        {"webhook-token", required_argument, NULL, O_WEBHOOK_TOKEN},
        {"name", required_argument, NULL, 'n'},
        {"async", no_argument, NULL, 'a'},
        {"max-seconds", required_argument, NULL, O_MAX_SECONDS},
        {"accept-delay-ms", required_argument, NULL, O_ACCEPT_DELAY},
        {"output-files", required_argument, NULL, O_FILES},
        {"upload-url", required_argument, NULL, O_UPLOAD_URL},
        {"setup-ms", required_argument, NULL, O_SETUP_MS},
        {"release-after-webhook-ms", required_argument, NULL, O_RELEASE_MS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool have_protocol = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case 'P': ok = have_protocol = parse_protocol(optarg, &g_cfg.protocol); break;
        case 'p': ok = parse_uint(optarg, 65535, &g_cfg.port); break;
        case O_PORT_FILE: g_cfg.port_file = optarg; break;
        case 's': ok = parse_uint(optarg, MOCK_MAX_SLOTS, &rc->slots); break;
        case O_DELAY: ok = parse_uint(optarg, MOCK_MAX_DELAY_MS, &rc->delay_ms); break;
        case 'm': ok = mode_parse(optarg, &rc->mode); break;
        case 'H': ok = health_parse(optarg, &rc->health); break;
        case O_WEBHOOK_TOKEN: g_cfg.webhook_token = optarg; ok = header_safe(optarg); break;
        case 'n': g_cfg.name = optarg; break;
        case 'a': g_cfg.async = true; break;
        case O_MAX_SECONDS: ok = parse_uint(optarg, MAX_MAX_SECONDS, &g_cfg.max_seconds) && g_cfg.max_seconds > 0; break;
        case O_ACCEPT_DELAY: ok = parse_uint(optarg, MOCK_MAX_DELAY_MS, &g_cfg.accept_delay_ms); break;
        case O_FILES: ok = files_parse_arg(optarg, rc->files, &rc->nfiles); break;
        case O_UPLOAD_URL:
            ok = upload_url_ok(optarg);
            if (ok)
                snprintf(rc->upload_url, sizeof rc->upload_url, "%s", optarg);
            break;
        case O_SETUP_MS: ok = parse_uint(optarg, MOCK_MAX_SETUP_MS, &rc->setup_ms); break;
        case O_RELEASE_MS: ok = parse_uint(optarg, MOCK_MAX_RELEASE_MS, &rc->release_after_ms); break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
        if (!ok) {
            fprintf(stderr, "mock_backend: invalid value for %s: %s\n", argv[optind - 1], optarg);
            return 2;
        }
    }
    if (optind < argc || !have_protocol) {
        usage(stderr);
        return 2;
    }
    if (rc->nfiles > 0 && rc->output_chunks > 0) {
        fputs("mock_backend: --output-files and outputChunks cannot both be set\n", stderr);
        return 2;
    }
    if (g_cfg.async && g_cfg.protocol != PROTO_HTTP_JSON) {
        fputs("mock_backend: --async applies to --protocol http-json only\n", stderr);
        return 2;
    }
    return 0;
}

/* Written to a temporary name and renamed, so a test polling for the file
 * never reads a half-written port. */
static bool write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return false;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    bool ok = fprintf(f, "%u\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok)
        unlink(tmp);
    return ok;
}

static void ignore_signal(int sig)
{
    (void)sig; /* never runs while the signal is blocked; see below */
}

/* Blocks the stop signals in this thread before any other thread exists, so
 * every thread inherits the mask and only wait_for_stop() receives them.
 * A handler is installed as well because a signal whose disposition is
 * SIG_IGN is discarded instead of becoming pending, and shells start
 * background jobs ("mock_backend &" in a script) with SIGINT ignored. */
static void block_stop_signals(sigset_t *set)
{
    static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ignore_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(set);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++) {
        sigaction(stop_signals[i], &sa, NULL);
        sigaddset(set, stop_signals[i]);
    }
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN); /* a test closing its socket early is normal */
}

/* Waits for a stop signal, at most --max-seconds (a safety net so that a
 * mock orphaned by a crashed test run goes away by itself). */
static void wait_for_stop(const sigset_t *set)
{
    const int64_t deadline = clock_mono_ms() + (int64_t)g_cfg.max_seconds * 1000;
    const struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
    for (unsigned i = 0; i < 4u * g_cfg.max_seconds + 8u; i++) {
        int sig = sigtimedwait(set, NULL, &tick);
        if (sig > 0) {
            fprintf(stderr, "mock_backend: got signal %d, stopping\n", sig);
            return;
        }
        if (clock_mono_ms() >= deadline)
            break;
    }
    fprintf(stderr, "mock_backend: --max-seconds %u reached, stopping\n", g_cfg.max_seconds);
}

static unsigned bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

int main(int argc, char **argv)
{
    static struct runtime_cfg rc = {
        .mode = MODE_OK, .health = HEALTH_READY, .delay_ms = 50, .slots = 1,
        .exit_on_upload_failure = true};
    int pa = parse_args(argc, argv, &rc);
    if (pa != 0)
        return pa == 1 ? 0 : 2;

    sigset_t stop_set;
    block_stop_signals(&stop_set);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("mock_backend: curl_global_init failed\n", stderr);
        return 1;
    }
    reqlog_init();
    upload_log_init();
    char err[256] = "";
    bool files_ok = files_init();
    if (files_ok && !files_prepare(rc.files, rc.nfiles, err, sizeof err)) {
        fprintf(stderr, "mock_backend: %s\n", err);
        files_ok = false;
    }
    if (!files_ok || !core_init(&rc)) {
        files_cleanup();
        upload_log_destroy();
        reqlog_destroy();
        curl_global_cleanup();
        return 1;
    }

    int status = 0;
    struct MHD_Daemon *d = routes_start_daemon(g_cfg.port);
    unsigned port = d ? bound_port(d) : 0;
    if (!d || port == 0) {
        fprintf(stderr, "mock_backend: cannot listen on 127.0.0.1:%u\n", g_cfg.port);
        status = 1;
    } else if (g_cfg.port_file && !write_port_file(g_cfg.port_file, port)) {
        fprintf(stderr, "mock_backend: cannot write %s: %s\n", g_cfg.port_file, strerror(errno));
        status = 1;
    } else {
        printf("%u\n", port);
        fflush(stdout);
        fprintf(stderr, "mock_backend: %s '%s' on 127.0.0.1:%u mode=%s slots=%u delay=%ums\n",
                g_cfg.protocol == PROTO_COG ? "cog" : "http-json", g_cfg.name, port,
                mode_name(rc.mode), rc.slots, rc.delay_ms);
        wait_for_stop(&stop_set);
    }

    /* Order matters: flag the stop first so blocked handlers return, then
     * stop the daemon (joins connection threads), then join the engine. */
    core_request_stop();
    if (d)
        MHD_stop_daemon(d);
    core_destroy();
    files_cleanup();
    upload_log_destroy();
    reqlog_destroy();
    curl_global_cleanup();
    return status;
}
