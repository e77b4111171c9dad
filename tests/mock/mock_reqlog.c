/*
 * mock_reqlog.c - the log behind GET /__requests.
 *
 * A ring of the newest MOCK_MAX_REQUESTS requests, so a long test run keeps
 * bounded memory and still sees what the gateway sent most recently.
 */
#include "mock.h"

#include <stdlib.h>
#include <string.h>

struct logged_request {
    char *method;
    char *path;
    char *body;          /* truncated to MOCK_LOG_BODY_MAX bytes */
    size_t body_len;
    char *authorization; /* NULL when the header was absent */
    char *prefer;
    int64_t received_ms;
};

static struct {
    pthread_mutex_t lock;
    struct logged_request *ring; /* MOCK_MAX_REQUESTS entries */
    size_t head;                 /* index of the oldest entry */
    size_t count;
} g_log = {.lock = PTHREAD_MUTEX_INITIALIZER};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void entry_free(struct logged_request *e)
{
    free(e->method);
    free(e->path);
    free(e->body);
    free(e->authorization);
    free(e->prefer);
    memset(e, 0, sizeof *e);
}

void reqlog_init(void)
{
    g_log.ring = xcalloc(MOCK_MAX_REQUESTS, sizeof *g_log.ring);
    g_log.head = g_log.count = 0;
}

void reqlog_reset(void)
{
    pthread_mutex_lock(&g_log.lock);
    for (size_t i = 0; i < g_log.count; i++)
        entry_free(&g_log.ring[(g_log.head + i) % MOCK_MAX_REQUESTS]);
    g_log.head = g_log.count = 0;
    pthread_mutex_unlock(&g_log.lock);
}

void reqlog_destroy(void)
{
    reqlog_reset();
    free(g_log.ring);
    g_log.ring = NULL;
}

void reqlog_add(const char *method, const char *path, const char *body,
                size_t body_len, const char *authorization,
                const char *prefer, int64_t received_ms)
{
    struct logged_request e = {0};
    e.method = xstrdup(method);
    e.path = xstrdup(path);
    e.body_len = body_len > MOCK_LOG_BODY_MAX
                     ? utf8_trim_len(body, MOCK_LOG_BODY_MAX)
                     : body_len;
    e.body = xmalloc(e.body_len + 1);
    memcpy(e.body, body, e.body_len);
    e.body[e.body_len] = '\0';
    e.authorization = dup_or_null(authorization);
    e.prefer = dup_or_null(prefer);
    e.received_ms = received_ms;

    pthread_mutex_lock(&g_log.lock);
    if (g_log.count == MOCK_MAX_REQUESTS) { /* full: drop the oldest */
        entry_free(&g_log.ring[g_log.head]);
        g_log.head = (g_log.head + 1) % MOCK_MAX_REQUESTS;
        g_log.count--;
    }
    g_log.ring[(g_log.head + g_log.count) % MOCK_MAX_REQUESTS] = e;
    g_log.count++;
    pthread_mutex_unlock(&g_log.lock);
}

void reqlog_json(struct strbuf *sb)
{
    pthread_mutex_lock(&g_log.lock);
    sb_puts(sb, "[");
    for (size_t i = 0; i < g_log.count; i++) {
        const struct logged_request *e =
            &g_log.ring[(g_log.head + i) % MOCK_MAX_REQUESTS];
        sb_puts(sb, i ? ",{\"method\":" : "{\"method\":");
        sb_json_cstr_or_null(sb, e->method);
        sb_puts(sb, ",\"path\":");
        sb_json_cstr_or_null(sb, e->path);
        sb_puts(sb, ",\"body\":");
        sb_json_str(sb, e->body, e->body_len);
        sb_puts(sb, ",\"authorization\":");
        sb_json_cstr_or_null(sb, e->authorization);
        sb_puts(sb, ",\"prefer\":");
        sb_json_cstr_or_null(sb, e->prefer);
        sb_printf(sb, ",\"receivedAt\":%lld}", (long long)e->received_ms);
    }
    sb_puts(sb, "]");
    pthread_mutex_unlock(&g_log.lock);
}
