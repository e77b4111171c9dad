/*
 * mock.h - shared declarations of the mock inference backend used by the
 * taskgate integration tests (see README.md in this directory).
 *
 * Module map:
 *   mock_backend.c  main(): options, signals, daemon start/stop
 *   mock_routes.c   HTTP routing and the Cog / http-json / control handlers
 *   mock_core.c     runtime settings, slots, predictions and the engine thread
 *   mock_payload.c  JSON documents describing a prediction
 *   mock_reqlog.c   log of received requests (GET /__requests)
 *   mock_webhook.c  outgoing webhook / callback delivery (libcurl)
 *   mock_files.c    output files: content, temp dirs, mime types, data URIs
 *   mock_upload.c   Cog's PUT of output files to --upload-url (libcurl)
 *   mock_util.c     string buffer, JSON helpers, clocks
 */
#ifndef TASKGATE_MOCK_H
#define TASKGATE_MOCK_H

/* A PUT waits at most this long for its start webhook to be answered. */
#define MOCK_START_HOOK_WAIT_MS 60000

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

/* ---- limits: every input and every wait is bounded ---------------------- */

#define MOCK_MAX_BODY (1024u * 1024u)    /* request bodies above -> 413 */
#define MOCK_LOG_BODY_MAX 4096u          /* bytes of body kept in the log */
#define MOCK_MAX_REQUESTS 10000u         /* newest requests kept in the log */
#define MOCK_MAX_PREDICTIONS 10000u      /* prediction records kept */
#define MOCK_MAX_SLOTS 1024u
#define MOCK_MAX_DELAY_MS 600000u        /* 10 minutes */
#define MOCK_MAX_SETUP_LOGS (4u << 20)    /* setupLogsBytes: 4 MiB */
#define MOCK_MAX_CHUNKS 1000u             /* outputChunks */
/* Cog drops a non-terminal webhook sent within this long of the last one
 * (webhook.py: the throttle on everything but start and completed). */
#define MOCK_EVENT_THROTTLE_MS 500
#define MOCK_HANG_MS 60000u              /* "hang" mode holds a request this long */
#define MOCK_MAX_ID 128u                 /* prediction id length */
#define MOCK_MAX_JSON_DEPTH 64           /* nesting accepted in request bodies */
#define MOCK_SYNC_GRACE_MS 30000         /* sync waits: delay + this at most */
#define MOCK_WEBHOOK_TIMEOUT_MS 5000L
#define MOCK_WEBHOOK_RETRIES 3           /* extra attempts for terminal webhooks */
#define MOCK_WEBHOOK_PAUSE_MS 200u
#define MOCK_MAX_FILES 8u                /* outputFiles entries */
#define MOCK_MAX_FILE_BYTES (64u << 20)  /* size of one output file */
#define MOCK_MAX_FILE_NAME 100u          /* output file name length */
#define MOCK_MAX_URL 2048u               /* --upload-url length */
#define MOCK_MAX_SETUP_MS 600000u        /* setupMs */
#define MOCK_MAX_RELEASE_MS 60000u       /* releaseAfterWebhookMs */
#define MOCK_MAX_UPLOAD_LOG 10000u       /* upload attempts kept for /__uploads */

/* ---- enums --------------------------------------------------------------- */

enum protocol { PROTO_COG, PROTO_HTTP_JSON };

enum mode {
    MODE_OK,
    MODE_FAIL,
    MODE_NO_CALLBACK,
    MODE_BUSY,
    MODE_STARTING,
    MODE_BAD_INPUT,
    MODE_ERROR500,
    MODE_HANG,
    MODE_FLAP,
};

/* Cog's health-check statuses. */
enum health {
    HEALTH_READY,
    HEALTH_BUSY,
    HEALTH_STARTING,
    HEALTH_SETUP_FAILED,
    HEALTH_DEFUNCT,
    HEALTH_UNHEALTHY,
};

enum pred_status {
    PRED_STARTING,
    PRED_PROCESSING,
    PRED_SUCCEEDED,
    PRED_FAILED,
    PRED_CANCELED,
};

bool mode_parse(const char *s, enum mode *out);
const char *mode_name(enum mode m);
bool health_parse(const char *s, enum health *out);
const char *health_name(enum health h);
const char *pred_status_name(enum pred_status s);
bool pred_status_terminal(enum pred_status s);

/* One output file of a prediction (outputFiles). */
struct out_file {
    char name[MOCK_MAX_FILE_NAME + 1];
    unsigned bytes;
};

/* ---- immutable configuration (set once in main, read everywhere) --------- */

struct mock_config {
    enum protocol protocol;
    unsigned port;
    const char *port_file;     /* NULL: none */
    const char *name;          /* reported as output.server */
    const char *webhook_token; /* NULL: no Authorization header on webhooks */
    bool async;                /* http-json: 202 + callback */
    unsigned max_seconds;      /* self-stop after this long (safety net) */
    unsigned accept_delay_ms;  /* a create is answered this much later (a slow PUT) */
};

extern struct mock_config g_cfg;

/* ---- mock_util.c --------------------------------------------------------- */

/* Growable NUL-terminated string. Allocation failure aborts the process:
 * this is a test tool, and a half-built response would only hide the OOM. */
struct strbuf {
    char *buf;
    size_t len;
    size_t cap;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_append(struct strbuf *sb, const char *data, size_t len);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s (len bytes) as a quoted JSON string; invalid UTF-8 -> U+FFFD. */
void sb_json_str(struct strbuf *sb, const char *s, size_t len);
/* Appends a quoted JSON string, or null when s is NULL. */
void sb_json_cstr_or_null(struct strbuf *sb, const char *s);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);

/* Largest n <= len such that s[0..n) does not end inside a UTF-8 sequence. */
size_t utf8_trim_len(const char *s, size_t len);

/* Parses a JSON document of at most MOCK_MAX_JSON_DEPTH nesting levels;
 * text[len] must be '\0' (a strbuf guarantees it). Returns NULL (and a
 * message in err) when it is not valid JSON. Free with yajl_tree_free(). */
yajl_val json_parse(const char *text, size_t len, char *err, size_t errlen);
yajl_val json_member(yajl_val obj, const char *key);
/* Serializes a parsed value back to compact JSON. */
void json_write(struct strbuf *sb, yajl_val v);

int64_t clock_mono_ms(void);
int64_t clock_epoch_us(void);
/* ISO 8601 UTC with microseconds, as Cog writes timestamps. */
void format_iso8601(int64_t epoch_us, char out[40]);
void sleep_ms(unsigned ms);

/* Appends the bytes as base64 (no newlines). */
void sb_base64(struct strbuf *sb, const unsigned char *data, size_t len);

/* ---- mock_files.c --------------------------------------------------------- */

/* Creates the mock's temp root /tmp/cogmock.<pid>; false on failure. */
bool files_init(void);
/* Removes the temp root and everything under it (bounded walk). */
void files_cleanup(void);
/* Parses an outputFiles list ([{"name","bytes"}]); false + message. */
bool files_parse_json(yajl_val v, struct out_file *out, unsigned *n,
                      char *err, size_t errlen);
/* Parses the --output-files option: NAME:BYTES[,NAME:BYTES...]. */
bool files_parse_arg(const char *s, struct out_file *out, unsigned *n);
/* Writes the source copy of every file (its content depends only on its
 * name and size), so predictions only link to it; false + message. */
bool files_prepare(const struct out_file *f, unsigned n, char *err, size_t errlen);
/* The directory a prediction's files are written to ("<root>/<order>"). */
void files_dir(uint64_t order, char *out, size_t outlen);
/* Writes a prediction's files into its directory, as Cog's model would. */
bool files_materialize(uint64_t order, const struct out_file *f, unsigned n);
/* Removes a prediction's directory and files. */
void files_remove(uint64_t order, const struct out_file *f, unsigned n);
/* Python 3.11 mimetypes.guess_type(name)[0] with the built-in table; NULL
 * for an unknown type (Python's None). */
const char *files_mime(const char *name);
/* Appends "data:<mime>;base64,<content>" as a JSON string, as Cog's
 * upload_file() does without output_file_prefix (mime "None" when unknown). */
bool files_put_data_uri(struct strbuf *sb, const char *path);

/* ---- mock_upload.c -------------------------------------------------------- */

/* An uploadUrl / --upload-url value: "" (none) or http(s)://... without
 * control characters. */
bool upload_url_ok(const char *url);
void upload_log_init(void);
void upload_log_destroy(void);
void upload_log_json(struct strbuf *sb);
void upload_log_reset(void);
/* Cog's put_file_to_signed_endpoint(): PUTs the file at path to
 * ensure_trailing_slash(base) + name, with the adapter's retries and
 * requests' redirect handling. Blocking; aborts once shutdown begins. On
 * success *final_url (malloc'd) is the URL the output holds. */
bool upload_put_file(const char *base, const char *path, const char *name,
                     unsigned bytes, const char *prediction_id, char **final_url);

/* ---- mock_reqlog.c ------------------------------------------------------- */

void reqlog_init(void);
void reqlog_destroy(void);
void reqlog_add(const char *method, const char *path, const char *body,
                size_t body_len, const char *authorization,
                const char *prefer, int64_t received_ms);
void reqlog_json(struct strbuf *sb);
void reqlog_reset(void);

/* ---- mock_core.c ---------------------------------------------------------- */

/* Settings that POST /__control may change at run time. */
struct runtime_cfg {
    enum mode mode;
    enum health health;
    unsigned delay_ms;
    unsigned slots;
    bool hold; /* running predictions do not end until it is cleared */
    unsigned setup_logs_bytes; /* Cog: setup logs repeated in every health answer */
    unsigned output_chunks;    /* Cog: predictions yield this many outputs (0: one value) */
    struct out_file files[MOCK_MAX_FILES]; /* Cog: the output is these files */
    unsigned nfiles;
    char upload_url[MOCK_MAX_URL + 1];     /* Cog --upload-url; "" for none */
    unsigned setup_ms;         /* Cog: setup() takes this long (STARTING) */
    unsigned release_after_ms; /* Cog: slot held this long after the terminal webhook */
    bool exit_on_upload_failure; /* Cog: a failed upload shuts the server down */
};

/* Where a prediction is in the engine's hands (mock_core.c). */
enum pred_stage {
    STAGE_BEGIN,      /* accepted; the engine has yet to send the start webhook */
    STAGE_START_HOOK, /* start webhook in flight */
    STAGE_RUNNING,    /* waiting for its deadline or a cancel */
    STAGE_HELD,       /* deadline passed while held: waits for a release or a cancel */
    STAGE_CHUNK,      /* an iterator's next output is due */
    STAGE_OUTPUT_HOOK, /* an output webhook in flight; the next chunk follows */
    STAGE_END_HOOK,   /* terminal webhook attempt in flight */
    STAGE_END_PAUSE,  /* pause before the next terminal webhook attempt */
    STAGE_UPLOAD,     /* output files with the uploader thread */
    STAGE_UPLOADED,   /* uploads over: the end is due */
    STAGE_RELEASE,    /* terminal webhook over: the slot is freed when due */
    STAGE_DONE,       /* the engine has let go of it */
};

/* One prediction (Cog) or task (http-json). Owned by the core; fields are
 * read and written under the core lock, except the immutable ones marked. */
struct prediction {
    char id[MOCK_MAX_ID + 1];   /* immutable */
    enum protocol protocol;     /* immutable */
    char *task_id;              /* immutable; http-json taskId or NULL */
    char *input_json;           /* immutable; serialized input */
    char *webhook;              /* immutable; NULL when none */
    bool want_start;            /* immutable; webhook_events_filter */
    bool want_completed;        /* immutable */
    bool want_output;           /* immutable */
    unsigned chunks_total;      /* immutable; 0: the output is one value */
    enum mode mode;             /* immutable; mode snapshot at acceptance */
    unsigned delay_ms;          /* immutable */
    int64_t deadline_mono_ms;   /* immutable */
    uint64_t order;             /* immutable; acceptance number */

    enum pred_status status;
    int64_t created_us, started_us, completed_us;
    bool cancel_requested;
    bool holds_slot;
    unsigned chunks_done;       /* outputs yielded so far */
    int64_t last_event_ms;      /* when the last non-terminal webhook went out */
    int waiters;                /* sync requests waiting on it: pins it */

    /* Output files (Cog, outputFiles), snapshot at acceptance. */
    unsigned nfiles;            /* immutable */
    struct out_file files[MOCK_MAX_FILES]; /* immutable */
    char *upload_url;           /* immutable; async with --upload-url only */
    unsigned release_after_ms;  /* immutable */
    bool async;                 /* immutable; Prefer: respond-async */
    bool files_written;         /* the model has written its files */
    bool files_error;           /* ... or could not */
    bool upload_failed;         /* an upload failed: Cog's FileUploadError */
    bool in_upload;             /* with the uploader thread: pins it */
    char *file_url[MOCK_MAX_FILES]; /* uploaded URL, or NULL: the local path */
    struct prediction *upload_next; /* the uploader's queue */

    /* Engine bookkeeping (mock_core.c). */
    enum pred_stage stage;      /* anything but STAGE_DONE pins it */
    int64_t due_mono_ms;        /* while queued: when the engine acts next */
    size_t queue_idx;           /* index in the engine's queue, or SIZE_MAX */
    char *hook_body;            /* webhook body in flight or awaiting a retry */
    int hook_retries;           /* attempts left after the current one */
    struct prediction *older, *newer; /* the table, in acceptance order */
    struct prediction *id_next;       /* chain of the id index */
};

struct pred_request {
    const char *id;             /* NULL: generate one */
    const char *task_id;
    const char *input_json;
    const char *webhook;
    bool want_start;
    bool want_completed;
    bool want_output;
    bool async;
    enum mode mode;
};

enum start_result { START_NEW, START_EXISTING, START_NO_SLOT, START_ERROR };
enum cancel_result { CANCEL_OK, CANCEL_UNKNOWN, CANCEL_NOT_RUNNING };

/* What to render for a prediction. */
enum render_kind {
    RENDER_COG,          /* Cog prediction object */
    RENDER_HTTP_RESULT,  /* http-json synchronous answer body */
    RENDER_HTTP_CALLBACK /* http-json callback body */
};

/* Starts the engine thread; false (nothing left to free) on failure. */
bool core_init(const struct runtime_cfg *initial);
void core_request_stop(void);
bool core_stopping(void);
void core_destroy(void);

struct runtime_cfg core_get_cfg(void);
/* Applies a POST /__control body; false + message on invalid input. */
bool core_apply_control(yajl_val body, char *err, size_t errlen);
/* Status for GET /health-check, with flap / busy / starting applied. */
enum health core_cog_health(void);
/* Verdict for http-json GET /health. */
bool core_http_health_ok(void);
void core_stats_json(struct strbuf *sb);
void core_reset(void);
/* Counts a prediction-creating request (received) and, if refused, rejected. */
void core_count_request(bool rejected);

/* Accepts a prediction if a slot is free and hands it to the engine. For a
 * known id it only renders the current state (idempotent PUT). 'out' receives
 * the rendering (kind) of the new or existing prediction, id_out its id. */
enum start_result core_start(const struct pred_request *req,
                             enum render_kind kind, struct strbuf *out,
                             char id_out[MOCK_MAX_ID + 1]);
/* Blocks until the prediction ends (bounded), then renders it.
 * Returns false if it did not end (shutdown, timeout, unknown id). */
bool core_wait_and_render(const char *id, enum render_kind kind,
                          struct strbuf *out, enum pred_status *status_out);
enum cancel_result core_cancel(const char *id);
/* True while the simulated setup() runs (setupMs); started/completed get
 * the setup times (epoch us) either way. */
bool core_setup_state(int64_t *started_us, int64_t *completed_us);
/* Opens an output file of the newest prediction with this id, once
 * written; -1 if there is none. */
int core_open_file(const char *id, const char *name, uint64_t *size);

/* ---- mock_payload.c ------------------------------------------------------ */

/* Renders p (caller holds the core lock). */
void payload_render(const struct prediction *p, enum render_kind kind,
                    struct strbuf *out);
/* The local path or URL that output holds for file i (malloc'd); *is_path
 * tells a local path. */
char *payload_file_value(const struct prediction *p, unsigned i, bool *is_path);
/* Renders a Cog object in two parts around its output value, for the sync
 * answer whose output is filled in outside the lock. */
void payload_render_cog_split(const struct prediction *p, struct strbuf *before,
                              struct strbuf *after);

/* ---- mock_webhook.c ------------------------------------------------------- */

/* Reports one finished attempt; ok when it got a 2xx answer. */
typedef void (*webhook_done_fn)(void *tag, bool ok);

/* One libcurl multi handle carries every webhook and callback, with
 * keep-alive connections. Only loopback targets are ever contacted. All but
 * webhook_wakeup() are for the core's engine thread alone. */
bool webhook_init(void);
/* True for 127.0.0.0/8 and ::1 (also v4-mapped): all the mock talks to. */
struct sockaddr;
bool webhook_is_loopback(const struct sockaddr *sa, unsigned len);
/* Aborts the attempts in flight (unreported) and frees everything. */
void webhook_cleanup(void);
/* Starts one POST of json to url; both must stay valid until the attempt
 * is reported. False if it could not be started. */
bool webhook_send(const char *url, const char *json, void *tag);
/* Moves the transfers on without waiting and reports each finished
 * attempt to done(). */
void webhook_perform(webhook_done_fn done);
/* Waits up to timeout_ms for network activity, a libcurl timer or
 * webhook_wakeup(). */
void webhook_wait(int timeout_ms);
/* Cuts a webhook_wait() short; callable from any thread. */
void webhook_wakeup(void);

/* ---- mock_routes.c -------------------------------------------------------- */

struct MHD_Daemon;
/* Starts the HTTP daemon on 127.0.0.1:port; NULL on failure. */
struct MHD_Daemon *routes_start_daemon(unsigned port);

#endif /* TASKGATE_MOCK_H */
