/*
 * mock_util.c - small helpers: string buffer, JSON in/out, clocks, names.
 */
#include "mock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- memory --------------------------------------------------------------- */

static void die_oom(void)
{
    fputs("mock_backend: out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die_oom();
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        die_oom();
    return p;
}

/* ---- string buffer -------------------------------------------------------- */

void sb_init(struct strbuf *sb)
{
    sb->cap = 256;
    sb->len = 0;
    sb->buf = xmalloc(sb->cap);
    sb->buf[0] = '\0';
}

void sb_free(struct strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

static void sb_reserve(struct strbuf *sb, size_t extra)
{
    if (extra >= SIZE_MAX / 2 - sb->len)
        die_oom();
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need)
        cap *= 2; /* terminates: need < SIZE_MAX / 2 */
    char *p = realloc(sb->buf, cap);
    if (!p)
        die_oom();
    sb->buf = p;
    sb->cap = cap;
}

void sb_append(struct strbuf *sb, const char *data, size_t len)
{
    sb_reserve(sb, len);
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void sb_puts(struct strbuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* ---- UTF-8 ----------------------------------------------------------------- */

/* Length of a well-formed UTF-8 sequence at s (avail bytes), 0 if invalid.
 * Rejects overlong forms and surrogates so the output is always valid JSON
 * text for strict decoders (Python's json module, for one). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

size_t utf8_trim_len(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0)
        return 0;
    size_t j = len - 1;
    for (int k = 0; k < 3 && j > 0 && (s[j] & 0xC0) == 0x80; k++)
        j--;
    unsigned char lead = s[j];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return j + need > len ? j : len;
}

void sb_json_str(struct strbuf *sb, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    sb_append(sb, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_append(sb, esc, 2);
            i++;
        } else if (c < 0x20) {
            const char *esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (esc)
                sb_append(sb, esc, 2);
            else
                sb_printf(sb, "\\u%04x", c);
            i++;
        } else {
            size_t n = utf8_seq_len(s + i, len - i);
            if (n == 0) {
                sb_puts(sb, "\\ufffd");
                i++;
            } else {
                sb_append(sb, (const char *)s + i, n);
                i += n;
            }
        }
    }
    sb_append(sb, "\"", 1);
}

void sb_json_cstr_or_null(struct strbuf *sb, const char *s)
{
    if (s)
        sb_json_str(sb, s, strlen(s));
    else
        sb_puts(sb, "null");
}

/* ---- JSON ------------------------------------------------------------------ */

/* yajl_tree_free() recurses once per nesting level, so a body made of a
 * million '[' would overflow a connection thread's stack. Check the depth
 * with a flat scan before handing the text to yajl. */
static bool json_depth_ok(const char *s, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

yajl_val json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "NUL byte in JSON body");
        return NULL;
    }
    if (!json_depth_ok(text, len, MOCK_MAX_JSON_DEPTH)) {
        snprintf(err, errlen, "JSON nested deeper than %d", MOCK_MAX_JSON_DEPTH);
        return NULL;
    }
    char yerr[256] = "";
    yajl_val v = yajl_tree_parse(text, yerr, sizeof yerr);
    if (!v) {
        /* yajl's message spans lines; keep the first one. */
        yerr[strcspn(yerr, "\n")] = '\0';
        snprintf(err, errlen, "invalid JSON: %s", yerr[0] ? yerr : "parse error");
    }
    return v;
}

yajl_val json_member(yajl_val obj, const char *key)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

/* Recursion depth is bounded by json_depth_ok() at parse time. */
void json_write(struct strbuf *sb, yajl_val v)
{
    if (!v || YAJL_IS_NULL(v)) {
        sb_puts(sb, "null");
    } else if (YAJL_IS_TRUE(v)) {
        sb_puts(sb, "true");
    } else if (YAJL_IS_FALSE(v)) {
        sb_puts(sb, "false");
    } else if (YAJL_IS_NUMBER(v)) {
        sb_puts(sb, YAJL_GET_NUMBER(v)); /* raw text keeps big/precise numbers */
    } else if (YAJL_IS_STRING(v)) {
        const char *s = YAJL_GET_STRING(v);
        sb_json_str(sb, s, strlen(s));
    } else if (YAJL_IS_ARRAY(v)) {
        sb_puts(sb, "[");
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                sb_puts(sb, ",");
            json_write(sb, v->u.array.values[i]);
        }
        sb_puts(sb, "]");
    } else if (YAJL_IS_OBJECT(v)) {
        sb_puts(sb, "{");
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            if (i)
                sb_puts(sb, ",");
            sb_json_str(sb, k, strlen(k));
            sb_puts(sb, ":");
            json_write(sb, v->u.object.values[i]);
        }
        sb_puts(sb, "}");
    } else {
        sb_puts(sb, "null");
    }
}

/* ---- clocks ---------------------------------------------------------------- */

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_epoch_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void format_iso8601(int64_t epoch_us, char out[40])
{
    time_t secs = (time_t)(epoch_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%06ld+00:00", date, (long)(epoch_us % 1000000));
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* signals are blocked in all threads but main's wait */
}

/* ---- enum names ------------------------------------------------------------ */

static const char *const mode_names[] = {
    [MODE_OK] = "ok",
    [MODE_FAIL] = "fail",
    [MODE_NO_CALLBACK] = "no-callback",
    [MODE_BUSY] = "busy",
    [MODE_STARTING] = "starting",
    [MODE_BAD_INPUT] = "bad-input",
    [MODE_ERROR500] = "error500",
    [MODE_HANG] = "hang",
    [MODE_FLAP] = "flap",
};

static const char *const health_names[] = {
    [HEALTH_READY] = "READY",
    [HEALTH_BUSY] = "BUSY",
    [HEALTH_STARTING] = "STARTING",
    [HEALTH_SETUP_FAILED] = "SETUP_FAILED",
    [HEALTH_DEFUNCT] = "DEFUNCT",
    [HEALTH_UNHEALTHY] = "UNHEALTHY",
};

static const char *const status_names[] = {
    [PRED_STARTING] = "starting",
    [PRED_PROCESSING] = "processing",
    [PRED_SUCCEEDED] = "succeeded",
    [PRED_FAILED] = "failed",
    [PRED_CANCELED] = "canceled",
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

bool mode_parse(const char *s, enum mode *out)
{
    for (size_t i = 0; i < COUNT_OF(mode_names); i++)
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (enum mode)i;
            return true;
        }
    return false;
}

const char *mode_name(enum mode m)
{
    return (size_t)m < COUNT_OF(mode_names) ? mode_names[m] : "?";
}

bool health_parse(const char *s, enum health *out)
{
    for (size_t i = 0; i < COUNT_OF(health_names); i++)
        if (strcasecmp(s, health_names[i]) == 0) {
            *out = (enum health)i;
            return true;
        }
    return false;
}

const char *health_name(enum health h)
{
    return (size_t)h < COUNT_OF(health_names) ? health_names[h] : "?";
}

const char *pred_status_name(enum pred_status s)
{
    return (size_t)s < COUNT_OF(status_names) ? status_names[s] : "?";
}

bool pred_status_terminal(enum pred_status s)
{
    return s == PRED_SUCCEEDED || s == PRED_FAILED || s == PRED_CANCELED;
}

void sb_base64(struct strbuf *sb, const unsigned char *data, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4 * 1024];
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
        if (o + 4 > sizeof out) {
            sb_append(sb, out, o);
            o = 0;
        }
    }
    sb_append(sb, out, o);
}
