/*
 * mock_payload.c - JSON documents describing a prediction.
 *
 * One place builds every body that carries prediction state (HTTP answers
 * and webhooks alike), so the 202 answer, the webhooks and the sync answer
 * can never disagree about the shape.
 */
#include "mock.h"

#include <stdlib.h>

static void put_timestamp(struct strbuf *out, const char *key, int64_t us)
{
    sb_printf(out, ",\"%s\":", key);
    if (us == 0) {
        sb_puts(out, "null");
        return;
    }
    char ts[40];
    format_iso8601(us, ts);
    sb_printf(out, "\"%s\"", ts);
}

/* output = {"echo": <input>, "server": <name>} on success, else null. An
 * iterator's (outputChunks) is the list of what it yielded so far, as Cog sends
 * it in every webhook: ["<name> chunk 1", ...]. */
char *payload_file_value(const struct prediction *p, unsigned i, bool *is_path)
{
    *is_path = p->file_url[i] == NULL;
    if (!*is_path)
        return xstrdup(p->file_url[i]);
    char dir[128];
    files_dir(p->order, dir, sizeof dir);
    struct strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "%s/%s", dir, p->files[i].name);
    return sb.buf;
}

/* Files (outputFiles): the output is set when the model returns, so it is
 * null until the prediction succeeded; then a string for one file (a Path
 * return type) or a list (List[Path]). Each is the uploaded URL or, with no
 * uploader, the local path (Cog's jsonable_encoder turns a Path into str). */
static void put_file_output(struct strbuf *out, const struct prediction *p)
{
    if (p->status != PRED_SUCCEEDED) {
        sb_puts(out, "null");
        return;
    }
    if (p->nfiles > 1)
        sb_puts(out, "[");
    for (unsigned i = 0; i < p->nfiles; i++) {
        bool is_path;
        char *v = payload_file_value(p, i, &is_path);
        if (i > 0)
            sb_puts(out, ",");
        sb_json_cstr_or_null(out, v);
        free(v);
    }
    if (p->nfiles > 1)
        sb_puts(out, "]");
}

static void put_output(struct strbuf *out, const struct prediction *p)
{
    if (p->nfiles > 0) {
        put_file_output(out, p);
        return;
    }
    if (p->chunks_total > 0 &&
        (p->status == PRED_PROCESSING || p->status == PRED_SUCCEEDED)) {
        sb_puts(out, "[");
        for (unsigned i = 1; i <= p->chunks_done; i++)
            sb_printf(out, "%s\"%s chunk %u\"", i > 1 ? "," : "", g_cfg.name, i);
        sb_puts(out, "]");
        return;
    }
    if (p->status != PRED_SUCCEEDED) {
        sb_puts(out, "null");
        return;
    }
    sb_puts(out, "{\"echo\":");
    sb_puts(out, p->input_json);
    sb_puts(out, ",\"server\":");
    sb_json_cstr_or_null(out, g_cfg.name);
    sb_puts(out, "}");
}

static const char *error_text(const struct prediction *p)
{
    if (p->status == PRED_FAILED && p->upload_failed)
        return "Got error trying to upload output files"; /* runner.py, FileUploadError */
    if (p->status == PRED_FAILED && p->files_error)
        return "mock: cannot write output files";
    if (p->status == PRED_FAILED)
        return "mock failure";
    if (p->status == PRED_CANCELED && p->protocol == PROTO_HTTP_JSON)
        return "canceled";
    return NULL;
}

static void put_logs(struct strbuf *out, const struct prediction *p)
{
    struct strbuf logs;
    sb_init(&logs);
    if (p->started_us)
        sb_printf(&logs, "mock %s: prediction %s started\n", g_cfg.name, p->id);
    if (pred_status_terminal(p->status))
        sb_printf(&logs, "mock %s: prediction %s %s\n", g_cfg.name, p->id,
                  pred_status_name(p->status));
    sb_json_str(out, logs.buf, logs.len);
    sb_free(&logs);
}

/* A Cog object; when after is set, out stops before the output value and
 * after gets the rest. */
static void render_cog_parts(const struct prediction *p, struct strbuf *out,
                             struct strbuf *after)
{
    sb_puts(out, "{\"id\":");
    sb_json_cstr_or_null(out, p->id);
    sb_puts(out, ",\"input\":");
    sb_puts(out, p->input_json);
    sb_puts(out, ",\"output\":");
    if (after)
        out = after;
    else
        put_output(out, p);
    sb_printf(out, ",\"status\":\"%s\",\"logs\":", pred_status_name(p->status));
    put_logs(out, p);
    sb_puts(out, ",\"error\":");
    sb_json_cstr_or_null(out, error_text(p));
    if (pred_status_terminal(p->status) && p->started_us)
        sb_printf(out, ",\"metrics\":{\"predict_time\":%.6f}",
                  (double)(p->completed_us - p->started_us) / 1e6);
    else
        sb_puts(out, ",\"metrics\":{}");
    put_timestamp(out, "created_at", p->created_us);
    put_timestamp(out, "started_at", p->started_us);
    put_timestamp(out, "completed_at", p->completed_us);
    sb_puts(out, ",\"webhook\":");
    sb_json_cstr_or_null(out, p->webhook);
    sb_puts(out, ",\"webhook_events_filter\":[");
    const char *sep = "";
    if (p->want_start) {
        sb_puts(out, "\"start\"");
        sep = ",";
    }
    if (p->want_output) {
        sb_printf(out, "%s\"output\"", sep);
        sep = ",";
    }
    if (p->want_completed)
        sb_printf(out, "%s\"completed\"", sep);
    sb_puts(out, "]}");
}

static void render_cog(const struct prediction *p, struct strbuf *out)
{
    render_cog_parts(p, out, NULL);
}

void payload_render_cog_split(const struct prediction *p, struct strbuf *before,
                              struct strbuf *after)
{
    render_cog_parts(p, before, after);
}

/* Synchronous http-json answer: {"output", "taskId"} or {"error", "taskId"}. */
static void render_http_result(const struct prediction *p, struct strbuf *out)
{
    if (p->status == PRED_SUCCEEDED) {
        sb_puts(out, "{\"output\":");
        put_output(out, p);
    } else {
        sb_puts(out, "{\"error\":");
        sb_json_cstr_or_null(out, error_text(p));
    }
    sb_puts(out, ",\"taskId\":");
    sb_json_cstr_or_null(out, p->task_id);
    sb_puts(out, "}");
}

static void render_http_callback(const struct prediction *p, struct strbuf *out)
{
    sb_puts(out, "{\"taskId\":");
    sb_json_cstr_or_null(out, p->task_id);
    sb_printf(out, ",\"status\":\"%s\",\"output\":", pred_status_name(p->status));
    put_output(out, p);
    sb_puts(out, ",\"error\":");
    sb_json_cstr_or_null(out, error_text(p));
    sb_puts(out, "}");
}

void payload_render(const struct prediction *p, enum render_kind kind,
                    struct strbuf *out)
{
    switch (kind) {
    case RENDER_COG:
        render_cog(p, out);
        break;
    case RENDER_HTTP_RESULT:
        render_http_result(p, out);
        break;
    case RENDER_HTTP_CALLBACK:
        render_http_callback(p, out);
        break;
    }
}
