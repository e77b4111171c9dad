/*
 * mock_upload.c - Cog's upload of output files to --upload-url, and the log
 * of every attempt (GET /__uploads).
 *
 * Cog 0.9.9 (python/cog/files.py, put_file_to_signed_endpoint) PUTs each
 * file with requests through a session whose adapter retries (runner.py,
 * _make_file_upload_http_client: Retry(total=3, backoff_factor=0.1,
 * status_forcelist=[408, 429, 500, 502, 503, 504], allowed_methods=["PUT"])),
 * follows redirects the way requests does, and fails on a final status of
 * 400 or more (raise_for_status). This file plays that with a blocking
 * libcurl easy handle on the core's uploader thread; libcurl follows no
 * redirect itself, so that requests' rules can be applied.
 *
 * Only loopback addresses are ever contacted, as for webhooks.
 */
#include "mock.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define UPLOAD_CONNECT_TIMEOUT_MS 10000L /* Cog: connect_timeout = 10 */
#define UPLOAD_READ_TIMEOUT_S 15L        /* Cog: read_timeout = 15 */
#define UPLOAD_TOTAL_TIMEOUT_MS 300000L  /* the mock's own bound on one attempt */
#define UPLOAD_RETRIES 3                 /* Retry(total=3) */
#define UPLOAD_MAX_REDIRECTS 30          /* requests' Session.max_redirects */
#define UPLOAD_MAX_RETRY_AFTER_S 30L     /* the mock's bound on Retry-After */
#define UPLOAD_SLEEP_STEP_MS 50u

/* ---- the log ------------------------------------------------------------------- */

struct upload_entry {
    char *prediction_id, *file, *method, *url, *error;
    long status;
    int64_t at_ms;
};

static struct {
    pthread_mutex_t lock;
    struct upload_entry *ring;
    size_t head, count;
} g_log = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void entry_free(struct upload_entry *e)
{
    free(e->prediction_id);
    free(e->file);
    free(e->method);
    free(e->url);
    free(e->error);
    memset(e, 0, sizeof *e);
}

void upload_log_init(void)
{
    g_log.ring = xcalloc(MOCK_MAX_UPLOAD_LOG, sizeof *g_log.ring);
    g_log.head = g_log.count = 0;
}

void upload_log_reset(void)
{
    pthread_mutex_lock(&g_log.lock);
    for (size_t i = 0; g_log.ring && i < MOCK_MAX_UPLOAD_LOG; i++)
        entry_free(&g_log.ring[i]);
    g_log.head = g_log.count = 0;
    pthread_mutex_unlock(&g_log.lock);
}

void upload_log_destroy(void)
{
    upload_log_reset();
    free(g_log.ring);
    g_log.ring = NULL;
}

static void log_attempt(const char *id, const char *file, const char *method,
                        const char *url, long status, const char *error)
{
    pthread_mutex_lock(&g_log.lock);
    size_t slot = (g_log.head + g_log.count) % MOCK_MAX_UPLOAD_LOG;
    if (g_log.count == MOCK_MAX_UPLOAD_LOG)
        g_log.head = (g_log.head + 1) % MOCK_MAX_UPLOAD_LOG; /* drop the oldest */
    else
        g_log.count++;
    struct upload_entry *e = &g_log.ring[slot];
    entry_free(e);
    e->prediction_id = xstrdup(id);
    e->file = xstrdup(file);
    e->method = xstrdup(method);
    e->url = xstrdup(url);
    e->error = error ? xstrdup(error) : NULL;
    e->status = status;
    e->at_ms = clock_epoch_us() / 1000;
    pthread_mutex_unlock(&g_log.lock);
}

void upload_log_json(struct strbuf *sb)
{
    pthread_mutex_lock(&g_log.lock);
    sb_puts(sb, "[");
    for (size_t i = 0; i < g_log.count; i++) {
        const struct upload_entry *e = &g_log.ring[(g_log.head + i) % MOCK_MAX_UPLOAD_LOG];
        sb_puts(sb, i ? ",{\"predictionId\":" : "{\"predictionId\":");
        sb_json_cstr_or_null(sb, e->prediction_id);
        sb_puts(sb, ",\"file\":");
        sb_json_cstr_or_null(sb, e->file);
        sb_puts(sb, ",\"method\":");
        sb_json_cstr_or_null(sb, e->method);
        sb_puts(sb, ",\"url\":");
        sb_json_cstr_or_null(sb, e->url);
        sb_printf(sb, ",\"status\":%ld,\"error\":", e->status);
        sb_json_cstr_or_null(sb, e->error);
        sb_printf(sb, ",\"at\":%lld}", (long long)e->at_ms);
    }
    sb_puts(sb, "]");
    pthread_mutex_unlock(&g_log.lock);
}

bool upload_url_ok(const char *url)
{
    if (!*url)
        return true;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return false;
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return false;
    return strlen(url) <= MOCK_MAX_URL;
}

/* ---- one transfer ------------------------------------------------------------- */

struct xfer {
    FILE *body;              /* NULL: no body */
    struct strbuf location;  /* Location of the last response, "" if none */
};

static curl_socket_t open_loopback_only(void *clientp, curlsocktype purpose,
                                        struct curl_sockaddr *addr)
{
    (void)clientp;
    (void)purpose;
    if (!webhook_is_loopback(&addr->addr, (unsigned)addr->addrlen)) {
        fputs("mock_backend: refusing upload to a non-loopback address\n", stderr);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static size_t read_body(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    return x->body ? fread(buf, 1, size * n, x->body) : 0;
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * n;
}

/* Keeps the Location header of the last response (a status line starts a
 * new one, e.g. after a 100 Continue). */
static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        x->location.len = 0;
        x->location.buf[0] = '\0';
    } else if (len > 9 && strncasecmp(buf, "location:", 9) == 0) {
        const char *v = buf + 9;
        size_t vl = len - 9;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        x->location.len = 0;
        sb_append(&x->location, v, vl < MOCK_MAX_URL ? vl : MOCK_MAX_URL);
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return core_stopping() ? 1 : 0; /* shutdown aborts the transfer */
}

/* Sleeps ms in short steps; false if shutdown began. */
static bool pause_ms(long ms)
{
    for (long slept = 0; slept < ms && !core_stopping(); slept += UPLOAD_SLEEP_STEP_MS)
        sleep_ms(UPLOAD_SLEEP_STEP_MS);
    return !core_stopping();
}

/* One attempt; *status is 0 when no answer came. */
static CURLcode attempt(CURL *h, const char *url, bool put, bool with_body,
                        struct curl_slist *hdrs, struct xfer *x, curl_off_t size,
                        long *status, long *retry_after, char *errbuf)
{
    curl_easy_reset(h); /* keeps the connection cache: keep-alive as a Session */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_loopback_only);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "taskgate-mock-backend/1");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, UPLOAD_CONNECT_TIMEOUT_MS);
    /* requests' read timeout: no byte for 15 s */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, UPLOAD_READ_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, UPLOAD_TOTAL_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (put) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, with_body ? size : (curl_off_t)0);
        if (with_body && x->body)
            rewind(x->body); /* urllib3 rewinds the body for a retry */
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    errbuf[0] = '\0';
    x->location.len = 0;
    x->location.buf[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    *retry_after = 0;
#if LIBCURL_VERSION_NUM >= 0x074200
    curl_off_t ra = 0;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        *retry_after = ra > UPLOAD_MAX_RETRY_AFTER_S ? UPLOAD_MAX_RETRY_AFTER_S : (long)ra;
#endif
    return rc;
}

static bool retry_status(long s)
{
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static bool redirect_status(long s)
{
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

static struct curl_slist *add_header(struct curl_slist *h, const char *line)
{
    struct curl_slist *t = curl_slist_append(h, line);
    return t ? t : h;
}

/* urlparse(url)._replace(query="").geturl(): the query goes, the fragment
 * stays. */
static char *strip_query(const char *url)
{
    const char *q = strchr(url, '?');
    const char *frag = strchr(url, '#');
    if (!q || (frag && frag < q))
        return xstrdup(url);
    struct strbuf sb;
    sb_init(&sb);
    sb_append(&sb, url, (size_t)(q - url));
    if (frag)
        sb_puts(&sb, frag);
    return sb.buf;
}

bool upload_put_file(const char *base, const char *path, const char *name,
                     unsigned bytes, const char *prediction_id, char **final_url)
{
    *final_url = NULL;
    struct xfer x = {.body = fopen(path, "rb")};
    sb_init(&x.location);
    CURL *h = curl_easy_init();
    if (!x.body || !h) {
        log_attempt(prediction_id, name, "PUT", base, 0, "cannot open the file or curl");
        if (x.body)
            fclose(x.body);
        curl_easy_cleanup(h);
        sb_free(&x.location);
        return false;
    }
    /* ensure_trailing_slash(endpoint) + filename */
    struct strbuf url;
    sb_init(&url);
    sb_puts(&url, base);
    if (url.len == 0 || url.buf[url.len - 1] != '/')
        sb_puts(&url, "/");
    sb_puts(&url, name);

    /* Content-Type from mimetypes.guess_type(filename); requests drops a
     * header whose value is None, so an unknown type sends none. */
    const char *mime = files_mime(name);
    struct strbuf line;
    sb_init(&line);
    struct curl_slist *full = NULL, *bare = NULL;
    full = add_header(full, "Expect:");
    bare = add_header(bare, "Expect:");
    if (mime) {
        sb_printf(&line, "Content-Type: %s", mime);
        full = add_header(full, line.buf);
    } else {
        full = add_header(full, "Content-Type:"); /* libcurl adds none for PUT anyway */
    }
    bare = add_header(bare, "Content-Type:");
    line.len = 0;
    sb_printf(&line, "X-Prediction-ID: %s", prediction_id);
    full = add_header(full, line.buf);
    bare = add_header(bare, line.buf);
    sb_free(&line);

    bool put = true, with_body = true, ok = false, done = false;
    char errbuf[CURL_ERROR_SIZE];
    for (int hop = 0; !done && hop <= UPLOAD_MAX_REDIRECTS; hop++) {
        long status = 0, retry_after = 0;
        CURLcode rc = CURLE_OK;
        const char *method = put ? "PUT" : "GET";
        for (int tryno = 0; tryno <= UPLOAD_RETRIES; tryno++) {
            rc = attempt(h, url.buf, put, with_body, with_body ? full : bare, &x,
                         (curl_off_t)bytes, &status, &retry_after, errbuf);
            bool failed = rc != CURLE_OK;
            log_attempt(prediction_id, name, method, url.buf, failed ? 0 : status,
                        failed ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : NULL);
            if (core_stopping() || (!failed && !retry_status(status)) || tryno == UPLOAD_RETRIES)
                break;
            /* urllib3: no sleep before the first retry, then
             * backoff_factor * 2^(n-1); Retry-After wins for 429 and 503. */
            long wait = tryno == 0 ? 0 : 100L << tryno;
            if (!failed && (status == 429 || status == 503) && retry_after > 0)
                wait = retry_after * 1000L;
            if (!pause_ms(wait))
                break;
        }
        if (rc != CURLE_OK || core_stopping()) {
            done = true; /* connection error after the retries: fails */
        } else if (retry_status(status)) {
            done = true; /* MaxRetryError */
        } else if (redirect_status(status) && x.location.len > 0 && hop < UPLOAD_MAX_REDIRECTS) {
            /* requests' resolve_redirects: 302 and 303 become GET; 301,
             * 302 and 303 drop the body and Content-Type; 307 and 308
             * resend the body. */
            char *next = NULL;
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next);
            if (!next) {
                done = true;
                break;
            }
            char *copy = xstrdup(next);
            url.len = 0;
            sb_puts(&url, copy);
            free(copy);
            if (status == 302 || status == 303)
                put = false;
            if (status != 307 && status != 308)
                with_body = false;
        } else if (redirect_status(status) && x.location.len > 0) {
            done = true; /* TooManyRedirects */
        } else {
            done = true;
            ok = status < 400; /* raise_for_status */
            if (ok) /* the Location header if any, else the last URL */
                *final_url = strip_query(x.location.len > 0 ? x.location.buf : url.buf);
        }
    }
    curl_slist_free_all(full);
    curl_slist_free_all(bare);
    curl_easy_cleanup(h);
    fclose(x.body);
    sb_free(&x.location);
    sb_free(&url);
    return ok;
}
