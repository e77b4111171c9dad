/*
 * mock_webhook.c - outgoing webhooks (Cog) and callbacks (http-json).
 *
 * The mock only ever talks to this machine: the socket-open hook refuses any
 * resolved address outside 127.0.0.0/8 and ::1, whatever URL a test passes,
 * and proxies from the environment are ignored.
 */
#include "mock.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static bool is_loopback(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
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
    if (!is_loopback(&addr->addr, addr->addrlen)) {
        fputs("mock_backend: refusing webhook to a non-loopback address\n", stderr);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* Aborts a transfer in flight once shutdown starts (called about once a
 * second, or more often, during connect and transfer). */
static int abort_on_stop(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
                         curl_off_t ultotal, curl_off_t ulnow)
{
    (void)clientp;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return core_stopping() ? 1 : 0;
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

/* One POST; true on a 2xx answer. */
static bool post_once(CURL *curl, const char *url)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK && code >= 200 && code < 300)
        return true;
    if (!core_stopping())
        fprintf(stderr, "mock_backend: webhook POST %s failed: %s (HTTP %ld)\n",
                url, rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "non-2xx",
                code);
    return false;
}

static void setup_request(CURL *curl, const char *url, const char *json,
                          struct curl_slist *headers)
{
    curl_easy_setopt(curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* ignore *_proxy variables */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we are multi-threaded */
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_loopback_only);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, MOCK_WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, MOCK_WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "taskgate-mock-backend/1");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
}

/* Pause between attempts, cut short by shutdown. */
static void retry_pause(void)
{
    for (unsigned waited = 0; waited < MOCK_WEBHOOK_PAUSE_MS && !core_stopping();
         waited += 10)
        sleep_ms(10);
}

bool webhook_post(const char *url, const char *json, int retries)
{
    CURL *curl = curl_easy_init();
    if (!curl) {
        fputs("mock_backend: curl_easy_init failed\n", stderr);
        return false;
    }
    struct curl_slist *headers = build_headers();
    setup_request(curl, url, json, headers);

    bool ok = false;
    for (int attempt = 0; attempt <= retries && !ok && !core_stopping(); attempt++) {
        if (attempt > 0)
            retry_pause();
        ok = post_once(curl, url);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return ok;
}
