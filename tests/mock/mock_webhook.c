/*
 * mock_webhook.c - outgoing webhooks (Cog) and callbacks (http-json).
 *
 * All transfers run on one libcurl multi handle driven by the core's engine
 * thread (mock_core.c): any number of webhooks can be in flight at once, a
 * slow receiver holds up nobody else, and connections to the same receiver
 * are kept alive and reused (at most WEBHOOK_IDLE_CONNS idle ones, none idle
 * for longer than WEBHOOK_CONN_MAX_AGE_S before reuse). Easy handles are
 * pooled and configured once.
 *
 * The multi handle is driven through its socket interface: libcurl tells us
 * which sockets to watch (an epoll set) and is called only for the sockets
 * that are ready, or when curl_multi_timeout() says its timer has expired, so
 * the cost of a wake-up does not grow with the number of transfers in
 * flight. An eventfd in the same epoll set lets other threads cut a wait
 * short.
 *
 * The mock only ever talks to this machine: the socket-open hook of every
 * handle refuses any resolved address outside 127.0.0.0/8 and ::1, whatever
 * URL a test passes, and proxies from the environment are ignored.
 *
 * Everything here runs on the engine thread, except webhook_wakeup().
 */
#include "mock.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#if LIBCURL_VERSION_NUM < 0x074100
#error "mock_backend needs libcurl 7.65 or later (CURLOPT_MAXAGE_CONN)"
#endif

/* Idle keep-alive connections kept for reuse; more are closed after use. */
#define WEBHOOK_IDLE_CONNS 16L
/* A connection idle for longer is not reused: web servers drop idle
 * keep-alive connections after about 5 s (lighttpd, Apache). */
#define WEBHOOK_CONN_MAX_AGE_S 2L
/* Easy handles kept for reuse once their transfer is over. */
#define WEBHOOK_POOL_MAX 64u
/* Ready sockets taken per epoll_wait() ... */
#define WEBHOOK_MAX_EVENTS 256
/* ... and rounds of them per webhook_perform(): answers are read before the
 * engine starts more webhooks, so transfers cannot pile up unread. */
#define WEBHOOK_MAX_ROUNDS 16

/* One pooled easy handle and the attempt it is carrying. */
struct hook_xfer {
    CURL *curl;
    void *tag;        /* given to webhook_send(), handed back on completion */
    const char *url;  /* for the error message; owned by the caller */
    char errbuf[CURL_ERROR_SIZE];
    struct hook_xfer *prev, *next; /* in the busy list, or next in the free list */
};

static struct {
    CURLM *multi;
    struct curl_slist *headers;
    struct hook_xfer *busy;      /* attempts in flight */
    struct hook_xfer *free_list; /* idle handles for reuse */
    unsigned nfree;
    int epfd;                    /* libcurl's sockets and the wake-up fd */
    int wakefd;                  /* eventfd: webhook_wakeup() */
    struct epoll_event events[WEBHOOK_MAX_EVENTS]; /* from the last wait */
    int nevents;
} g_hooks = {.epfd = -1, .wakefd = -1};

/* Marks a socket as already in the epoll set (curl_multi_assign). */
static char g_registered;

bool webhook_is_loopback(const struct sockaddr *sa, unsigned len)
{
    if (sa->sa_family == AF_INET && len >= (unsigned)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6 && len >= (unsigned)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static curl_socket_t open_loopback_only(void *clientp, curlsocktype purpose,
                                        struct curl_sockaddr *addr)
{
    (void)clientp;
    (void)purpose;
    if (!webhook_is_loopback(&addr->addr, (unsigned)addr->addrlen)) {
        fputs("mock_backend: refusing webhook to a non-loopback address\n", stderr);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static struct curl_slist *build_headers(void)
{
    struct curl_slist *h = NULL, *tmp;
    tmp = curl_slist_append(h, "Content-Type: application/json");
    h = tmp ? tmp : h;
    tmp = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    h = tmp ? tmp : h;
    if (g_cfg.webhook_token) {
        struct strbuf auth;
        sb_init(&auth);
        sb_printf(&auth, "Authorization: Bearer %s", g_cfg.webhook_token);
        tmp = curl_slist_append(h, auth.buf);
        h = tmp ? tmp : h;
        sb_free(&auth);
    }
    return h;
}

/* The options every attempt shares, set once per pooled handle. */
static void setup_handle(struct hook_xfer *x)
{
    CURL *curl = x->curl;
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* ignore *_proxy variables */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we are multi-threaded */
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_loopback_only);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, MOCK_WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, MOCK_WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_MAXAGE_CONN, WEBHOOK_CONN_MAX_AGE_S);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, g_hooks.headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "taskgate-mock-backend/1");
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(curl, CURLOPT_PRIVATE, (void *)x);
}

static struct hook_xfer *xfer_get(void)
{
    struct hook_xfer *x = g_hooks.free_list;
    if (x) {
        g_hooks.free_list = x->next;
        g_hooks.nfree--;
        x->next = NULL;
        return x;
    }
    x = xcalloc(1, sizeof *x);
    x->curl = curl_easy_init();
    if (!x->curl) {
        free(x);
        return NULL;
    }
    setup_handle(x);
    return x;
}

static void xfer_destroy(struct hook_xfer *x)
{
    curl_easy_cleanup(x->curl);
    free(x);
}

static void xfer_put(struct hook_xfer *x)
{
    x->tag = NULL;
    x->url = NULL;
    if (g_hooks.nfree >= WEBHOOK_POOL_MAX) {
        xfer_destroy(x);
        return;
    }
    x->prev = NULL;
    x->next = g_hooks.free_list;
    g_hooks.free_list = x;
    g_hooks.nfree++;
}

/* CURLMOPT_SOCKETFUNCTION: what to watch on socket s. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(g_hooks.epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? EPOLLIN : 0u) |
                (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? EPOLLOUT : 0u);
    ev.data.fd = s;
    /* socketp says whether libcurl has seen the socket before; the epoll
     * set may still disagree (the kernel drops a closed socket from it and
     * the number gets reused), so either operation falls back to the other. */
    int rc = epoll_ctl(g_hooks.epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev);
    if (rc != 0 && errno == ENOENT)
        rc = epoll_ctl(g_hooks.epfd, EPOLL_CTL_ADD, s, &ev);
    else if (rc != 0 && errno == EEXIST)
        rc = epoll_ctl(g_hooks.epfd, EPOLL_CTL_MOD, s, &ev);
    if (rc != 0)
        perror("mock_backend: epoll_ctl");
    else if (!socketp)
        curl_multi_assign(g_hooks.multi, s, &g_registered);
    return 0;
}

/* Milliseconds until libcurl's timer expires (rounded up by libcurl, so 0
 * means expired), or -1 for none. Asked afresh each time rather than kept
 * from a CURLMOPT_TIMERFUNCTION, which is not called again when the timer
 * stays the same, so a timer checked a little early would be lost. */
static long curl_timer_ms(void)
{
    long ms = -1;
    if (curl_multi_timeout(g_hooks.multi, &ms) != CURLM_OK)
        ms = -1;
    return ms;
}

bool webhook_init(void)
{
    g_hooks.epfd = epoll_create1(EPOLL_CLOEXEC);
    g_hooks.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g_hooks.multi = curl_multi_init();
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = g_hooks.wakefd;
    if (g_hooks.epfd < 0 || g_hooks.wakefd < 0 || !g_hooks.multi ||
        epoll_ctl(g_hooks.epfd, EPOLL_CTL_ADD, g_hooks.wakefd, &ev) != 0) {
        webhook_cleanup();
        return false;
    }
    curl_multi_setopt(g_hooks.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(g_hooks.multi, CURLMOPT_MAXCONNECTS, WEBHOOK_IDLE_CONNS);
    g_hooks.headers = build_headers();
    return true;
}

static void busy_add(struct hook_xfer *x)
{
    x->prev = NULL;
    x->next = g_hooks.busy;
    if (g_hooks.busy)
        g_hooks.busy->prev = x;
    g_hooks.busy = x;
}

static void busy_remove(struct hook_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        g_hooks.busy = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Aborts the transfers still in flight (their tags are not reported) and
 * closes every connection. */
void webhook_cleanup(void)
{
    while (g_hooks.busy) {
        struct hook_xfer *x = g_hooks.busy;
        busy_remove(x);
        curl_multi_remove_handle(g_hooks.multi, x->curl);
        xfer_destroy(x);
    }
    while (g_hooks.free_list) {
        struct hook_xfer *x = g_hooks.free_list;
        g_hooks.free_list = x->next;
        xfer_destroy(x);
    }
    if (g_hooks.multi)
        curl_multi_cleanup(g_hooks.multi); /* closes the idle connections */
    curl_slist_free_all(g_hooks.headers);
    if (g_hooks.epfd >= 0)
        close(g_hooks.epfd);
    if (g_hooks.wakefd >= 0)
        close(g_hooks.wakefd);
    memset(&g_hooks, 0, sizeof g_hooks);
    g_hooks.epfd = g_hooks.wakefd = -1;
}

bool webhook_send(const char *url, const char *json, void *tag)
{
    struct hook_xfer *x = xfer_get();
    if (!x) {
        fputs("mock_backend: curl_easy_init failed\n", stderr);
        return false;
    }
    x->tag = tag;
    x->url = url;
    x->errbuf[0] = '\0';
    curl_easy_setopt(x->curl, CURLOPT_URL, url);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    if (curl_multi_add_handle(g_hooks.multi, x->curl) != CURLM_OK) {
        fputs("mock_backend: curl_multi_add_handle failed\n", stderr);
        xfer_put(x);
        return false;
    }
    busy_add(x);
    return true;
}

/* Reports one finished attempt: true on a 2xx answer. */
static void finish_xfer(struct hook_xfer *x, CURLcode rc, webhook_done_fn done)
{
    long code = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    bool ok = rc == CURLE_OK && code >= 200 && code < 300;
    if (!ok && !core_stopping()) {
        const char *why = rc == CURLE_OK ? "non-2xx"
                          : x->errbuf[0] ? x->errbuf
                                         : curl_easy_strerror(rc);
        fprintf(stderr, "mock_backend: webhook POST %s failed: %s (HTTP %ld)\n",
                x->url, why, code);
    }
    void *tag = x->tag;
    busy_remove(x);
    curl_multi_remove_handle(g_hooks.multi, x->curl);
    xfer_put(x);
    done(tag, ok);
}

/* Takes the ready sockets (up to WEBHOOK_MAX_EVENTS) waiting at most
 * timeout_ms; a wake-up only ends the wait. */
static void collect_events(int timeout_ms)
{
    int n = epoll_wait(g_hooks.epfd, g_hooks.events, WEBHOOK_MAX_EVENTS, timeout_ms);
    g_hooks.nevents = 0;
    for (int i = 0; i < n; i++) {
        if (g_hooks.events[i].data.fd == g_hooks.wakefd) {
            uint64_t count;
            if (read(g_hooks.wakefd, &count, sizeof count) < 0 && errno != EAGAIN)
                perror("mock_backend: eventfd read");
        } else {
            g_hooks.events[g_hooks.nevents++] = g_hooks.events[i];
        }
    }
}

void webhook_perform(webhook_done_fn done)
{
    for (int round = 0; round < WEBHOOK_MAX_ROUNDS; round++) {
        int running = 0;
        for (int i = 0; i < g_hooks.nevents; i++) {
            uint32_t ev = g_hooks.events[i].events;
            int bits = ((ev & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                       ((ev & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                       ((ev & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            /* A socket closed meanwhile is unknown to libcurl and ignored. */
            curl_multi_socket_action(g_hooks.multi, g_hooks.events[i].data.fd, bits,
                                     &running);
        }
        bool more = g_hooks.nevents == WEBHOOK_MAX_EVENTS;
        g_hooks.nevents = 0;
        if (curl_timer_ms() == 0) /* also starts the transfers just added */
            curl_multi_socket_action(g_hooks.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        /* Each message is one finished transfer: bounded by those in flight. */
        int left = 0;
        CURLMsg *m;
        while ((m = curl_multi_info_read(g_hooks.multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            CURLcode rc = m->data.result; /* m is invalid once the handle is removed */
            if (priv)
                finish_xfer((struct hook_xfer *)(void *)priv, rc, done);
        }
        if (!more || !g_hooks.busy)
            break;
        collect_events(0);
    }
}

void webhook_wait(int timeout_ms)
{
    long curl_ms = curl_timer_ms();
    if (curl_ms >= 0 && curl_ms < timeout_ms)
        timeout_ms = (int)curl_ms;
    collect_events(timeout_ms < 0 ? 0 : timeout_ms);
}

void webhook_wakeup(void)
{
    uint64_t one = 1;
    if (write(g_hooks.wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
        perror("mock_backend: eventfd write");
}
