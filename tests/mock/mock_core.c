/*
 * mock_core.c - runtime settings, slots, predictions and their workers.
 *
 * Every prediction gets one worker thread that plays its whole life:
 * starting -> processing (start webhook) -> wait delay -> terminal status
 * (slot freed) -> terminal webhook. Synchronous requests simply wait for the
 * terminal status, so sync and async predictions share one code path.
 *
 * One mutex guards everything here; one condition variable (monotonic clock)
 * is broadcast on every state change. Worker threads are joinable and are
 * joined either when their record is reaped or at shutdown, so valgrind sees
 * no leaked thread stacks.
 */
#include "mock.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Upper bound on wake-ups in any wait loop; each loop is also bounded by a
 * deadline, this only guards against a livelock bug turning into a spin. */
#define MAX_WAKEUPS 1000000u
/* POST .../cancel waits at most this long for the worker to settle. */
#define CANCEL_SETTLE_MS 2000

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct runtime_cfg cfg;
    unsigned flap_count;
    unsigned active, max_active;
    uint64_t completed, cancelled, received, rejected;
    uint64_t webhooks_ok, webhooks_failed;
    uint64_t seq;
    struct prediction **preds; /* oldest first, MOCK_MAX_PREDICTIONS slots */
    size_t npreds;
} g_core = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Readable without the lock so that long waits outside it (webhook
 * transfers, hang mode) can notice shutdown. */
static atomic_bool g_stop;

/* ---- lifecycle ------------------------------------------------------------- */

void core_init(const struct runtime_cfg *initial)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_core.changed, &attr);
    pthread_condattr_destroy(&attr);
    g_core.cfg = *initial;
    g_core.preds = xcalloc(MOCK_MAX_PREDICTIONS, sizeof *g_core.preds);
    atomic_store(&g_stop, false);
}

void core_request_stop(void)
{
    pthread_mutex_lock(&g_core.lock);
    atomic_store(&g_stop, true);
    pthread_cond_broadcast(&g_core.changed);
    pthread_mutex_unlock(&g_core.lock);
}

bool core_stopping(void)
{
    return atomic_load(&g_stop);
}

static void prediction_free(struct prediction *p)
{
    free(p->task_id);
    free(p->input_json);
    free(p->webhook);
    free(p);
}

/* Call only after the HTTP daemon is stopped: then no thread but the
 * workers runs, and workers never reshape the table, so it can be walked
 * without the lock while they are joined (they need the lock to finish). */
void core_destroy(void)
{
    core_request_stop();
    for (size_t i = 0; i < g_core.npreds; i++) {
        struct prediction *p = g_core.preds[i];
        if (p->worker_started && !p->worker_joined) {
            pthread_join(p->worker, NULL);
            p->worker_joined = true;
        }
    }
    for (size_t i = 0; i < g_core.npreds; i++)
        prediction_free(g_core.preds[i]);
    free(g_core.preds);
    g_core.preds = NULL;
    g_core.npreds = 0;
    pthread_cond_destroy(&g_core.changed);
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

static bool is_cancel_requested(const struct prediction *p)
{
    return p->cancel_requested;
}

static struct prediction *find_locked(const char *id)
{
    for (size_t i = g_core.npreds; i > 0; i--)
        if (strcmp(g_core.preds[i - 1]->id, id) == 0)
            return g_core.preds[i - 1];
    return NULL;
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

/* Joins workers that have finished. A worker sets worker_done as the very
 * last thing it does under the lock, so joining here never waits for
 * anything but the thread's exit. */
static void reap_workers_locked(void)
{
    for (size_t i = 0; i < g_core.npreds; i++) {
        struct prediction *p = g_core.preds[i];
        if (p->worker_started && p->worker_done && !p->worker_joined) {
            pthread_join(p->worker, NULL);
            p->worker_joined = true;
        }
    }
}

static bool removable_locked(const struct prediction *p)
{
    bool worker_gone = !p->worker_started || p->worker_joined;
    return worker_gone && p->waiters == 0 && !p->holds_slot;
}

/* Drops finished records, oldest first, until at most 'keep' remain or
 * only unremovable (running or pinned) ones are left. */
static void evict_locked(size_t keep)
{
    size_t excess = g_core.npreds > keep ? g_core.npreds - keep : 0;
    size_t w = 0;
    for (size_t r = 0; r < g_core.npreds; r++) {
        struct prediction *p = g_core.preds[r];
        if (excess > 0 && removable_locked(p)) {
            prediction_free(p);
            excess--;
        } else {
            g_core.preds[w++] = p;
        }
    }
    g_core.npreds = w;
}

static void remove_locked(struct prediction *victim)
{
    size_t w = 0;
    for (size_t r = 0; r < g_core.npreds; r++)
        if (g_core.preds[r] != victim)
            g_core.preds[w++] = g_core.preds[r];
    g_core.npreds = w;
}

static char *render_dup_locked(const struct prediction *p, enum render_kind kind)
{
    struct strbuf sb;
    sb_init(&sb);
    payload_render(p, kind, &sb);
    return sb.buf; /* caller frees */
}

/* ---- worker --------------------------------------------------------------- */

static bool sends_webhooks(const struct prediction *p)
{
    return p->webhook != NULL && p->mode != MODE_NO_CALLBACK;
}

static enum render_kind webhook_kind(const struct prediction *p)
{
    return p->protocol == PROTO_COG ? RENDER_COG : RENDER_HTTP_CALLBACK;
}

static void deliver(char *payload, const struct prediction *p, int retries)
{
    bool ok = webhook_post(p->webhook, payload, retries);
    free(payload);
    pthread_mutex_lock(&g_core.lock);
    if (ok)
        g_core.webhooks_ok++;
    else
        g_core.webhooks_failed++;
    pthread_mutex_unlock(&g_core.lock);
}

/* Moves p to its terminal status and frees its slot. The slot is freed
 * before the terminal webhook goes out, so a gateway that reacts to the
 * webhook by sending the next prediction is not refused with 409. */
static void finish_locked(struct prediction *p)
{
    if (p->cancel_requested) {
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
    release_slot_locked(p);
    pthread_cond_broadcast(&g_core.changed);
}

static void *worker_main(void *arg)
{
    struct prediction *p = arg;
    char *payload = NULL;

    pthread_mutex_lock(&g_core.lock);
    p->status = PRED_PROCESSING;
    p->started_us = clock_epoch_us();
    pthread_cond_broadcast(&g_core.changed);
    if (sends_webhooks(p) && p->want_start)
        payload = render_dup_locked(p, webhook_kind(p));
    pthread_mutex_unlock(&g_core.lock);

    if (payload)
        deliver(payload, p, 0); /* only the terminal webhook is retried */
    payload = NULL;

    pthread_mutex_lock(&g_core.lock);
    wait_until_locked(p, is_cancel_requested, p->deadline_mono_ms);
    finish_locked(p);
    if (!atomic_load(&g_stop) && sends_webhooks(p) && p->want_completed)
        payload = render_dup_locked(p, webhook_kind(p));
    pthread_mutex_unlock(&g_core.lock);

    if (payload)
        deliver(payload, p, MOCK_WEBHOOK_RETRIES);

    pthread_mutex_lock(&g_core.lock);
    p->worker_done = true; /* last touch: see reap_workers_locked() */
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
    p->mode = req->mode;
    p->delay_ms = g_core.cfg.delay_ms;
    p->deadline_mono_ms = clock_mono_ms() + (int64_t)p->delay_ms;
    p->status = PRED_STARTING;
    p->created_us = clock_epoch_us();
    return p;
}

enum start_result core_start(const struct pred_request *req,
                             enum render_kind kind, struct strbuf *out,
                             char id_out[MOCK_MAX_ID + 1])
{
    enum start_result res = START_NEW;
    pthread_mutex_lock(&g_core.lock);
    struct prediction *p = req->id ? find_locked(req->id) : NULL;
    if (atomic_load(&g_stop)) {
        res = START_ERROR;
    } else if (p) {
        res = START_EXISTING; /* idempotent: no second slot */
    } else if (g_core.active >= g_core.cfg.slots) {
        res = START_NO_SLOT;
    } else {
        reap_workers_locked();
        if (g_core.npreds >= MOCK_MAX_PREDICTIONS)
            evict_locked(MOCK_MAX_PREDICTIONS - 1);
        if (g_core.npreds >= MOCK_MAX_PREDICTIONS) {
            res = START_ERROR; /* every record pinned: cannot happen in tests */
        } else {
            p = prediction_new_locked(req);
            take_slot_locked(p);
            g_core.preds[g_core.npreds++] = p;
            if (pthread_create(&p->worker, NULL, worker_main, p) != 0) {
                release_slot_locked(p);
                remove_locked(p);
                prediction_free(p);
                p = NULL;
                res = START_ERROR;
            } else {
                p->worker_started = true;
            }
        }
    }
    if (p) {
        /* Rendered under the lock; a new one is still "starting" here
         * because its worker needs this lock to move on. */
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
    wait_until_locked(p, is_terminal, deadline);
    p->waiters--;
    bool ended = pred_status_terminal(p->status);
    if (ended) {
        payload_render(p, kind, out);
        if (status_out)
            *status_out = p->status;
    }
    pthread_mutex_unlock(&g_core.lock);
    return ended;
}

/* Flags the prediction and waits (bounded) until its worker has settled,
 * so that /__stats read right after the 200 already counts it. */
enum cancel_result core_cancel(const char *id)
{
    pthread_mutex_lock(&g_core.lock);
    struct prediction *p = find_locked(id);
    enum cancel_result res = CANCEL_OK;
    if (!p) {
        res = CANCEL_UNKNOWN;
    } else if (pred_status_terminal(p->status)) {
        res = CANCEL_NOT_RUNNING;
    } else {
        p->cancel_requested = true;
        pthread_cond_broadcast(&g_core.changed);
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
        else {
            snprintf(err, errlen, "unknown key \"%.64s\"", k);
            return false;
        }
        if (!ok) {
            snprintf(err, errlen, "invalid value for \"%s\"", k);
            return false;
        }
    }

    pthread_mutex_lock(&g_core.lock);
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
              "\"mode\":\"%s\",\"health\":\"%s\",\"delayMs\":%u,\"slots\":%u}",
              g_core.active, g_core.max_active,
              (unsigned long long)g_core.completed,
              (unsigned long long)g_core.cancelled,
              (unsigned long long)g_core.received,
              (unsigned long long)g_core.rejected,
              (unsigned long long)g_core.webhooks_ok,
              (unsigned long long)g_core.webhooks_failed,
              mode_name(g_core.cfg.mode), health_name(g_core.cfg.health),
              g_core.cfg.delay_ms, g_core.cfg.slots);
    pthread_mutex_unlock(&g_core.lock);
}

/* Clears counters and forgets finished predictions (so a reused id starts
 * afresh). Running predictions keep running and keep their slots. */
void core_reset(void)
{
    pthread_mutex_lock(&g_core.lock);
    g_core.completed = g_core.cancelled = g_core.received = g_core.rejected = 0;
    g_core.webhooks_ok = g_core.webhooks_failed = 0;
    g_core.max_active = g_core.active;
    g_core.flap_count = 0;
    reap_workers_locked();
    evict_locked(0);
    pthread_mutex_unlock(&g_core.lock);
}
