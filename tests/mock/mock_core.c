/*
 * mock_core.c - runtime settings, slots, predictions and the engine thread.
 *
 * A prediction lives: starting -> processing (start webhook) -> wait delay
 * -> terminal status (slot freed) -> terminal webhook (retried). The thread
 * that accepts it marks it processing, unless a start webhook has to go out
 * first; from then on one engine thread plays every prediction. It keeps
 * those it has to act on in a queue ordered by due time (a binary heap) and
 * sleeps in webhook_wait() until the next one is due, a webhook attempt makes
 * progress, or another thread queues something due sooner (a new prediction,
 * a cancel) or shuts down. Webhooks run concurrently on one libcurl multi
 * handle (mock_webhook.c), so a slow receiver delays nothing but its own
 * prediction's later webhooks, as when every prediction had a thread of its
 * own. Synchronous requests simply wait for the terminal status, so sync and
 * async predictions share one code path.
 *
 * One mutex guards everything here; one condition variable (monotonic clock)
 * is broadcast on every state change. The prediction table is a list in
 * acceptance order (eviction takes the oldest) with a hash index on the id,
 * so no request costs a walk over the 10000 records kept.
 */
#include "mock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Upper bound on wake-ups in any wait loop; each loop is also bounded by a
 * deadline, this only guards against a livelock bug turning into a spin. */
#define MAX_WAKEUPS 1000000u
/* POST .../cancel waits at most this long for the engine to settle it. */
#define CANCEL_SETTLE_MS 2000
/* Buckets of the id index: a power of two above MOCK_MAX_PREDICTIONS. */
#define ID_BUCKETS 16384u
/* The engine sleeps at most this long when nothing is due. */
#define ENGINE_IDLE_MS 1000
#define NOT_QUEUED SIZE_MAX

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct runtime_cfg cfg;
    unsigned flap_count;
    unsigned active, max_active;
    uint64_t completed, cancelled, received, rejected;
    uint64_t webhooks_ok, webhooks_failed;
    uint64_t uploads_ok, uploads_failed;
    /* the simulated setup() (setupMs) */
    int64_t setup_start_ms, setup_start_us;
    /* the uploader thread and its queue (FIFO) */
    pthread_t uploader;
    bool uploader_running;
    struct prediction *upload_head, *upload_tail;
    uint64_t seq, order;
    /* the table: oldest first, at most MOCK_MAX_PREDICTIONS records */
    struct prediction *oldest, *newest;
    struct prediction **ids; /* ID_BUCKETS chains, newest first */
    size_t npreds;
    /* the engine */
    pthread_t engine;
    bool engine_running;     /* its thread runs and has not left its loop */
    bool engine_asleep;      /* in webhook_wait() ... */
    int64_t engine_wake_ms;  /* ... until then at the latest */
    bool wake_pending;       /* a wake-up was sent since it fell asleep */
    struct prediction **queue; /* min-heap on (due_mono_ms, order) */
    size_t nqueue;
} g_core = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Readable without the lock so that long waits outside it (hang mode) can
 * notice shutdown. */
static atomic_bool g_stop;

static void *engine_main(void *arg);
static void *uploader_main(void *arg);

/* ---- lifecycle ------------------------------------------------------------- */

bool core_init(const struct runtime_cfg *initial)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_core.changed, &attr);
    pthread_condattr_destroy(&attr);
    g_core.cfg = *initial;
    g_core.ids = xcalloc(ID_BUCKETS, sizeof *g_core.ids);
    g_core.queue = xcalloc(MOCK_MAX_PREDICTIONS, sizeof *g_core.queue);
    atomic_store(&g_stop, false);
    g_core.setup_start_ms = clock_mono_ms();
    g_core.setup_start_us = clock_epoch_us();
    g_core.engine_running = true; /* before the thread can clear it */
    if (!webhook_init()) {
        fputs("mock_backend: cannot set up webhooks (epoll, eventfd, libcurl)\n", stderr);
    } else if (pthread_create(&g_core.engine, NULL, engine_main, NULL) != 0) {
        fputs("mock_backend: cannot start the engine thread\n", stderr);
        webhook_cleanup();
    } else if (pthread_create(&g_core.uploader, NULL, uploader_main, NULL) != 0) {
        fputs("mock_backend: cannot start the uploader thread\n", stderr);
        core_request_stop();
        pthread_join(g_core.engine, NULL);
        webhook_cleanup();
    } else {
        g_core.uploader_running = true;
        return true;
    }
    g_core.engine_running = false;
    free(g_core.ids);
    free(g_core.queue);
    g_core.ids = NULL;
    g_core.queue = NULL;
    pthread_cond_destroy(&g_core.changed);
    return false;
}

/* Sends the engine out of webhook_wait() if it sleeps there past due_ms. */
static void wake_engine_locked(int64_t due_ms)
{
    if (g_core.engine_asleep && !g_core.wake_pending && due_ms < g_core.engine_wake_ms) {
        g_core.wake_pending = true;
        webhook_wakeup();
    }
}

void core_request_stop(void)
{
    pthread_mutex_lock(&g_core.lock);
    atomic_store(&g_stop, true);
    pthread_cond_broadcast(&g_core.changed);
    wake_engine_locked(INT64_MIN);
    pthread_mutex_unlock(&g_core.lock);
}

bool core_stopping(void)
{
    return atomic_load(&g_stop);
}

static void prediction_free(struct prediction *p)
{
    if (p->files_written)
        files_remove(p->order, p->files, p->nfiles);
    for (unsigned i = 0; i < p->nfiles; i++)
        free(p->file_url[i]);
    free(p->upload_url);
    free(p->task_id);
    free(p->input_json);
    free(p->webhook);
    free(p->hook_body);
    free(p);
}

/* Call only after the HTTP daemon is stopped: then only the engine runs,
 * and it leaves its loop once the stop flag is up. The transfers it left in
 * flight still point into the records, so they go first. */
void core_destroy(void)
{
    core_request_stop();
    pthread_join(g_core.engine, NULL);
    if (g_core.uploader_running)
        pthread_join(g_core.uploader, NULL);
    g_core.uploader_running = false;
    webhook_cleanup();
    struct prediction *p = g_core.oldest;
    for (size_t i = 0; p && i < g_core.npreds; i++) {
        struct prediction *next = p->newer;
        prediction_free(p);
        p = next;
    }
    free(g_core.ids);
    free(g_core.queue);
    g_core.ids = NULL;
    g_core.queue = NULL;
    g_core.oldest = g_core.newest = NULL;
    g_core.npreds = g_core.nqueue = 0;
    pthread_cond_destroy(&g_core.changed);
}

/* ---- the table (caller holds the lock) --------------------------------------- */

static size_t id_bucket(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)id; *s; s++)
        h = (h ^ *s) * 16777619u;
    return h & (ID_BUCKETS - 1);
}

/* The newest record with this id. */
static struct prediction *find_locked(const char *id)
{
    for (struct prediction *p = g_core.ids[id_bucket(id)]; p; p = p->id_next)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

static void table_add_locked(struct prediction *p)
{
    size_t b = id_bucket(p->id);
    p->id_next = g_core.ids[b];
    g_core.ids[b] = p;
    p->older = g_core.newest;
    p->newer = NULL;
    if (g_core.newest)
        g_core.newest->newer = p;
    else
        g_core.oldest = p;
    g_core.newest = p;
    g_core.npreds++;
}

static void table_remove_locked(struct prediction *victim)
{
    struct prediction **link = &g_core.ids[id_bucket(victim->id)];
    while (*link && *link != victim)
        link = &(*link)->id_next;
    if (*link)
        *link = victim->id_next;
    if (victim->older)
        victim->older->newer = victim->newer;
    else
        g_core.oldest = victim->newer;
    if (victim->newer)
        victim->newer->older = victim->older;
    else
        g_core.newest = victim->older;
    g_core.npreds--;
}

static bool removable_locked(const struct prediction *p)
{
    return p->stage == STAGE_DONE && p->waiters == 0 && !p->holds_slot && !p->in_upload;
}

/* Drops finished records, oldest first, until at most 'keep' remain or
 * only unremovable (running or pinned) ones are left. */
static void evict_locked(size_t keep)
{
    size_t excess = g_core.npreds > keep ? g_core.npreds - keep : 0;
    struct prediction *p = g_core.oldest;
    for (size_t i = g_core.npreds; p && excess > 0 && i > 0; i--) {
        struct prediction *next = p->newer;
        if (removable_locked(p)) {
            table_remove_locked(p);
            prediction_free(p);
            excess--;
        }
        p = next;
    }
}

/* ---- the engine's queue: a min-heap on (due_mono_ms, order) ------------------- */

static bool queue_before(const struct prediction *a, const struct prediction *b)
{
    if (a->due_mono_ms != b->due_mono_ms)
        return a->due_mono_ms < b->due_mono_ms;
    return a->order < b->order;
}

static void queue_set(size_t i, struct prediction *p)
{
    g_core.queue[i] = p;
    p->queue_idx = i;
}

static void queue_sift_up(size_t i)
{
    struct prediction *p = g_core.queue[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!queue_before(p, g_core.queue[parent]))
            break;
        queue_set(i, g_core.queue[parent]);
        i = parent;
    }
    queue_set(i, p);
}

static void queue_sift_down(size_t i)
{
    struct prediction *p = g_core.queue[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= g_core.nqueue)
            break;
        if (child + 1 < g_core.nqueue &&
            queue_before(g_core.queue[child + 1], g_core.queue[child]))
            child++;
        if (!queue_before(g_core.queue[child], p))
            break;
        queue_set(i, g_core.queue[child]);
        i = child;
    }
    queue_set(i, p);
}

/* Every queued prediction is a record that cannot be evicted (its stage is
 * not STAGE_DONE), so the queue never holds more than the table. Wakes the
 * engine if it sleeps past due_ms (only ever when another thread pushes). */
static void queue_push_locked(struct prediction *p, int64_t due_ms)
{
    p->due_mono_ms = due_ms;
    queue_set(g_core.nqueue++, p);
    queue_sift_up(p->queue_idx);
    wake_engine_locked(due_ms);
}

static struct prediction *queue_pop_locked(void)
{
    struct prediction *top = g_core.queue[0];
    top->queue_idx = NOT_QUEUED;
    if (--g_core.nqueue > 0) {
        queue_set(0, g_core.queue[g_core.nqueue]);
        queue_sift_down(0);
    }
    return top;
}

/* Moves a queued prediction's due time earlier (a cancel). */
static void queue_advance_locked(struct prediction *p, int64_t due_ms)
{
    if (p->queue_idx == NOT_QUEUED || due_ms >= p->due_mono_ms)
        return;
    p->due_mono_ms = due_ms;
    queue_sift_up(p->queue_idx);
    wake_engine_locked(due_ms);
}

/* ---- helpers (caller holds the lock) ----------------------------------------- */

/* Sleeps until a state change or the deadline; false once the deadline has
 * passed. */
static bool wait_change_locked(int64_t deadline_ms)
{
    if (clock_mono_ms() >= deadline_ms)
        return false;
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    int rc = pthread_cond_timedwait(&g_core.changed, &g_core.lock, &ts);
    return rc != ETIMEDOUT;
}

typedef bool (*pred_check_fn)(const struct prediction *p);

/* Waits until check(p) holds, shutdown begins or the deadline passes. */
static void wait_until_locked(const struct prediction *p, pred_check_fn check,
                              int64_t deadline_ms)
{
    for (unsigned i = 0; i < MAX_WAKEUPS; i++) {
        if (check(p) || atomic_load(&g_stop) || !wait_change_locked(deadline_ms))
            return;
    }
}

static bool is_terminal(const struct prediction *p)
{
    return pred_status_terminal(p->status);
}

/* Cog answers a sync request when the runner's result is ready, which is
 * when the slot is free again (after the terminal webhook). */
static bool is_settled(const struct prediction *p)
{
    return pred_status_terminal(p->status) && !(p->holds_slot && p->release_after_ms > 0);
}

/* The start webhook has been answered (or failed): the model runs. */
static bool is_past_start_hook(const struct prediction *p)
{
    return p->stage != STAGE_BEGIN && p->stage != STAGE_START_HOOK;
}

static void take_slot_locked(struct prediction *p)
{
    p->holds_slot = true;
    g_core.active++;
    if (g_core.active > g_core.max_active)
        g_core.max_active = g_core.active;
}

static void release_slot_locked(struct prediction *p)
{
    if (!p->holds_slot)
        return;
    p->holds_slot = false;
    g_core.active--;
}

static char *render_dup_locked(const struct prediction *p, enum render_kind kind)
{
    struct strbuf sb;
    sb_init(&sb);
    payload_render(p, kind, &sb);
    return sb.buf; /* caller frees */
}

/* ---- the engine (its thread, holding the lock) ---------------------------------- */

static bool sends_webhooks(const struct prediction *p)
{
    return p->webhook != NULL && p->mode != MODE_NO_CALLBACK;
}

static enum render_kind webhook_kind(const struct prediction *p)
{
    return p->protocol == PROTO_COG ? RENDER_COG : RENDER_HTTP_CALLBACK;
}

/* Moves p to its terminal status and frees its slot. By default the slot is
 * freed before the terminal webhook goes out, so a gateway that reacts to the
 * webhook by sending the next prediction is not refused with 409; with
 * releaseAfterWebhookMs it is held through the webhook as Cog holds it. */
static void finish_locked(struct prediction *p)
{
    if (p->files_error || p->upload_failed) {
        /* Cog: a FileUploadError fails the prediction (runner.py, predict);
         * a cancel asked for meanwhile changes nothing, the model is done. */
        p->status = PRED_FAILED;
        g_core.completed++;
    } else if (p->cancel_requested && !p->files_written) {
        p->status = PRED_CANCELED;
        g_core.cancelled++;
    } else if (atomic_load(&g_stop)) {
        p->status = PRED_CANCELED; /* shutting down: not counted */
    } else if (p->mode == MODE_FAIL) {
        p->status = PRED_FAILED;
        g_core.completed++;
    } else {
        p->status = PRED_SUCCEEDED;
        g_core.completed++;
    }
    p->completed_us = clock_epoch_us();
    if (p->release_after_ms == 0 || atomic_load(&g_stop))
        release_slot_locked(p);
    pthread_cond_broadcast(&g_core.changed);
}

/* The engine is done with p: the terminal webhook is over (or none was due).
 * A slot still held is freed release_after_ms later. After a failed upload
 * Cog's predict() re-raises, its error callback sets the shutdown event and
 * the server exits (runner.py, PredictionRunner.predict.handle_error). */
static void let_go_locked(struct prediction *p)
{
    if (p->holds_slot && !atomic_load(&g_stop)) {
        p->stage = STAGE_RELEASE;
        queue_push_locked(p, clock_mono_ms() + (int64_t)p->release_after_ms);
        return;
    }
    p->stage = STAGE_DONE;
    if (p->upload_failed && g_core.cfg.exit_on_upload_failure && !atomic_load(&g_stop)) {
        fputs("mock_backend: an output upload failed; Cog shuts down\n", stderr);
        kill(getpid(), SIGTERM);
    }
}

static void mark_processing_locked(struct prediction *p)
{
    p->status = PRED_PROCESSING;
    p->started_us = clock_epoch_us();
    pthread_cond_broadcast(&g_core.changed);
}

/* When the next of an iterator's outputs is due: evenly over the delay, the
 * last at the deadline. */
static int64_t chunk_due(const struct prediction *p)
{
    int64_t start = p->deadline_mono_ms - (int64_t)p->delay_ms;
    return start + (int64_t)p->delay_ms * (int64_t)(p->chunks_done + 1) / (int64_t)p->chunks_total;
}

/* Waits for the deadline, or not at all once a cancel is asked for; an
 * iterator yields its outputs on the way. */
static void run_locked(struct prediction *p)
{
    if (p->chunks_total > 0 && p->chunks_done < p->chunks_total && !p->cancel_requested) {
        p->stage = STAGE_CHUNK;
        queue_push_locked(p, chunk_due(p));
        return;
    }
    p->stage = STAGE_RUNNING;
    queue_push_locked(p, p->cancel_requested ? clock_mono_ms() : p->deadline_mono_ms);
}

/* A new prediction is processing at once; if it has a start webhook, the
 * engine marks it so when it sends the webhook. */
static void begin_locked(struct prediction *p)
{
    if (sends_webhooks(p) && p->want_start) {
        p->stage = STAGE_BEGIN;
        queue_push_locked(p, clock_mono_ms());
    } else {
        mark_processing_locked(p);
        run_locked(p);
    }
}

static void hook_done_locked(struct prediction *p, bool ok);

/* Sends the current attempt of p's webhook (body in hook_body). */
static void hook_attempt_locked(struct prediction *p, enum pred_stage stage)
{
    p->stage = stage;
    if (!webhook_send(p->webhook, p->hook_body, p))
        hook_done_locked(p, false);
}

/* One attempt is over. Only the terminal webhook is retried: up to
 * MOCK_WEBHOOK_RETRIES more attempts, MOCK_WEBHOOK_PAUSE_MS apart, until
 * one gets a 2xx answer or shutdown begins. */
static void hook_done_locked(struct prediction *p, bool ok)
{
    if (!ok && p->stage == STAGE_END_HOOK && p->hook_retries > 0 &&
        !atomic_load(&g_stop)) {
        p->hook_retries--;
        p->stage = STAGE_END_PAUSE;
        queue_push_locked(p, clock_mono_ms() + (int64_t)MOCK_WEBHOOK_PAUSE_MS);
        return;
    }
    if (ok)
        g_core.webhooks_ok++;
    else
        g_core.webhooks_failed++;
    free(p->hook_body);
    p->hook_body = NULL;
    if (p->stage == STAGE_OUTPUT_HOOK) {
        run_locked(p); /* the next output, or the end */
    } else if (p->stage == STAGE_START_HOOK) {
        /* Cog runs the model only once the start webhook is answered. */
        p->deadline_mono_ms = clock_mono_ms() + (int64_t)p->delay_ms;
        run_locked(p);
        pthread_cond_broadcast(&g_core.changed); /* the PUT waiting in core_start */
    } else {
        let_go_locked(p);
    }
}

static void on_webhook_done(void *tag, bool ok)
{
    pthread_mutex_lock(&g_core.lock);
    hook_done_locked(tag, ok);
    pthread_mutex_unlock(&g_core.lock);
}

/* The prediction ends: terminal status, then the terminal webhook. */
static void end_locked(struct prediction *p)
{
    finish_locked(p);
    if (!atomic_load(&g_stop) && sends_webhooks(p) && p->want_completed) {
        p->hook_body = render_dup_locked(p, webhook_kind(p));
        p->hook_retries = MOCK_WEBHOOK_RETRIES;
        hook_attempt_locked(p, STAGE_END_HOOK);
    } else {
        let_go_locked(p);
    }
}

/* Acts on a prediction taken from the queue. */
static void step_locked(struct prediction *p)
{
    switch (p->stage) {
    case STAGE_BEGIN: /* queued only to send the start webhook */
        mark_processing_locked(p);
        p->hook_body = render_dup_locked(p, webhook_kind(p));
        p->hook_retries = 0; /* the start webhook is sent once */
        /* Cog's throttle counts the start webhook too: an output event less than
         * MOCK_EVENT_THROTTLE_MS after it is dropped. */
        p->last_event_ms = clock_mono_ms();
        hook_attempt_locked(p, STAGE_START_HOOK);
        break;
    case STAGE_RUNNING:
        if (g_core.cfg.hold && !p->cancel_requested && !atomic_load(&g_stop)) {
            p->stage = STAGE_HELD; /* out of the queue until released */
            break;
        }
        if (p->nfiles > 0 && !p->cancel_requested && p->mode != MODE_FAIL &&
            !atomic_load(&g_stop)) {
            /* The model returns: its files are written (runner.py: the
             * output is set, and uploaded by set_output() when there is an
             * uploader, before the Done event ends the prediction). */
            p->files_written = files_materialize(p->order, p->files, p->nfiles);
            p->files_error = !p->files_written;
            if (p->files_written && p->upload_url) {
                p->stage = STAGE_UPLOAD;
                p->in_upload = true;
                p->upload_next = NULL;
                if (g_core.upload_tail)
                    g_core.upload_tail->upload_next = p;
                else
                    g_core.upload_head = p;
                g_core.upload_tail = p;
                pthread_cond_broadcast(&g_core.changed);
                break;
            }
        }
        end_locked(p);
        break;
    case STAGE_UPLOADED:
        end_locked(p);
        break;
    case STAGE_RELEASE:
        release_slot_locked(p);
        pthread_cond_broadcast(&g_core.changed);
        let_go_locked(p);
        break;
    case STAGE_CHUNK:
        /* Cog: each value the predictor yields is appended to output, and an
         * output webhook carries the whole list so far, unless one went out less
         * than MOCK_EVENT_THROTTLE_MS ago (then this one is dropped). The last
         * value is followed at once by the end. */
        p->chunks_done++;
        if (p->chunks_done < p->chunks_total && sends_webhooks(p) && p->want_output &&
            clock_mono_ms() - p->last_event_ms >= MOCK_EVENT_THROTTLE_MS) {
            p->last_event_ms = clock_mono_ms();
            p->hook_body = render_dup_locked(p, webhook_kind(p));
            p->hook_retries = 0; /* non-terminal webhooks are sent once */
            hook_attempt_locked(p, STAGE_OUTPUT_HOOK);
        } else {
            run_locked(p);
        }
        break;
    case STAGE_END_PAUSE:
        hook_attempt_locked(p, STAGE_END_HOOK);
        break;
    default: /* never queued in the other stages */
        break;
    }
}

/* Shutdown: running predictions end (canceled, not counted) without
 * webhooks; queued ones are let go. Those with an attempt in flight stay
 * pinned until core_destroy() has aborted it. */
static void drop_all_locked(void)
{
    struct prediction *p = g_core.oldest;
    for (size_t i = 0; p && i < g_core.npreds; i++, p = p->newer) {
        if (!pred_status_terminal(p->status))
            finish_locked(p);
        if (p->stage != STAGE_START_HOOK && p->stage != STAGE_END_HOOK &&
            p->stage != STAGE_OUTPUT_HOOK)
            p->stage = STAGE_DONE;
        p->queue_idx = NOT_QUEUED;
    }
    g_core.nqueue = 0;
}

/* Ends the hold: held predictions finish now, in acceptance order. */
static void release_held_locked(void)
{
    struct prediction *p = g_core.oldest;
    for (size_t i = 0; p && i < g_core.npreds; i++, p = p->newer)
        if (p->stage == STAGE_HELD)
            run_locked(p);
}

static bool due_now_locked(int64_t now)
{
    return g_core.nqueue > 0 && g_core.queue[0]->due_mono_ms <= now;
}

static void *engine_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_core.lock);
    /* Runs until shutdown; every sleep is bounded (ENGINE_IDLE_MS at most)
     * and cut short by core_request_stop(). */
    while (!atomic_load(&g_stop)) {
        /* Each record is taken at most twice per pass (begin, then a
         * deadline already past), which bounds the pass. */
        int64_t now = clock_mono_ms();
        for (size_t i = 0; i < 2 * MOCK_MAX_PREDICTIONS + 1 && due_now_locked(now); i++)
            step_locked(queue_pop_locked());
        /* Sends what was just started and collects what has finished. */
        pthread_mutex_unlock(&g_core.lock);
        webhook_perform(on_webhook_done);
        pthread_mutex_lock(&g_core.lock);
        if (atomic_load(&g_stop))
            break;
        /* Sleeps until the next due time; when something is due already it
         * only looks for network progress, which must go on however busy
         * the queue is. */
        now = clock_mono_ms();
        int timeout = 0;
        if (!due_now_locked(now)) {
            timeout = ENGINE_IDLE_MS;
            if (g_core.nqueue > 0 && g_core.queue[0]->due_mono_ms - now < timeout)
                timeout = (int)(g_core.queue[0]->due_mono_ms - now);
        }
        g_core.engine_asleep = timeout > 0;
        g_core.engine_wake_ms = now + timeout;
        pthread_mutex_unlock(&g_core.lock);
        webhook_wait(timeout);
        pthread_mutex_lock(&g_core.lock);
        g_core.engine_asleep = false;
        g_core.wake_pending = false;
    }
    drop_all_locked();
    g_core.engine_running = false;
    pthread_mutex_unlock(&g_core.lock);
    return NULL;
}

/* ---- the uploader thread ------------------------------------------------------ */

/* Cog uploads a prediction's files one after the other on the thread that
 * runs the prediction (runner.py, generate_file_uploader / upload_files in
 * json.py); the first failure ends the upload. Here one thread uploads for
 * every prediction, in the order they produced their output. */
static void upload_batch(struct prediction *p)
{
    char id[MOCK_MAX_ID + 1], dir[128];
    snprintf(id, sizeof id, "%s", p->id);
    files_dir(p->order, dir, sizeof dir);
    char *base = xstrdup(p->upload_url);
    unsigned n = p->nfiles;
    struct out_file files[MOCK_MAX_FILES];
    memcpy(files, p->files, sizeof files);
    char *urls[MOCK_MAX_FILES] = {NULL};
    bool ok = true;
    pthread_mutex_unlock(&g_core.lock);
    unsigned done = 0;
    for (; ok && done < n; done++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[done].name);
        ok = upload_put_file(base, path, files[done].name, files[done].bytes, id, &urls[done]);
    }
    free(base);
    pthread_mutex_lock(&g_core.lock);
    for (unsigned i = 0; i < n; i++)
        p->file_url[i] = urls[i];
    p->upload_failed = !ok;
    g_core.uploads_ok += ok ? done : done - 1;
    g_core.uploads_failed += ok ? 0 : 1;
}

static void *uploader_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_core.lock);
    /* Runs until shutdown; every wait is bounded (1 s) and each upload
     * gives up once shutdown begins. */
    while (!atomic_load(&g_stop)) {
        struct prediction *p = g_core.upload_head;
        if (!p) {
            wait_change_locked(clock_mono_ms() + ENGINE_IDLE_MS);
            continue;
        }
        g_core.upload_head = p->upload_next;
        if (!g_core.upload_head)
            g_core.upload_tail = NULL;
        p->upload_next = NULL;
        upload_batch(p);
        p->in_upload = false;
        if (!atomic_load(&g_stop) && p->stage == STAGE_UPLOAD) {
            p->stage = STAGE_UPLOADED;
            queue_push_locked(p, clock_mono_ms());
        }
    }
    g_core.upload_head = g_core.upload_tail = NULL;
    pthread_mutex_unlock(&g_core.lock);
    return NULL;
}

/* ---- predictions ------------------------------------------------------------ */

static struct prediction *prediction_new_locked(const struct pred_request *req)
{
    struct prediction *p = xcalloc(1, sizeof *p);
    if (req->id) {
        snprintf(p->id, sizeof p->id, "%s", req->id);
    } else {
        /* Generated ids skip ones a client already chose (bounded tries). */
        for (int tries = 0; tries < 8; tries++) {
            snprintf(p->id, sizeof p->id, "mock-%llu",
                     (unsigned long long)++g_core.seq);
            if (!find_locked(p->id))
                break;
        }
    }
    p->protocol = g_cfg.protocol;
    p->task_id = req->task_id ? xstrdup(req->task_id) : NULL;
    p->input_json = xstrdup(req->input_json ? req->input_json : "null");
    p->webhook = req->webhook ? xstrdup(req->webhook) : NULL;
    p->want_start = req->want_start;
    p->want_completed = req->want_completed;
    p->want_output = req->want_output;
    p->chunks_total = p->protocol == PROTO_COG ? g_core.cfg.output_chunks : 0;
    p->async = req->async;
    if (p->protocol == PROTO_COG) {
        p->nfiles = g_core.cfg.nfiles;
        memcpy(p->files, g_core.cfg.files, sizeof p->files);
        /* Cog uploads only for async predictions (http.py, _predict:
         * runner.predict(request, upload=respond_async)). */
        if (p->nfiles > 0 && req->async && g_core.cfg.upload_url[0])
            p->upload_url = xstrdup(g_core.cfg.upload_url);
        p->release_after_ms = g_core.cfg.release_after_ms;
    }
    p->mode = req->mode;
    p->delay_ms = g_core.cfg.delay_ms;
    p->deadline_mono_ms = clock_mono_ms() + (int64_t)p->delay_ms;
    p->order = ++g_core.order;
    p->status = PRED_STARTING;
    p->created_us = clock_epoch_us();
    p->stage = STAGE_BEGIN;
    p->queue_idx = NOT_QUEUED;
    return p;
}

enum start_result core_start(const struct pred_request *req,
                             enum render_kind kind, struct strbuf *out,
                             char id_out[MOCK_MAX_ID + 1])
{
    enum start_result res = START_NEW;
    bool created = false;
    pthread_mutex_lock(&g_core.lock);
    struct prediction *p = req->id ? find_locked(req->id) : NULL;
    if (atomic_load(&g_stop) || !g_core.engine_running) {
        res = START_ERROR;
        p = NULL;
    } else if (g_cfg.protocol == PROTO_COG &&
               clock_mono_ms() - g_core.setup_start_ms < (int64_t)g_core.cfg.setup_ms) {
        /* Cog: while setup() runs the runner is busy with it and refuses
         * every prediction, even a known id (runner.py, predict: "we're
         * still doing setup" -> RunnerBusyError -> 409). */
        res = START_NO_SLOT;
        p = NULL;
    } else if (p) {
        res = START_EXISTING; /* idempotent: no second slot */
    } else if (g_core.active >= g_core.cfg.slots) {
        res = START_NO_SLOT;
    } else {
        if (g_core.npreds >= MOCK_MAX_PREDICTIONS)
            evict_locked(MOCK_MAX_PREDICTIONS - 1);
        if (g_core.npreds >= MOCK_MAX_PREDICTIONS) {
            res = START_ERROR; /* every record pinned: cannot happen in tests */
        } else {
            p = prediction_new_locked(req);
            take_slot_locked(p);
            table_add_locked(p);
            created = true;
        }
    }
    if (created) {
        begin_locked(p);
        /* Cog 0.9.9 sends the start webhook inside the PUT handler
         * (PredictionEventHandler.__init__, runner.py) and answers the PUT
         * only once that webhook was answered; it sets no timeout of its own,
         * the bound here only keeps a broken test from hanging. */
        p->waiters++;
        wait_until_locked(p, is_past_start_hook,
                          clock_mono_ms() + (int64_t)MOCK_START_HOOK_WAIT_MS);
        p->waiters--;
    }
    if (p) {
        payload_render(p, kind, out);
        snprintf(id_out, MOCK_MAX_ID + 1, "%s", p->id);
    }
    pthread_mutex_unlock(&g_core.lock);
    return res;
}

bool core_wait_and_render(const char *id, enum render_kind kind,
                          struct strbuf *out, enum pred_status *status_out)
{
    pthread_mutex_lock(&g_core.lock);
    struct prediction *p = find_locked(id);
    if (!p) {
        pthread_mutex_unlock(&g_core.lock);
        return false;
    }
    p->waiters++; /* pins p while the lock is released in the wait */
    int64_t deadline = clock_mono_ms() + (int64_t)p->delay_ms + MOCK_SYNC_GRACE_MS;
    wait_until_locked(p, is_settled, deadline);
    p->waiters--;
    bool ended = pred_status_terminal(p->status);
    bool paths[MOCK_MAX_FILES] = {false};
    char *values[MOCK_MAX_FILES] = {NULL};
    unsigned nvalues = 0;
    struct strbuf after;
    sb_init(&after);
    bool split = ended && kind == RENDER_COG && p->nfiles > 0 && p->status == PRED_SUCCEEDED;
    if (split) {
        /* Cog's sync answer turns each local file into a data URI (http.py,
         * _predict: upload_files(..., upload_file(fh, output_file_prefix))),
         * read here outside the lock. */
        payload_render_cog_split(p, out, &after);
        nvalues = p->nfiles;
        for (unsigned i = 0; i < nvalues; i++)
            values[i] = payload_file_value(p, i, &paths[i]);
    } else if (ended) {
        payload_render(p, kind, out);
    }
    if (ended && status_out)
        *status_out = p->status;
    pthread_mutex_unlock(&g_core.lock);
    if (split) {
        if (nvalues > 1)
            sb_puts(out, "[");
        for (unsigned i = 0; i < nvalues; i++) {
            if (i > 0)
                sb_puts(out, ",");
            if (!paths[i] || !files_put_data_uri(out, values[i]))
                sb_json_cstr_or_null(out, values[i]);
            free(values[i]);
        }
        if (nvalues > 1)
            sb_puts(out, "]");
        sb_append(out, after.buf, after.len);
    }
    sb_free(&after);
    return ended;
}

/* Flags the prediction and waits (bounded) until the engine has settled
 * it, so that /__stats read right after the 200 already counts it. */
enum cancel_result core_cancel(const char *id)
{
    pthread_mutex_lock(&g_core.lock);
    struct prediction *p = find_locked(id);
    enum cancel_result res = CANCEL_OK;
    if (!p) {
        res = CANCEL_UNKNOWN;
    } else if (pred_status_terminal(p->status) && p->holds_slot) {
        res = CANCEL_OK; /* Cog: still its prediction until the slot is free; no effect */
    } else if (pred_status_terminal(p->status)) {
        res = CANCEL_NOT_RUNNING;
    } else if (p->files_written) {
        /* Cog: the model has returned and its files are being uploaded; the
         * cancel flag is only looked at between worker events, and the Done
         * event that follows ends the prediction as succeeded. */
        p->cancel_requested = true;
    } else {
        p->cancel_requested = true;
        pthread_cond_broadcast(&g_core.changed);
        if (p->stage == STAGE_RUNNING || p->stage == STAGE_CHUNK)
            queue_advance_locked(p, clock_mono_ms());
        else if (p->stage == STAGE_HELD)
            run_locked(p); /* a cancel ends a held prediction at once */
        /* before that, run_locked() sees the flag when the wait begins */
        p->waiters++;
        int64_t deadline = clock_mono_ms() + CANCEL_SETTLE_MS;
        wait_until_locked(p, is_terminal, deadline);
        p->waiters--;
    }
    pthread_mutex_unlock(&g_core.lock);
    return res;
}

/* ---- runtime settings, health, stats ------------------------------------------ */

struct runtime_cfg core_get_cfg(void)
{
    pthread_mutex_lock(&g_core.lock);
    struct runtime_cfg c = g_core.cfg;
    pthread_mutex_unlock(&g_core.lock);
    return c;
}

static bool get_bounded_uint(yajl_val v, unsigned max, unsigned *out)
{
    if (!v || !YAJL_IS_INTEGER(v))
        return false;
    long long n = YAJL_GET_INTEGER(v);
    if (n < 0 || n > (long long)max)
        return false;
    *out = (unsigned)n;
    return true;
}

/* Validates the whole body first and applies it only if all of it is good,
 * so a typo in a test never leaves the mock half-reconfigured. Unknown keys
 * are refused for the same reason. */
bool core_apply_control(yajl_val body, char *err, size_t errlen)
{
    if (!body || !YAJL_IS_OBJECT(body)) {
        snprintf(err, errlen, "body must be a JSON object");
        return false;
    }
    pthread_mutex_lock(&g_core.lock);
    struct runtime_cfg next = g_core.cfg;
    pthread_mutex_unlock(&g_core.lock);

    bool set_mode = false, set_health = false, set_delay = false, set_slots = false;
    bool set_hold = false, set_logs = false, set_chunks = false, set_files = false;
    bool set_upload = false, set_setup = false, set_release = false, set_exit = false;
    for (size_t i = 0; i < body->u.object.len; i++) {
        const char *k = body->u.object.keys[i];
        yajl_val v = body->u.object.values[i];
        bool ok;
        if (strcmp(k, "mode") == 0)
            ok = set_mode = YAJL_IS_STRING(v) && mode_parse(YAJL_GET_STRING(v), &next.mode);
        else if (strcmp(k, "health") == 0)
            ok = set_health = YAJL_IS_STRING(v) && health_parse(YAJL_GET_STRING(v), &next.health);
        else if (strcmp(k, "delayMs") == 0)
            ok = set_delay = get_bounded_uint(v, MOCK_MAX_DELAY_MS, &next.delay_ms);
        else if (strcmp(k, "slots") == 0)
            ok = set_slots = get_bounded_uint(v, MOCK_MAX_SLOTS, &next.slots);
        else if (strcmp(k, "outputChunks") == 0)
            ok = set_chunks = get_bounded_uint(v, MOCK_MAX_CHUNKS, &next.output_chunks);
        else if (strcmp(k, "setupLogsBytes") == 0)
            ok = set_logs = get_bounded_uint(v, MOCK_MAX_SETUP_LOGS, &next.setup_logs_bytes);
        else if (strcmp(k, "hold") == 0) {
            ok = set_hold = YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v);
            next.hold = YAJL_IS_TRUE(v);
        }
        else if (strcmp(k, "outputFiles") == 0) {
            if (!files_parse_json(v, next.files, &next.nfiles, err, errlen))
                return false;
            ok = set_files = true;
        }
        else if (strcmp(k, "uploadUrl") == 0) {
            const char *u = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
            ok = set_upload = u && upload_url_ok(u);
            if (ok)
                snprintf(next.upload_url, sizeof next.upload_url, "%s", u);
        }
        else if (strcmp(k, "setupMs") == 0)
            ok = set_setup = get_bounded_uint(v, MOCK_MAX_SETUP_MS, &next.setup_ms);
        else if (strcmp(k, "releaseAfterWebhookMs") == 0)
            ok = set_release = get_bounded_uint(v, MOCK_MAX_RELEASE_MS, &next.release_after_ms);
        else if (strcmp(k, "exitOnUploadFailure") == 0) {
            ok = set_exit = YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v);
            next.exit_on_upload_failure = YAJL_IS_TRUE(v);
        }
        else {
            snprintf(err, errlen, "unknown key \"%.64s\"", k);
            return false;
        }
        if (!ok) {
            snprintf(err, errlen, "invalid value for \"%s\"", k);
            return false;
        }
    }

    if (next.nfiles > 0 && next.output_chunks > 0) {
        snprintf(err, errlen, "outputFiles and outputChunks cannot both be set");
        return false;
    }
    /* Written before anything applies, outside the lock (64 MiB each). */
    if (set_files && !files_prepare(next.files, next.nfiles, err, errlen))
        return false;

    pthread_mutex_lock(&g_core.lock);
    if (set_files) {
        memcpy(g_core.cfg.files, next.files, sizeof g_core.cfg.files);
        g_core.cfg.nfiles = next.nfiles;
    }
    if (set_upload)
        memcpy(g_core.cfg.upload_url, next.upload_url, sizeof g_core.cfg.upload_url);
    if (set_setup) { /* setup() starts again now */
        g_core.cfg.setup_ms = next.setup_ms;
        g_core.setup_start_ms = clock_mono_ms();
        g_core.setup_start_us = clock_epoch_us();
    }
    if (set_release)
        g_core.cfg.release_after_ms = next.release_after_ms;
    if (set_exit)
        g_core.cfg.exit_on_upload_failure = next.exit_on_upload_failure;
    if (set_mode) {
        g_core.cfg.mode = next.mode;
        g_core.flap_count = 0; /* flap starts with a passing check */
    }
    if (set_health)
        g_core.cfg.health = next.health;
    if (set_delay)
        g_core.cfg.delay_ms = next.delay_ms;
    if (set_slots)
        g_core.cfg.slots = next.slots;
    if (set_logs)
        g_core.cfg.setup_logs_bytes = next.setup_logs_bytes;
    if (set_chunks)
        g_core.cfg.output_chunks = next.output_chunks;
    if (set_hold) {
        g_core.cfg.hold = next.hold;
        if (!next.hold)
            release_held_locked();
    }
    pthread_cond_broadcast(&g_core.changed);
    pthread_mutex_unlock(&g_core.lock);
    return true;
}

enum health core_cog_health(void)
{
    pthread_mutex_lock(&g_core.lock);
    enum health h = g_core.cfg.health;
    enum mode m = g_core.cfg.mode;
    if (m == MODE_STARTING)
        h = HEALTH_STARTING;
    else if (m == MODE_FLAP && (g_core.flap_count++ % 2) == 1)
        h = HEALTH_UNHEALTHY;
    else if (h == HEALTH_READY && (m == MODE_BUSY || g_core.active >= g_core.cfg.slots))
        h = HEALTH_BUSY; /* as real Cog reports while a prediction runs */
    pthread_mutex_unlock(&g_core.lock);
    return h;
}

bool core_http_health_ok(void)
{
    pthread_mutex_lock(&g_core.lock);
    enum health h = g_core.cfg.health;
    bool ok = (h == HEALTH_READY || h == HEALTH_BUSY) &&
              g_core.cfg.mode != MODE_STARTING;
    if (g_core.cfg.mode == MODE_FLAP && (g_core.flap_count++ % 2) == 1)
        ok = false;
    pthread_mutex_unlock(&g_core.lock);
    return ok;
}

void core_count_request(bool rejected)
{
    pthread_mutex_lock(&g_core.lock);
    g_core.received++;
    if (rejected)
        g_core.rejected++;
    pthread_mutex_unlock(&g_core.lock);
}

void core_stats_json(struct strbuf *sb)
{
    pthread_mutex_lock(&g_core.lock);
    sb_printf(sb,
              "{\"active\":%u,\"maxActive\":%u,\"completed\":%llu,"
              "\"cancelled\":%llu,\"received\":%llu,\"rejected\":%llu,"
              "\"webhooksDelivered\":%llu,\"webhooksFailed\":%llu,"
              "\"uploadsOk\":%llu,\"uploadsFailed\":%llu,"
              "\"mode\":\"%s\",\"health\":\"%s\",\"delayMs\":%u,\"slots\":%u,"
              "\"hold\":%s,\"setupMs\":%u,\"releaseAfterWebhookMs\":%u,"
              "\"outputFiles\":%u,\"uploadUrl\":",
              g_core.active, g_core.max_active,
              (unsigned long long)g_core.completed,
              (unsigned long long)g_core.cancelled,
              (unsigned long long)g_core.received,
              (unsigned long long)g_core.rejected,
              (unsigned long long)g_core.webhooks_ok,
              (unsigned long long)g_core.webhooks_failed,
              (unsigned long long)g_core.uploads_ok,
              (unsigned long long)g_core.uploads_failed,
              mode_name(g_core.cfg.mode), health_name(g_core.cfg.health),
              g_core.cfg.delay_ms, g_core.cfg.slots,
              g_core.cfg.hold ? "true" : "false", g_core.cfg.setup_ms,
              g_core.cfg.release_after_ms, g_core.cfg.nfiles);
    sb_json_cstr_or_null(sb, g_core.cfg.upload_url);
    sb_puts(sb, "}");
    pthread_mutex_unlock(&g_core.lock);
}

/* Clears counters and forgets finished predictions (so a reused id starts
 * afresh). Running predictions keep running and keep their slots. */
void core_reset(void)
{
    pthread_mutex_lock(&g_core.lock);
    g_core.completed = g_core.cancelled = g_core.received = g_core.rejected = 0;
    g_core.webhooks_ok = g_core.webhooks_failed = 0;
    g_core.uploads_ok = g_core.uploads_failed = 0;
    g_core.max_active = g_core.active;
    g_core.flap_count = 0;
    evict_locked(0);
    pthread_mutex_unlock(&g_core.lock);
}

bool core_setup_state(int64_t *started_us, int64_t *completed_us)
{
    pthread_mutex_lock(&g_core.lock);
    bool running = clock_mono_ms() - g_core.setup_start_ms < (int64_t)g_core.cfg.setup_ms;
    *started_us = g_core.setup_start_us;
    *completed_us = g_core.setup_start_us + (int64_t)g_core.cfg.setup_ms * 1000;
    pthread_mutex_unlock(&g_core.lock);
    return running;
}

int core_open_file(const char *id, const char *name, uint64_t *size)
{
    int fd = -1;
    pthread_mutex_lock(&g_core.lock);
    struct prediction *p = find_locked(id);
    for (unsigned i = 0; p && p->files_written && i < p->nfiles; i++) {
        if (strcmp(p->files[i].name, name) != 0)
            continue;
        char dir[128], path[512];
        files_dir(p->order, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        *size = p->files[i].bytes;
        break;
    }
    pthread_mutex_unlock(&g_core.lock);
    return fd;
}
