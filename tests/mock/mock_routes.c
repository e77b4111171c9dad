/*
 * mock_routes.c - the HTTP side: daemon setup, routing and handlers for the
 * Cog protocol, the http-json protocol and the /__ control endpoints.
 *
 * libmicrohttpd runs one thread per connection, so a handler may block
 * (sync predictions, hang mode) without holding up other requests. Every
 * blocking wait is bounded and gives up once shutdown starts, because
 * MHD_stop_daemon() joins the connection threads.
 */
#include "mock.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HANG_STEP_MS 50u

/* Per-request state, kept in MHD's con_cls across the handler calls that
 * deliver the upload. */
struct request_ctx {
    struct strbuf body;
    bool too_large;
    int64_t received_ms;
};

/* ---- responses -------------------------------------------------------------- */

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status,
                                 const char *json, const char *hdr_name,
                                 const char *hdr_value)
{
    /* MUST_COPY: MHD copies, so the const cast never leads to a write. */
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(json), (void *)(uintptr_t)json, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (hdr_name)
        MHD_add_response_header(r, hdr_name, hdr_value);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_sb(struct MHD_Connection *c, unsigned status,
                               struct strbuf *sb)
{
    enum MHD_Result ret = send_json(c, status, sb->buf, NULL, NULL);
    sb_free(sb);
    return ret;
}

/* Error body in each protocol's own style: Cog (FastAPI) uses "detail",
 * the http-json protocol uses "error". */
static enum MHD_Result send_error_hdr(struct MHD_Connection *c, unsigned status,
                                      const char *msg, const char *hdr_name,
                                      const char *hdr_value)
{
    struct strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, g_cfg.protocol == PROTO_COG ? "{\"detail\":" : "{\"error\":");
    sb_json_cstr_or_null(&sb, msg);
    sb_puts(&sb, "}");
    enum MHD_Result ret = send_json(c, status, sb.buf, hdr_name, hdr_value);
    sb_free(&sb);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *msg)
{
    return send_error_hdr(c, status, msg, NULL, NULL);
}

/* Holds the request without answering, then drops the connection. Sleeps
 * in short steps so that shutdown is never delayed by more than one step. */
static enum MHD_Result hang(void)
{
    for (unsigned waited = 0; waited < MOCK_HANG_MS && !core_stopping();
         waited += HANG_STEP_MS)
        sleep_ms(HANG_STEP_MS);
    return MHD_NO; /* close without a response */
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ---- shared prediction plumbing -------------------------------------------- */

/* Answers for the modes that refuse every prediction. Returns false when
 * the mode lets the prediction through (ok, fail, no-callback, flap). */
static bool refuse_by_mode(struct MHD_Connection *c, enum mode m,
                           enum MHD_Result *ret)
{
    bool cog = g_cfg.protocol == PROTO_COG;
    switch (m) {
    case MODE_BUSY:
        *ret = cog ? send_error(c, MHD_HTTP_CONFLICT, "Already running a prediction")
                   : send_error_hdr(c, 429, "busy", MHD_HTTP_HEADER_RETRY_AFTER, "1");
        break;
    case MODE_STARTING:
        *ret = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "model is starting");
        break;
    case MODE_BAD_INPUT:
        *ret = cog ? send_json(c, 422,
                               "{\"detail\":[{\"loc\":[\"body\",\"input\"],"
                               "\"msg\":\"mock bad input\",\"type\":\"value_error\"}]}",
                               NULL, NULL)
                   : send_error(c, 422, "mock bad input");
        break;
    case MODE_ERROR500:
        *ret = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "mock error500");
        break;
    case MODE_HANG:
        *ret = hang();
        break;
    default:
        return false;
    }
    core_count_request(true);
    return true;
}

/* Parses the request body into *root (NULL for an empty body, which the
 * callers treat as {}). Returns false with a message in err when it is not a
 * JSON object. The caller frees *root in either case. */
static bool parse_object_body(const struct request_ctx *ctx, yajl_val *root,
                              char *err, size_t errlen)
{
    *root = NULL;
    if (ctx->body.len == 0 || strspn(ctx->body.buf, " \t\r\n") == ctx->body.len)
        return true;
    *root = json_parse(ctx->body.buf, ctx->body.len, err, errlen);
    if (!*root)
        return false;
    if (!YAJL_IS_OBJECT(*root)) {
        snprintf(err, errlen, "body must be a JSON object");
        return false;
    }
    return true;
}

/* Optional string member: absent or null -> NULL; wrong type -> false. */
static bool opt_string(yajl_val obj, const char *key, const char **out,
                       char *err, size_t errlen)
{
    yajl_val v = json_member(obj, key);
    *out = NULL;
    if (!v || YAJL_IS_NULL(v))
        return true;
    if (!YAJL_IS_STRING(v)) {
        snprintf(err, errlen, "\"%s\" must be a string", key);
        return false;
    }
    *out = YAJL_GET_STRING(v);
    return true;
}

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > MOCK_MAX_ID)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x21 || id[i] == '/' || id[i] == 0x7f)
            return false;
    return true;
}

/* ---- Cog protocol ------------------------------------------------------------ */

static enum MHD_Result cog_health(struct MHD_Connection *c)
{
    int64_t setup_started, setup_completed;
    if (core_setup_state(&setup_started, &setup_completed))
        /* Cog: while setup() runs there is no setup result yet, and the
         * health is STARTING whatever else holds (http.py, healthcheck:
         * "setup": {} until _check_setup_result() finds the task ready). */
        return send_json(c, MHD_HTTP_OK, "{\"status\":\"STARTING\",\"setup\":{}}",
                         NULL, NULL);
    enum health h = core_cog_health();
    const char *setup_status = h == HEALTH_STARTING       ? "processing"
                               : h == HEALTH_SETUP_FAILED ? "failed"
                                                          : "succeeded";
    char started[40], completed[40];
    format_iso8601(setup_started, started);
    format_iso8601(setup_completed, completed);

    struct strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "{\"status\":\"%s\",\"setup\":{\"started_at\":\"%s\",", health_name(h),
              started);
    if (h == HEALTH_STARTING)
        sb_puts(&sb, "\"completed_at\":null,");
    else
        sb_printf(&sb, "\"completed_at\":\"%s\",", completed);
    /* Cog keeps setup()'s output and repeats it in every answer: a model that
     * logs while it loads makes every health answer that long. */
    sb_printf(&sb, "\"status\":\"%s\",\"logs\":\"", setup_status);
    static const char line[] = "setup: loading weights, shard 0000 of 9999 done\\n";
    unsigned want = core_get_cfg().setup_logs_bytes;
    for (unsigned n = 0; n < want && n / (sizeof line - 1) < MOCK_MAX_SETUP_LOGS; n += sizeof line - 1)
        sb_puts(&sb, line);
    sb_puts(&sb, "\"}}");
    return send_sb(c, MHD_HTTP_OK, &sb); /* Cog answers 200 in every state */
}

/* The prediction request body, as far as the mock cares. */
struct cog_body {
    yajl_val root;
    const char *id;
    const char *webhook;
    bool want_start, want_completed, want_output;
    struct strbuf input; /* serialized "input" object */
};

static bool parse_events_filter(yajl_val v, struct cog_body *b, char *err,
                                size_t errlen)
{
    /* Absent: Cog sends every event. */
    b->want_start = b->want_completed = b->want_output = true;
    if (!v || YAJL_IS_NULL(v))
        return true;
    if (!YAJL_IS_ARRAY(v)) {
        snprintf(err, errlen, "webhook_events_filter must be an array");
        return false;
    }
    b->want_start = b->want_completed = b->want_output = false;
    for (size_t i = 0; i < v->u.array.len; i++) {
        yajl_val e = v->u.array.values[i];
        const char *s = YAJL_IS_STRING(e) ? YAJL_GET_STRING(e) : "";
        if (strcmp(s, "start") == 0)
            b->want_start = true;
        else if (strcmp(s, "completed") == 0)
            b->want_completed = true;
        else if (strcmp(s, "output") == 0)
            b->want_output = true;
        else if (strcmp(s, "logs") != 0) {
            snprintf(err, errlen, "unknown webhook event in webhook_events_filter");
            return false;
        }
    }
    return true;
}

static bool parse_cog_body(const struct request_ctx *ctx, struct cog_body *b,
                           char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    sb_init(&b->input);
    if (!parse_object_body(ctx, &b->root, err, errlen))
        return false;
    if (!opt_string(b->root, "id", &b->id, err, errlen) ||
        !opt_string(b->root, "webhook", &b->webhook, err, errlen))
        return false;
    if (b->webhook && b->webhook[0] == '\0')
        b->webhook = NULL;
    if (b->id && !valid_id(b->id)) {
        snprintf(err, errlen, "invalid prediction id");
        return false;
    }
    yajl_val input = json_member(b->root, "input");
    if (input && !YAJL_IS_NULL(input) && !YAJL_IS_OBJECT(input)) {
        snprintf(err, errlen, "input must be an object");
        return false;
    }
    if (input && YAJL_IS_OBJECT(input))
        json_write(&b->input, input);
    else
        sb_puts(&b->input, "{}");
    return parse_events_filter(json_member(b->root, "webhook_events_filter"), b,
                               err, errlen);
}

static void cog_body_free(struct cog_body *b)
{
    yajl_tree_free(b->root);
    sb_free(&b->input);
}

static bool wants_async(struct MHD_Connection *c)
{
    const char *prefer = header(c, "Prefer");
    return prefer && strcasestr(prefer, "respond-async") != NULL;
}

/* Sync: block until the prediction ends and answer its final state. */
static enum MHD_Result cog_answer_sync(struct MHD_Connection *c, const char *id)
{
    struct strbuf out;
    sb_init(&out);
    if (!core_wait_and_render(id, RENDER_COG, &out, NULL)) {
        sb_free(&out);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "prediction did not finish");
    }
    return send_sb(c, MHD_HTTP_OK, &out);
}

/* PUT /predictions/<id> (path_id set) and POST /predictions. */
static enum MHD_Result cog_create(struct MHD_Connection *c,
                                  const struct request_ctx *ctx,
                                  const char *path_id)
{
    if (g_cfg.accept_delay_ms)
        sleep_ms(g_cfg.accept_delay_ms); /* a slow PUT, before anything happens */
    enum MHD_Result ret;
    enum mode mode = core_get_cfg().mode; /* one snapshot decides the outcome */
    if (refuse_by_mode(c, mode, &ret))
        return ret;

    struct cog_body b;
    char err[256] = "";
    if (!parse_cog_body(ctx, &b, err, sizeof err)) {
        cog_body_free(&b);
        core_count_request(true);
        return send_error(c, 422, err);
    }
    struct pred_request req = {
        .id = path_id ? path_id : b.id,
        .input_json = b.input.buf,
        .webhook = b.webhook,
        .want_start = b.want_start,
        .want_completed = b.want_completed,
        .want_output = b.want_output,
        .async = wants_async(c),
        .mode = mode,
    };
    struct strbuf out;
    sb_init(&out);
    char id[MOCK_MAX_ID + 1] = "";
    enum start_result sr = core_start(&req, RENDER_COG, &out, id);
    cog_body_free(&b);
    core_count_request(sr == START_NO_SLOT || sr == START_ERROR);

    if (sr == START_NO_SLOT) {
        sb_free(&out);
        return send_error(c, MHD_HTTP_CONFLICT, "Already running a prediction");
    }
    if (sr == START_ERROR) {
        sb_free(&out);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot start prediction");
    }
    if (wants_async(c))
        return send_sb(c, MHD_HTTP_ACCEPTED, &out);
    sb_free(&out);
    return cog_answer_sync(c, id);
}

static enum MHD_Result cog_cancel(struct MHD_Connection *c, const char *id)
{
    int64_t s0, s1;
    if (core_setup_state(&s0, &s1)) {
        /* Cog 0.9.9: during setup the runner is busy but has no prediction,
         * and PredictionRunner.cancel() fails its assert: an unhandled
         * exception, which Starlette answers 500 in plain text. */
        static const char msg[] = "Internal Server Error";
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sizeof msg - 1, (void *)(uintptr_t)msg, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_INTERNAL_SERVER_ERROR, r);
        MHD_destroy_response(r);
        return ret;
    }
    /* Real Cog forgets finished predictions, so those are 404 too. */
    if (core_cancel(id) != CANCEL_OK)
        return send_error(c, MHD_HTTP_NOT_FOUND, "Not Found");
    return send_json(c, MHD_HTTP_OK, "{}", NULL, NULL);
}

static enum MHD_Result route_cog(struct MHD_Connection *c, const char *url,
                                 const char *method, const struct request_ctx *ctx)
{
    bool get = strcmp(method, "GET") == 0;
    bool post = strcmp(method, "POST") == 0;
    bool put = strcmp(method, "PUT") == 0;
    static const char prefix[] = "/predictions/";

    if (strcmp(url, "/health-check") == 0)
        return get ? cog_health(c) : send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    if (strcmp(url, "/predictions") == 0)
        return post ? cog_create(c, ctx, NULL) : send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    if (strncmp(url, prefix, sizeof prefix - 1) != 0)
        return send_error(c, MHD_HTTP_NOT_FOUND, "Not Found");

    const char *rest = url + sizeof prefix - 1;
    const char *slash = strchr(rest, '/');
    if (!slash) {
        if (!valid_id(rest))
            return send_error(c, 422, "invalid prediction id");
        return put ? cog_create(c, ctx, rest) : send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    size_t id_len = (size_t)(slash - rest);
    if (strcmp(slash, "/cancel") != 0 || id_len == 0 || id_len > MOCK_MAX_ID)
        return send_error(c, MHD_HTTP_NOT_FOUND, "Not Found");
    if (!post)
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    char id[MOCK_MAX_ID + 1];
    memcpy(id, rest, id_len);
    id[id_len] = '\0';
    return cog_cancel(c, id);
}

/* ---- http-json protocol ------------------------------------------------------- */

static enum MHD_Result http_health(struct MHD_Connection *c)
{
    if (core_http_health_ok())
        return send_json(c, MHD_HTTP_OK, "{\"status\":\"ok\"}", NULL, NULL);
    return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"status\":\"unavailable\"}",
                     NULL, NULL);
}

static enum MHD_Result http_answer_sync(struct MHD_Connection *c, const char *id)
{
    struct strbuf out;
    sb_init(&out);
    enum pred_status st = PRED_FAILED;
    if (!core_wait_and_render(id, RENDER_HTTP_RESULT, &out, &st)) {
        sb_free(&out);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "task did not finish");
    }
    unsigned status = st == PRED_SUCCEEDED ? MHD_HTTP_OK
                      : st == PRED_FAILED  ? MHD_HTTP_INTERNAL_SERVER_ERROR
                                           : MHD_HTTP_SERVICE_UNAVAILABLE;
    return send_sb(c, status, &out);
}

/* POST /predict {"taskId","model","input","callbackUrl"}. */
static enum MHD_Result http_predict(struct MHD_Connection *c,
                                    const struct request_ctx *ctx)
{
    enum MHD_Result ret;
    enum mode mode = core_get_cfg().mode; /* one snapshot decides the outcome */
    if (refuse_by_mode(c, mode, &ret))
        return ret;

    yajl_val root = NULL;
    const char *task_id = NULL, *callback = NULL;
    char err[256] = "";
    bool ok = parse_object_body(ctx, &root, err, sizeof err) &&
              opt_string(root, "taskId", &task_id, err, sizeof err) &&
              opt_string(root, "callbackUrl", &callback, err, sizeof err);
    if (ok && g_cfg.async && !callback) {
        snprintf(err, sizeof err, "callbackUrl is required (mock runs with --async)");
        ok = false;
    }
    if (!ok) {
        yajl_tree_free(root);
        core_count_request(true);
        return send_error(c, 422, err);
    }

    struct strbuf input;
    sb_init(&input);
    json_write(&input, json_member(root, "input")); /* absent -> null */
    struct pred_request req = {
        .task_id = task_id,
        .input_json = input.buf,
        .webhook = g_cfg.async ? callback : NULL,
        .want_completed = true,
        .mode = mode,
    };
    struct strbuf out;
    sb_init(&out);
    char id[MOCK_MAX_ID + 1] = "";
    enum start_result sr = core_start(&req, RENDER_HTTP_RESULT, &out, id);
    core_count_request(sr != START_NEW);

    struct strbuf accepted;
    sb_init(&accepted);
    sb_puts(&accepted, "{\"accepted\":true,\"taskId\":");
    sb_json_cstr_or_null(&accepted, task_id);
    sb_puts(&accepted, "}");
    yajl_tree_free(root);
    sb_free(&input);
    sb_free(&out);

    if (sr != START_NEW) {
        sb_free(&accepted);
        if (sr == START_NO_SLOT)
            return send_error_hdr(c, 429, "busy", MHD_HTTP_HEADER_RETRY_AFTER, "1");
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot start task");
    }
    if (g_cfg.async)
        return send_sb(c, MHD_HTTP_ACCEPTED, &accepted);
    sb_free(&accepted);
    return http_answer_sync(c, id);
}

static enum MHD_Result route_http_json(struct MHD_Connection *c, const char *url,
                                       const char *method,
                                       const struct request_ctx *ctx)
{
    if (strcmp(url, "/health") == 0)
        return strcmp(method, "GET") == 0
                   ? http_health(c)
                   : send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    if (strcmp(url, "/predict") == 0)
        return strcmp(method, "POST") == 0
                   ? http_predict(c, ctx)
                   : send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    return send_error(c, MHD_HTTP_NOT_FOUND, "Not Found");
}

/* ---- /__ control endpoints ------------------------------------------------------ */

static enum MHD_Result control_update(struct MHD_Connection *c,
                                      const struct request_ctx *ctx)
{
    char err[256] = "";
    yajl_val root = NULL;
    bool ok = parse_object_body(ctx, &root, err, sizeof err) && root &&
              core_apply_control(root, err, sizeof err);
    yajl_tree_free(root);
    if (ok)
        return send_json(c, MHD_HTTP_OK, "{\"ok\":true}", NULL, NULL);
    struct strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "{\"ok\":false,\"error\":");
    sb_json_cstr_or_null(&sb, err[0] ? err : "body must be a JSON object");
    sb_puts(&sb, "}");
    return send_sb(c, MHD_HTTP_BAD_REQUEST, &sb);
}

/* GET /__files/<prediction id>/<name>: the bytes of an output file as the
 * model wrote it, for a test to compare with what the gateway serves. */
static enum MHD_Result control_file(struct MHD_Connection *c, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || (size_t)(slash - rest) > MOCK_MAX_ID)
        return send_json(c, MHD_HTTP_NOT_FOUND, "{\"ok\":false,\"error\":\"Not Found\"}",
                         NULL, NULL);
    char id[MOCK_MAX_ID + 1];
    memcpy(id, rest, (size_t)(slash - rest));
    id[slash - rest] = '\0';
    uint64_t size = 0;
    int fd = core_open_file(id, slash + 1, &size);
    if (fd < 0)
        return send_json(c, MHD_HTTP_NOT_FOUND,
                         "{\"ok\":false,\"error\":\"no such output file (yet)\"}", NULL, NULL);
    struct MHD_Response *r = MHD_create_response_from_fd((size_t)size, fd); /* closes fd */
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    const char *mime = files_mime(slash + 1);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            mime ? mime : "application/octet-stream");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result route_control(struct MHD_Connection *c, const char *url,
                                     const char *method,
                                     const struct request_ctx *ctx)
{
    bool get = strcmp(method, "GET") == 0;
    bool post = strcmp(method, "POST") == 0;
    struct strbuf sb;

    if (post && strcmp(url, "/__control") == 0)
        return control_update(c, ctx);
    if (post && strcmp(url, "/__reset") == 0) {
        reqlog_reset();
        upload_log_reset();
        core_reset();
        return send_json(c, MHD_HTTP_OK, "{\"ok\":true}", NULL, NULL);
    }
    if (get && strcmp(url, "/__requests") == 0) {
        sb_init(&sb);
        reqlog_json(&sb);
        return send_sb(c, MHD_HTTP_OK, &sb);
    }
    if (get && strcmp(url, "/__uploads") == 0) {
        sb_init(&sb);
        upload_log_json(&sb);
        return send_sb(c, MHD_HTTP_OK, &sb);
    }
    if (get && strncmp(url, "/__files/", 9) == 0)
        return control_file(c, url + 9);
    if (get && strcmp(url, "/__stats") == 0) {
        sb_init(&sb);
        core_stats_json(&sb);
        return send_sb(c, MHD_HTTP_OK, &sb);
    }
    return send_json(c, MHD_HTTP_NOT_FOUND, "{\"ok\":false,\"error\":\"Not Found\"}",
                     NULL, NULL);
}

/* ---- MHD callbacks ------------------------------------------------------------ */

static enum MHD_Result dispatch(struct MHD_Connection *c, const char *url,
                                const char *method, const struct request_ctx *ctx)
{
    if (strncmp(url, "/__", 3) == 0)
        return route_control(c, url, method, ctx);

    reqlog_add(method, url, ctx->body.buf, ctx->body.len, header(c, "Authorization"),
               header(c, "Prefer"), ctx->received_ms);
    if (ctx->too_large)
        return send_error(c, 413 /* Content Too Large */, "request body too large");
    return g_cfg.protocol == PROTO_COG ? route_cog(c, url, method, ctx)
                                       : route_http_json(c, url, method, ctx);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct request_ctx *ctx = *con_cls;
    if (!ctx) { /* first call: headers only */
        ctx = xcalloc(1, sizeof *ctx);
        sb_init(&ctx->body);
        ctx->received_ms = clock_epoch_us() / 1000;
        *con_cls = ctx;
        return MHD_YES;
    }
    if (*upload_data_size > 0) { /* a chunk of the body */
        if (ctx->body.len + *upload_data_size > MOCK_MAX_BODY)
            ctx->too_large = true; /* keep reading, answer 413 at the end */
        if (!ctx->too_large)
            sb_append(&ctx->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(c, url, method, ctx);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct request_ctx *ctx = *con_cls;
    if (!ctx)
        return;
    sb_free(&ctx->body);
    free(ctx);
    *con_cls = NULL;
}

struct MHD_Daemon *routes_start_daemon(unsigned port)
{
    /* Loopback only: the tests must never expose the mock to a network. */
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                            MHD_OPTION_CONNECTION_LIMIT, 512u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_END);
}
