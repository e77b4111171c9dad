/*
 * mock_files.c - the output files of a Cog model that returns Path or
 * List[Path] (outputFiles).
 *
 * A file's content depends only on its name and size: a seeded generator
 * (xorshift64*, seeded with the FNV-1a hash of the name), with the 8-byte
 * PNG signature in front for a .png. Each (name, size) is written once under
 * <root>/src/; a prediction's files are hard links to it in <root>/<order>/,
 * as a model writes its outputs into a temp dir of its own. The root is
 * /tmp/cogmock.<pid>, made when files are first set and removed at exit;
 * roots left by mocks killed with SIGKILL are swept when a new one is made.
 */
#include "mock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_BLOCK (64u * 1024u)
/* A bounded walk when the root is removed. */
#define CLEANUP_MAX_ENTRIES (MOCK_MAX_PREDICTIONS * (MOCK_MAX_FILES + 2u) + 1024u)

/* Stale roots of mocks that died by SIGKILL removed per start, at most. */
#define SWEEP_MAX 64u

static char g_root[64];
static bool g_root_made; /* created (lazily, when files are first set) */
static pthread_mutex_t g_root_lock = PTHREAD_MUTEX_INITIALIZER;

static void remove_tree(const char *dir, int depth, unsigned *budget);

bool files_init(void)
{
    snprintf(g_root, sizeof g_root, "/tmp/cogmock.%ld", (long)getpid());
    return true;
}

/* Removes /tmp/cogmock.<pid> dirs whose process is gone (a mock killed with
 * SIGKILL cannot clean up after itself). */
static void sweep_stale(void)
{
    DIR *d = opendir("/tmp");
    if (!d)
        return;
    unsigned removed = 0, budget = CLEANUP_MAX_ENTRIES;
    struct dirent *e;
    for (unsigned seen = 0; removed < SWEEP_MAX && seen < 100000u && (e = readdir(d)) != NULL;
         seen++) {
        const char *digits = e->d_name + 8;
        if (strncmp(e->d_name, "cogmock.", 8) != 0 || !*digits ||
            strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 9)
            continue;
        long pid = strtol(digits, NULL, 10);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/tmp/%s", e->d_name);
        remove_tree(path, 1, &budget);
        removed++;
    }
    closedir(d);
}

/* Creates the root on first use; false if it cannot be made. */
static bool ensure_root(void)
{
    pthread_mutex_lock(&g_root_lock);
    if (!g_root_made && g_root[0]) {
        sweep_stale();
        char src[96];
        snprintf(src, sizeof src, "%s/src", g_root);
        if ((mkdir(g_root, 0700) != 0 && errno != EEXIST) ||
            (mkdir(src, 0700) != 0 && errno != EEXIST))
            fprintf(stderr, "mock_backend: cannot create %s: %s\n", src, strerror(errno));
        else
            g_root_made = true;
    }
    bool ok = g_root_made;
    pthread_mutex_unlock(&g_root_lock);
    return ok;
}

/* Empties dir (files and, depth permitting, subdirectories), then removes it. */
static void remove_tree(const char *dir, int depth, unsigned *budget)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while (*budget > 0 && (e = readdir(d)) != NULL) {
            (*budget)--;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[512];
            int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (n < 0 || (size_t)n >= sizeof path)
                continue;
            if (unlink(path) != 0 && errno == EISDIR && depth > 0)
                remove_tree(path, depth - 1, budget);
        }
        closedir(d);
    }
    rmdir(dir);
}

void files_cleanup(void)
{
    if (!g_root_made)
        return;
    g_root_made = false;
    unsigned budget = CLEANUP_MAX_ENTRIES;
    remove_tree(g_root, 1, &budget);
    g_root[0] = '\0';
}

/* Names are kept to what is safe in a path and in a URL without quoting:
 * letters, digits, '.', '_', '-', '+', not starting with a dot. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MOCK_MAX_FILE_NAME || s[0] == '.')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-+") == n;
}

static bool add_file(struct out_file *out, unsigned *n, const char *name,
                     long long bytes, char *err, size_t errlen)
{
    if (*n >= MOCK_MAX_FILES) {
        snprintf(err, errlen, "at most %u output files", MOCK_MAX_FILES);
        return false;
    }
    if (!valid_name(name)) {
        snprintf(err, errlen, "invalid output file name (1..%u of [A-Za-z0-9._+-], "
                 "not starting with '.')", MOCK_MAX_FILE_NAME);
        return false;
    }
    if (bytes < 0 || bytes > (long long)MOCK_MAX_FILE_BYTES) {
        snprintf(err, errlen, "output file bytes must be 0..%u", MOCK_MAX_FILE_BYTES);
        return false;
    }
    for (unsigned i = 0; i < *n; i++) {
        if (strcmp(out[i].name, name) == 0) {
            snprintf(err, errlen, "duplicate output file name");
            return false;
        }
    }
    snprintf(out[*n].name, sizeof out[*n].name, "%s", name);
    out[*n].bytes = (unsigned)bytes;
    (*n)++;
    return true;
}

bool files_parse_json(yajl_val v, struct out_file *out, unsigned *n, char *err,
                      size_t errlen)
{
    *n = 0;
    if (!v || !YAJL_IS_ARRAY(v)) {
        snprintf(err, errlen, "outputFiles must be a list of {\"name\",\"bytes\"}");
        return false;
    }
    for (size_t i = 0; i < v->u.array.len; i++) {
        yajl_val e = v->u.array.values[i];
        yajl_val name = json_member(e, "name");
        yajl_val bytes = json_member(e, "bytes");
        if (!e || !YAJL_IS_OBJECT(e) || e->u.object.len != 2 || !name ||
            !YAJL_IS_STRING(name) || !bytes || !YAJL_IS_INTEGER(bytes)) {
            snprintf(err, errlen, "outputFiles entries are {\"name\": string, \"bytes\": integer}");
            return false;
        }
        if (!add_file(out, n, YAJL_GET_STRING(name), YAJL_GET_INTEGER(bytes), err, errlen))
            return false;
    }
    return true;
}

bool files_parse_arg(const char *s, struct out_file *out, unsigned *n)
{
    char err[160];
    *n = 0;
    if (!*s)
        return true;
    size_t len = strlen(s);
    if (len > (MOCK_MAX_FILE_NAME + 12u) * MOCK_MAX_FILES)
        return false;
    char *copy = xstrdup(s), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, ",", &save); ok && tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (!colon || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            strlen(colon + 1) > 9) {
            ok = false;
            break;
        }
        *colon = '\0';
        ok = add_file(out, n, tok, strtoll(colon + 1, NULL, 10), err, sizeof err);
    }
    free(copy);
    return ok;
}

/* ---- content ------------------------------------------------------------------ */

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n >= e && strcasecmp(name + n - e, ext) == 0;
}

static void src_path(const struct out_file *f, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/src/%u-%s", g_root, f->bytes, f->name);
}

static bool write_content(const struct out_file *f, const char *path)
{
    uint64_t x = 14695981039346656037ull; /* FNV-1a 64 of the name */
    for (const unsigned char *s = (const unsigned char *)f->name; *s; s++)
        x = (x ^ *s) * 1099511628211ull;
    if (x == 0)
        x = 1;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    bool png = has_ext(f->name, ".png");

    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    if (!out)
        return false;
    unsigned char *buf = xmalloc(FILE_BLOCK);
    bool ok = true;
    for (unsigned done = 0; ok && done < f->bytes;) {
        unsigned n = f->bytes - done < FILE_BLOCK ? f->bytes - done : FILE_BLOCK;
        for (unsigned i = 0; i < n; i += 8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            uint64_t v = x * 2685821657736338717ull;
            for (unsigned b = 0; b < 8 && i + b < n; b++)
                buf[i + b] = (unsigned char)(v >> (8 * b));
        }
        if (png && done == 0)
            memcpy(buf, png_sig, n < 8 ? n : 8);
        ok = fwrite(buf, 1, n, out) == n;
        done += n;
    }
    free(buf);
    ok = (fclose(out) == 0) && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok)
        unlink(tmp);
    return ok;
}

bool files_prepare(const struct out_file *f, unsigned n, char *err, size_t errlen)
{
    if (n > 0 && !ensure_root()) {
        snprintf(err, errlen, "cannot create %s: %s", g_root, strerror(errno));
        return false;
    }
    for (unsigned i = 0; i < n && i < MOCK_MAX_FILES; i++) {
        char path[512];
        src_path(&f[i], path, sizeof path);
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size == (off_t)f[i].bytes)
            continue; /* same name and size: same content */
        if (!ensure_root() || !write_content(&f[i], path)) {
            snprintf(err, errlen, "cannot write output file %s: %s", path, strerror(errno));
            return false;
        }
    }
    return true;
}

void files_dir(uint64_t order, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%llu", g_root, (unsigned long long)order);
}

bool files_materialize(uint64_t order, const struct out_file *f, unsigned n)
{
    char dir[128];
    files_dir(order, dir, sizeof dir);
    if (!ensure_root() || (mkdir(dir, 0700) != 0 && errno != EEXIST))
        return false;
    for (unsigned i = 0; i < n && i < MOCK_MAX_FILES; i++) {
        char src[512], dst[512];
        src_path(&f[i], src, sizeof src);
        snprintf(dst, sizeof dst, "%s/%s", dir, f[i].name);
        if (link(src, dst) != 0 && errno != EEXIST) {
            fprintf(stderr, "mock_backend: cannot link %s: %s\n", dst, strerror(errno));
            return false;
        }
    }
    return true;
}

void files_remove(uint64_t order, const struct out_file *f, unsigned n)
{
    char dir[128];
    files_dir(order, dir, sizeof dir);
    for (unsigned i = 0; i < n && i < MOCK_MAX_FILES; i++) {
        char dst[512];
        snprintf(dst, sizeof dst, "%s/%s", dir, f[i].name);
        unlink(dst);
    }
    rmdir(dir);
}

/* ---- mime types and data URIs ---------------------------------------------------- */

/* Python 3.11's mimetypes defaults (types_map, suffix_map, encodings_map)
 * for the extensions a model is likely to write; Cog's images carry no
 * /etc/mime.types, so these are what guess_type() knows. */
static const struct { const char *ext, *type; } g_types[] = {
    {".png", "image/png"},         {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},       {".jpe", "image/jpeg"},
    {".gif", "image/gif"},         {".bmp", "image/bmp"},
    {".svg", "image/svg+xml"},     {".tif", "image/tiff"},
    {".tiff", "image/tiff"},       {".ico", "image/vnd.microsoft.icon"},
    {".txt", "text/plain"},        {".json", "application/json"},
    {".csv", "text/csv"},          {".html", "text/html"},
    {".htm", "text/html"},         {".xml", "text/xml"},
    {".js", "application/javascript"}, {".css", "text/css"},
    {".wav", "audio/x-wav"},       {".mp3", "audio/mpeg"},
    {".aac", "audio/aac"},         {".opus", "audio/opus"},
    {".mp4", "video/mp4"},         {".webm", "video/webm"},
    {".mov", "video/quicktime"},   {".avi", "video/x-msvideo"},
    {".mpeg", "video/mpeg"},       {".mpg", "video/mpeg"},
    {".pdf", "application/pdf"},   {".zip", "application/zip"},
    {".tar", "application/x-tar"}, {".bin", "application/octet-stream"},
    {".obj", "application/octet-stream"}, {".so", "application/octet-stream"},
};

static const char *lookup(const char *ext, size_t len, bool fold)
{
    for (size_t i = 0; i < sizeof g_types / sizeof g_types[0]; i++) {
        const char *e = g_types[i].ext;
        if (strlen(e) == len && (fold ? strncasecmp(e, ext, len) : strncmp(e, ext, len)) == 0)
            return g_types[i].type;
    }
    return NULL;
}

const char *files_mime(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    /* suffix_map: .tgz and friends are .tar.<compression> */
    if (has_ext(base, ".tgz") || has_ext(base, ".taz") || has_ext(base, ".tz") ||
        has_ext(base, ".tbz2") || has_ext(base, ".txz"))
        return "application/x-tar";
    /* encodings_map: a compression suffix (case-sensitive) is not the type */
    static const char *const enc[] = {".gz", ".Z", ".bz2", ".xz", ".br"};
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        size_t e = strlen(enc[i]);
        if (len > e && strcmp(base + len - e, enc[i]) == 0) {
            len -= e;
            break;
        }
    }
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--)
        if (base[i - 1] == '.') {
            dot = base + i - 1;
            break;
        }
    if (!dot || dot == base)
        return NULL; /* splitext: a leading dot is no extension */
    size_t elen = len - (size_t)(dot - base);
    const char *t = lookup(dot, elen, false);
    return t ? t : lookup(dot, elen, true);
}

bool files_put_data_uri(struct strbuf *sb, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const char *mime = files_mime(path);
    sb_printf(sb, "\"data:%s;base64,", mime ? mime : "None");
    unsigned char *buf = xmalloc(FILE_BLOCK * 3u);
    bool ok = true;
    /* bounded by the file size (64 MiB at most) */
    for (unsigned rounds = 0; rounds <= MOCK_MAX_FILE_BYTES / FILE_BLOCK + 1u; rounds++) {
        size_t have = 0;
        while (have < FILE_BLOCK * 3u) {
            ssize_t r = read(fd, buf + have, FILE_BLOCK * 3u - have);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                ok = false;
            if (r <= 0)
                break;
            have += (size_t)r;
        }
        sb_base64(sb, buf, have);
        if (have < FILE_BLOCK * 3u)
            break;
    }
    free(buf);
    close(fd);
    sb_puts(sb, "\"");
    return ok;
}
