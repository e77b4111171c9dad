#!/usr/bin/env bash
# Statistics end to end through lighttpd: the event log, taskgate-rollup, the
# /api/v2/stats routes, /metrics, alerts with a webhook, and the /status page.
#  (a) a scripted workload written straight into stats/events for past hours (known
#      durations and outcomes) plus a few events of the current hour: every figure is
#      exact, before the rollup (all raw), after it (documents + raw tail), and for
#      windows that cut hours in the middle
#  (b) the rollup is idempotent: a second run leaves stats/ byte for byte alone
#  (c) crashes: totals.json deleted, and kill -9 in the middle of a big fold, lose and
#      double-count nothing (compared byte for byte with an uninterrupted run)
#  (d) /metrics parses with a strict exposition-format checker (tests/promcheck.py)
#  (e) alert rules fire and resolve once each, POSTed to a webhook
#  (f) real tasks through a mock Cog server show up in the figures (waits, run times)
#  (g) /status: auth (Bearer, Basic, 401 prompt), rendered by headless Chromium with
#      its server rows and SVG charts; the screenshot tests/screenshots/status.png
#      (written when missing or with UPDATE_SCREENSHOT=1)
#  (h) piggy-backing: an overdue rollup runs after a request
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

ROLLUP="$BUILD/cron/taskgate-rollup"
PROMCHECK="$ROOT/tests/promcheck.py"
stats_config() {
	jq "$1" "$STATE/config.json" > "$STATE/config.json.new" && mv "$STATE/config.json.new" "$STATE/config.json"
}
rollup() { STATE_DIR=$STATE "$ROLLUP" "$@"; }
# Hash of every rolled-up file (documents, totals, alerts).
stats_digest() {
	(cd "$1/stats" && find hourly totals.json alerts.json -type f 2> /dev/null | LC_ALL=C sort |
		xargs -r sha256sum) | sha256sum | cut -d' ' -f1
}
field() { printf '%s' "$BODY" | jq -r "$1"; }
promcheck() { python3 "$PROMCHECK" "$1" | sed 's/^/# /'; return "${PIPESTATUS[0]}"; }
promcheck_self_test() {
	python3 "$PROMCHECK" --self-test > "$WORK/selftest.out" && return 0
	grep '^not ok' "$WORK/selftest.out" | sed 's/^/# /'
	return 1
}

# events.py STATE KIND: writes scripted events (see below); prints "H=<current hour start>".
cat > "$WORK/events.py" << 'EOF'
import json, os, sys, time
state, kind = sys.argv[1], sys.argv[2]
HOUR = 3600000
# The current hour's events must lie in the past: in an hour's first seconds, wait.
if int(time.time() * 1000) % HOUR < 15000:
    time.sleep(15 - (time.time() % 3600))
now = int(time.time() * 1000)
H = now - now % HOUR
files = {}

def emit(ev):
    name = time.strftime("%Y%m%d%H", time.gmtime(ev["t"] / 1000))
    files.setdefault(name, []).append(json.dumps(ev, separators=(",", ":")) + "\n")

def task(t, tid, model, server, wait, run, end):
    emit({"t": t, "type": "created", "task": tid, "model": model, "createdAt": t})
    emit({"t": t + wait, "type": "dispatched", "task": tid, "model": model, "server": server,
          "waitMs": wait, "createdAt": t})
    emit({"t": t + wait + run, "type": end, "task": tid, "model": model, "server": server,
          "ms": run, "createdAt": t})

if kind == "workload":
    # H-5: sdxl on gpu-1, 20 tasks, every 5th fails after 400 ms, the others take 1200 ms.
    for i in range(20):
        fail = i % 5 == 4
        task(H - 5 * HOUR + 1000 * i + 500, "a%d" % i, "sdxl", "gpu-1", 100,
             400 if fail else 1200, "failed" if fail else "completed")
    # H-4: llama on gpu-2, 10 tasks of 3000 ms after 2 s in the queue.
    for i in range(10):
        task(H - 4 * HOUR + 1000 * i + 500, "b%d" % i, "llama", "gpu-2", 2000, 3000, "completed")
    # H-2: sdxl on gpu-3: 6 x 2500 ms completed, 4 x 500 ms failed; offline at half past.
    for i in range(10):
        fail = i >= 6
        task(H - 2 * HOUR + 1000 * i + 500, "c%d" % i, "sdxl", "gpu-3", 100,
             500 if fail else 2500, "failed" if fail else "completed")
    emit({"t": H - 2 * HOUR + 1800000, "type": "server_status", "server": "gpu-3",
          "from": "online", "to": "offline"})
    # Up to ten minutes ago, but always inside the current (unfinished) hour:
    # sdxl on gpu-3: 2 x 800 ms completed, 3 x 200 ms failed.
    recent = max(H, now - 600000)
    for i in range(5):
        fail = i >= 2
        task(recent + 1000 * i, "d%d" % i, "sdxl", "gpu-3", 50,
             200 if fail else 800, "failed" if fail else "completed")
elif kind == "big":
    # 48 finished hours of 3000 tasks each (432,000 lines) for the crash test.
    for k in range(13, 61):
        h = H - k * HOUR
        for i in range(3000):
            task(h + 1000 * i, "t%d" % i, "m%d" % (i % 7), "gpu-%d" % (i % 5), i % 300,
                 (i * 37) % 5000, "completed" if i % 9 else "failed")
for name, lines in files.items():
    with open(os.path.join(state, "stats", "events", name + ".jsonl"), "a") as f:
        f.write("".join(lines))
print("H=%d" % H)
EOF

# A webhook receiver: one JSON body per line in $WORK/hook.log.
cat > "$WORK/hook.py" << 'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.timeout = 1
import time; end = time.time() + 600
while time.time() < end:
    s.handle_request()
EOF

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
# Deterministic first: nothing rides on requests until (h).
stats_config '.piggyback = {"enabled": false}'
start_mock cog --protocol cog --slots 4 --delay-ms 200 || not_ok "cog mock starts"
cog="http://127.0.0.1:$MOCK_PORT_cog"
for s in gpu-1:sdxl gpu-2:llama gpu-3:sdxl; do
	admin POST /api/v2/servers "{\"id\":\"${s%%:*}\",\"name\":\"${s%%:*} (A100)\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"$cog/predictions\",\"health\":\"$cog/health-check\"},\"capabilities\":{\"maxConcurrent\":4,\"supportedModels\":[\"${s#*:}\"]},\"weight\":2}"
	expect_eq "register ${s%%:*}" "$STATUS" 201
done

eval "$(python3 "$WORK/events.py" "$STATE" workload)"
HOURMS=3600000

# ---------------------------------------------------------------- (a) exact figures
check_all_time() { # $1: when
	client GET /api/v2/stats/tasks
	expect_eq "($1) tasks: 200" "$STATUS" 200
	expect_eq "($1) totalTasks" "$(field .totalTasks)" 45
	expect_eq "($1) successfulTasks" "$(field .successfulTasks)" 34
	expect_eq "($1) failedTasks" "$(field .failedTasks)" 11
	expect_eq "($1) successRate 34/45" "$(field .successRate)" 0.7556
	expect_eq "($1) failureRate 11/45" "$(field .failureRate)" 0.2444
	expect_eq "($1) averageProcessingTime 70000/45 ms" "$(field .averageProcessingTime)" 1555.6
	expect_eq "($1) processing p50/p95/p99 from the histogram" \
		"$(field '[.processingTime.p50, .processingTime.p95, .processingTime.p99] | join(" ")')" \
		"1647.7 2887.5 2977.5"
	expect_eq "($1) processing min/max" "$(field '"\(.processingTime.min) \(.processingTime.max)"')" "200 3000"
	expect_eq "($1) queue wait average 23250/45 ms" "$(field .queueWait.average)" 516.7
	expect_eq "($1) pending and processing are live (none)" "$(field '"\(.pendingTasks) \(.processingTasks)"')" "0 0"
	expect_eq "($1) per model sdxl" "$(field '.models.sdxl | "\(.totalTasks) \(.successfulTasks) \(.failedTasks)"')" "35 24 11"
	expect_eq "($1) per model llama" "$(field '.models.llama | "\(.totalTasks) \(.successfulTasks) \(.averageProcessingTime) \(.queueWait.p50)"')" "10 10 3000 2000"
	client GET /api/v2/stats/servers/gpu-3
	expect_eq "($1) gpu-3 processed, success rate, average" \
		"$(field '"\(.tasksProcessed) \(.successRate) \(.averageResponseTime)"')" "15 0.5333 1280"
	client GET /api/v2/stats/servers/gpu-1
	expect_eq "($1) gpu-1 processed, success rate, average" \
		"$(field '"\(.tasksProcessed) \(.successRate) \(.averageResponseTime)"')" "20 0.8 1040"
}
check_all_time "raw"
client GET /api/v2/stats/tasks
expect_eq "(raw) every hour came from raw events" "$(field .window.hoursFromDocuments)" 0

out=$(rollup)
rc=$?
expect_eq "rollup exits 0" "$rc" 0
check "rollup folded the three finished hours" grep -q 'TASKGATE ROLLUP OK - 3 hours folded' <<< "$out"
check "three hourly documents" test "$(ls "$STATE/stats/hourly" | wc -l)" -eq 3
check_all_time "rolled up"
client GET /api/v2/stats/tasks
expect_eq "(rolled up) three hours from documents" "$(field .window.hoursFromDocuments)" 3

# Windows: whole hours, and a cut through hour H-5 (tasks created at +5.5 .. +9.5 s).
client GET "/api/v2/stats/tasks?from=$((H - 5 * HOURMS))&to=$((H - 4 * HOURMS))"
expect_eq "(window) hour H-5: 20 created, 16 completed, 4 failed" \
	"$(field '"\(.totalTasks) \(.successfulTasks) \(.failedTasks)"')" "20 16 4"
client GET "/api/v2/stats/tasks?from=$((H - 5 * HOURMS + 5000))&to=$((H - 5 * HOURMS + 10000))"
expect_eq "(window) 5 s inside a folded hour are exact from its raw events" \
	"$(field '"\(.totalTasks) \(.window.approximate)"')" "5 false"
from_iso=$(date -u -d "@$(((H - 4 * HOURMS) / 1000))" +%Y-%m-%dT%H:%M:%SZ)
client GET "/api/v2/stats/tasks?from=$from_iso"
expect_eq "(window) RFC 3339 from: everything since H-4" "$(field .totalTasks)" 25
client GET "/api/v2/stats/tasks?from=yesterday"
expect_eq "(window) a bad from is 400 naming the field" "$STATUS $(field .field)" "400 from"
client GET "/api/v2/stats/tasks?from=2000&to=1000"
expect_eq "(window) to before from is 400" "$STATUS" 400

client GET /api/v2/stats/servers
expect_eq "servers: three rows" "$(field '[.items[].serverId] | join(",")')" "gpu-1,gpu-2,gpu-3"
expect_eq "servers: lastActiveTime of gpu-2 is its last event" \
	"$(field '.items[1].lastActiveTimeMs')" "$((H - 4 * HOURMS + 9500 + 2000 + 3000))"
client GET /api/v2/stats/servers/gpu-3
expect_eq "gpu-3 was online for the first half of H-2 (its first event's from)" \
	"$(field .statusTime.online)" 1800000
check "gpu-3 offline since, in the last 24 h" jqe '.statusTime.offline >= 5400000' <<< "$BODY"
# 15 values; rank 7.5 falls in (500, 1000] after 7: 500 + 500 * 0.5/2 (bucket interpolation).
expect_eq "gpu-3 p50 response time" "$(field .responseTime.p50)" 625
client GET /api/v2/stats/servers/nope
expect_eq "an unknown server is 404" "$STATUS" 404

client GET '/api/v2/stats/hourly?hours=6'
expect_eq "hourly: six items, oldest first" "$(field '.items | length')" 6
expect_eq "hourly: H-5" "$(field '.items[0] | "\(.tasks) \(.successes) \(.failures) \(.averageTime) \(.p95Time)"')" "20 16 4 1040 1187.5"
expect_eq "hourly: H-4 per-server counts" "$(field '.items[1].servers["gpu-2"] | "\(.processed) \(.successes) \(.errors)"')" "10 10 0"
expect_eq "hourly: H-3 is empty" "$(field '.items[2].tasks')" 0
expect_eq "hourly: the last two hours hold the recent five" "$(field '.items[4].tasks + .items[5].tasks')" 5
client GET '/api/v2/stats/hourly?hours=0'
expect_eq "hourly: hours=0 is 400" "$STATUS" 400

client GET /api/v2/stats/performance
expect_eq "performance: 200" "$STATUS" 200
check "performance: 'gpu-3 failed 60% of its tasks in the last hour (3 of 5)'" \
	jqe '[.findings[].text] | index("gpu-3 failed 60% of its tasks in the last hour (3 of 5)") != null' <<< "$BODY"
expect_eq "performance: busiest server" "$(field '.busiestServers[0].serverId')" gpu-3
expect_eq "performance: throughput" "$(field '"\(.throughput.completed) \(.throughput.failed)"')" "2 3"
expect_eq "performance: error breakdown by server" "$(field '.errors.byServer["gpu-3"].failureRate')" 0.6

# ---------------------------------------------------------------- (b) idempotent
before=$(stats_digest "$STATE")
out=$(rollup)
expect_eq "second rollup folds nothing" "$(grep -o '[0-9]* hours folded' <<< "$out")" "0 hours folded"
expect_eq "second rollup leaves stats/ byte for byte" "$(stats_digest "$STATE")" "$before"
out=$(rollup --check)
expect_eq "rollup --check: totals match the documents" "$?" 0
out=$(rollup --quiet)
expect_eq "rollup --quiet prints nothing when all is well" "$out" ""

# ---------------------------------------------------------------- (c) crashes
rm "$STATE/stats/totals.json"
rollup > /dev/null
expect_eq "totals.json deleted: rebuilt to the same bytes" "$(stats_digest "$STATE")" "$before"

mkstate() {
	STATE_DIR="$1" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT "$BUILD/taskgate.fcgi" init > /dev/null &&
		python3 "$WORK/events.py" "$1" big > /dev/null
}
mkstate "$WORK/ref"
STATE_DIR="$WORK/ref" "$ROLLUP" > /dev/null
ref=$(stats_digest "$WORK/ref")
check "the reference fold wrote 48 documents" test "$(ls "$WORK/ref/stats/hourly" | wc -l)" -eq 48
caught=0
for delay in 0.15 0.3 0.45; do
	d="$WORK/crash-$delay"
	cp -a "$WORK/ref" "$d" && rm -rf "$d/stats/hourly"/* "$d/stats/totals.json" "$d/run"/rollup.*
	STATE_DIR="$d" "$ROLLUP" > /dev/null &
	pid=$!
	sleep "$delay"
	if kill -9 "$pid" 2> /dev/null; then
		wait "$pid" 2> /dev/null
		n=$(ls "$d/stats/hourly" | wc -l)
		echo "# kill -9 after ${delay}s: $n of 48 documents, totals $(test -f "$d/stats/totals.json" && echo present || echo absent)"
		[ "$n" -lt 48 ] && caught=$((caught + 1))
	else
		wait "$pid" 2> /dev/null
		echo "# the fold finished before ${delay}s"
	fi
	STATE_DIR="$d" "$ROLLUP" > /dev/null
	expect_eq "kill -9 after ${delay}s, then a run: identical to the uninterrupted fold" "$(stats_digest "$d")" "$ref"
	STATE_DIR="$d" "$ROLLUP" --check > /dev/null
	expect_eq "kill -9 after ${delay}s: --check agrees" "$?" 0
done
check "at least one kill -9 hit the fold half way" test "$caught" -ge 1
STATE_DIR="$WORK/ref" "$ROLLUP" > /dev/null
expect_eq "the big tree is idempotent too" "$(stats_digest "$WORK/ref")" "$ref"
rm -rf "$WORK/ref" "$WORK"/crash-*

# ---------------------------------------------------------------- (d) /metrics
code=$(curl -s -m 30 -o "$WORK/metrics.txt" -D "$WORK/metrics.h" -w '%{http_code}' \
	-H "Authorization: Bearer $CLIENT" "$BASE/metrics")
expect_eq "/metrics with the client token: 200" "$code" 200
check "/metrics is text/plain version 0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$WORK/metrics.h"
check "/metrics parses with the strict checker" promcheck "$WORK/metrics.txt"
check "the checker refuses 16 kinds of broken exposition" promcheck_self_test
check "taskgate_tasks_total{event=\"created\"} 45" grep -qx 'taskgate_tasks_total{event="created"} 45' "$WORK/metrics.txt"
check "no task counter has a status label" bash -c '! grep -q "^taskgate_[a-z_]*tasks_total{.*status=" "$1"' _ "$WORK/metrics.txt"
check "a server that answered has its response time" grep -qE '^taskgate_server_response_time_seconds\{server="[^"]+"\} [0-9.e+-]+$' "$WORK/metrics.txt"
check "duration histogram count 45" grep -qx 'taskgate_task_duration_seconds_count 45' "$WORK/metrics.txt"
check "duration histogram sum 70 s" grep -qx 'taskgate_task_duration_seconds_sum 70' "$WORK/metrics.txt"
check "duration histogram le=2.5 bucket holds 35" grep -qx 'taskgate_task_duration_seconds_bucket{le="2.5"} 35' "$WORK/metrics.txt"
check "taskgate_server_up for every server" test "$(grep -c '^taskgate_server_up{server="gpu-' "$WORK/metrics.txt")" -eq 3
check "queue depth gauge" grep -qx 'taskgate_queue_depth 0' "$WORK/metrics.txt"
check "HELP and TYPE for the model counter" grep -q '^# TYPE taskgate_model_tasks_total counter$' "$WORK/metrics.txt"
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$BASE/metrics")
expect_eq "/metrics without a token: 401" "$code" 401

# ---------------------------------------------------------------- (e) alerts
python3 "$WORK/hook.py" "$WORK/hook.port" "$WORK/hook.log" &
_pids+=($!)
wait_for test -s "$WORK/hook.port" || not_ok "webhook receiver starts"
stats_config ".alertWebhook = \"http://127.0.0.1:$(cat "$WORK/hook.port")/hook\" | .alerts = [
	{\"name\":\"sdxl-failures\",\"kind\":\"failure_rate\",\"model\":\"sdxl\",\"threshold\":50,\"windowMinutes\":60,\"minTasks\":3},
	{\"name\":\"backlog\",\"kind\":\"queue_depth\",\"threshold\":100},
	{\"name\":\"llama-dead\",\"kind\":\"no_healthy_server\",\"model\":\"llama\"},
	{\"name\":\"broken\",\"kind\":\"nope\"}]"
out=$(rollup)
expect_eq "rollup with an alert firing exits 1 (WARNING)" "$?" 1
check "the summary counts it" grep -q '1 alert firing' <<< "$out"
client GET /api/v2/alerts
expect_eq "alerts: sdxl-failures is firing" "$(field '[.firing[].name] | join(",")')" sdxl-failures
check "alerts: the message says why" jqe '.firing[0].message | test("model sdxl: 60% of the 5 tasks")' <<< "$BODY"
expect_eq "alerts: the bad rule is reported" "$(field '.ruleErrors | length')" 1
expect_eq "alerts: three usable rules and the built-in one" "$(field '[.rules[].name] | join(",")')" "sdxl-failures,backlog,llama-dead,unservable-tasks"
wait_for test -s "$WORK/hook.log"
expect_eq "webhook: one POST" "$(wc -l < "$WORK/hook.log")" 1
check "webhook: state firing" jqe 'select(.alert == "sdxl-failures" and .state == "firing")' "$WORK/hook.log"
a1=$(sha256sum < "$STATE/stats/alerts.json")
rollup > /dev/null
sleep 0.3
expect_eq "webhook: no second POST while it keeps firing" "$(wc -l < "$WORK/hook.log")" 1
expect_eq "alerts.json unchanged by an idle run" "$(sha256sum < "$STATE/stats/alerts.json")" "$a1"
curl -s -m 30 -H "Authorization: Bearer $ADMIN" "$BASE/metrics" > "$WORK/metrics2.txt"
check "/metrics: taskgate_alerts_firing 1" grep -qx 'taskgate_alerts_firing 1' "$WORK/metrics2.txt"
check "/metrics with an alert still parses" promcheck "$WORK/metrics2.txt"
stats_config '.alerts[0].threshold = 90'
rollup > /dev/null
expect_eq "raising the threshold resolves it: exit 0" "$?" 0
wait_for test "$(wc -l < "$WORK/hook.log")" -ge 2
expect_eq "webhook: a second POST, resolved" "$(tail -1 "$WORK/hook.log" | jq -r .state)" resolved
client GET /api/v2/alerts
expect_eq "alerts: resolved, with history" "$(field '"\(.firing | length) \(.resolved[0].name) \(.history | length)"')" "0 sdxl-failures 2"

# ---------------------------------------------------------------- (f) real tasks
t0=$(($(date +%s%3N) - 1))
admin POST /api/v2/servers "{\"id\":\"real-1\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"$cog/predictions\",\"health\":\"$cog/health-check\"},\"capabilities\":{\"maxConcurrent\":2,\"supportedModels\":[\"real-m\"]}}"
expect_eq "register real-1" "$STATUS" 201
# The mock holds its two running predictions until the other two have waited
# in the queue for at least 200 ms, however slowly the front end creates them.
check "the cog mock holds running predictions" mock_control cog '{"hold":true}'
ids=()
for i in 1 2 3 4; do
	client POST /api/v2/tasks "{\"model\":\"real-m\",\"input\":{\"n\":$i}}"
	ids+=("$(field .id)")
done
count_status() { # STATUS: how many of the four tasks have it
	local id n=0
	for id in "${ids[@]}"; do
		client GET "/api/v2/tasks/$id"
		[ "$(field .status)" = "$1" ] && n=$((n + 1))
	done
	echo "$n"
}
two_running() { [ "$(count_status PROCESSING)" = 2 ]; }
check "real tasks: two run (held)" wait_for two_running
expect_eq "real tasks: two wait for a slot" "$(count_status QUEUED)" 2
sleep 0.2
check "the cog mock lets them end" mock_control cog '{"hold":false}'
done_all() {
	local id
	for id in "${ids[@]}"; do
		client GET "/api/v2/tasks/$id"
		[ "$(field .status)" = COMPLETED ] || return 1
	done
}
check "four real tasks complete" wait_for done_all
client GET "/api/v2/stats/tasks?from=$t0&model=real-m"
expect_eq "real tasks: created and completed counted" \
	"$(field '.models["real-m"] | "\(.totalTasks) \(.successfulTasks) \(.dispatchedAttempts)"')" "4 4 4"
check "real tasks: run times measured (mock delay 200 ms)" \
	jqe '.models["real-m"].processingTime | .count == 4 and .min >= 150' <<< "$BODY"
check "real tasks: queue waits recorded (two waited for a slot)" \
	jqe '.models["real-m"].queueWait | .count == 4 and .max >= 100' <<< "$BODY"
client GET /api/v2/stats/servers/real-1
expect_eq "real-1: tasksProcessed 4, successRate 1" "$(field '"\(.tasksProcessed) \(.successRate)"')" "4 1"

# ---------------------------------------------------------------- (g) the status page
admin PUT /api/v2/servers/gpu-2/maintenance '{"enabled":true}'
# gpu-4 answers nothing: three failed checks take it offline (health rise 2 / fall 3).
admin POST /api/v2/servers '{"id":"gpu-4","protocol":"http-json","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"},"capabilities":{"maxConcurrent":1,"supportedModels":["none"]}}'
for i in 1 2 3; do STATE_DIR=$STATE "$BUILD/cron/taskgate-health" --all --quiet > /dev/null; done
client GET /api/v2/servers/gpu-4
expect_eq "gpu-4 is offline after three failed checks" "$(field .status)" offline
code=$(curl -s -m 30 -o "$WORK/status.html" -D "$WORK/status.h" -w '%{http_code}' "$BASE/status")
expect_eq "/status without credentials: 401" "$code" 401
check "/status asks for Basic credentials" grep -qi '^WWW-Authenticate: Basic realm="taskgate"' "$WORK/status.h"
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -u "x:$CLIENT" "$BASE/status")
expect_eq "/status with the client token: 403" "$code" 403
code=$(curl -s -m 30 -o "$WORK/status.html" -D "$WORK/status.h" -w '%{http_code}' -u "operator:$ADMIN" "$BASE/status")
expect_eq "/status with the admin token as Basic password: 200" "$code" 200
check "/status is HTML" grep -qi '^Content-Type: text/html' "$WORK/status.h"
check "/status runs no script" bash -c "! grep -qi '<script' '$WORK/status.html'"
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/status")
expect_eq "/status with the admin token as Bearer: 200" "$code" 200

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROMIUM" ]; then
	profile=$(mktemp -d "$WORK/chrome.XXXXXX")
	chrome() {
		timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
			--disable-background-networking --disable-component-update --disable-sync \
			--no-first-run --no-default-browser-check --hide-scrollbars \
			--user-data-dir="$profile" "$@" 2> "$WORK/chrome.err"
	}
	url="http://operator:$ADMIN@127.0.0.1:$PORT/status"
	chrome --dump-dom "$url" > "$WORK/dom.html"
	check "Chromium renders /status (DOM dumped)" grep -q 'taskgate status' "$WORK/dom.html"
	for s in gpu-1 gpu-2 gpu-3 gpu-4 real-1; do
		check "Chromium: a row for $s" grep -q "<tr class=\"server st-[a-z]*\" data-server=\"$s\"" "$WORK/dom.html"
	done
	check "Chromium: gpu-2 shows maintenance" grep -q 'data-server="gpu-2" data-status="maintenance"' "$WORK/dom.html"
	check "Chromium: gpu-4 shows offline" grep -q 'data-server="gpu-4" data-status="offline"' "$WORK/dom.html"
	check "Chromium: the findings say gpu-4 is offline" grep -q 'gpu-4 is offline' "$WORK/dom.html"
	for c in chart-throughput chart-failures chart-p95; do
		check "Chromium: SVG chart $c" grep -q "<svg class=\"chart\" id=\"$c\"" "$WORK/dom.html"
	done
	expect_eq "Chromium: 24 bars in each of the three charts" "$(grep -o '<rect class="bar"' "$WORK/dom.html" | wc -l)" 72
	check "Chromium: the findings list the failing server" grep -q 'gpu-3 failed 60% of its tasks' "$WORK/dom.html"
	chrome --screenshot="$WORK/status.png" --window-size=1280,1500 "$url" > /dev/null
	if [ -s "$WORK/status.png" ] && [ "$(head -c 8 "$WORK/status.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
		ok "Chromium: a PNG screenshot of /status"
		# The README's picture: refreshed on request only, so a test run leaves the
		# work tree clean (UPDATE_SCREENSHOT=1 make test).
		shot="$ROOT/tests/screenshots/status.png"
		if [ "${UPDATE_SCREENSHOT:-0}" = 1 ] || [ ! -e "$shot" ]; then
			mkdir -p "$(dirname "$shot")" && cp "$WORK/status.png" "$shot"
		fi
	else
		not_ok "Chromium: a PNG screenshot of /status"
	fi
else
	ok "Chromium renders /status # SKIP chromium is not installed (make deps)"
fi

# ---------------------------------------------------------------- (h) piggy-backing
eval "$(python3 - "$STATE" << 'EOF'
import json, sys, time
HOUR = 3600000
now = int(time.time() * 1000)
h = now - now % HOUR - 3 * HOUR
name = time.strftime("%Y%m%d%H", time.gmtime(h / 1000))
with open("%s/stats/events/%s.jsonl" % (sys.argv[1], name), "a") as f:
    f.write(json.dumps({"t": h + 1000, "type": "created", "task": "late", "model": "p"}) + "\n")
print("PIG=%s" % name)
EOF
)"
rm -f "$STATE/run/rollup.last"
stats_config '.piggyback = {"enabled": true, "rollupSeconds": 300, "sweepSeconds": 86400, "healthSeconds": 86400}'
client GET /api/v2/stats/hourly
piggy_done() { jqe --arg h "$PIG" '.folded[$h] != null' "$STATE/stats/totals.json"; }
check "an overdue rollup rides on a request" wait_for piggy_done
check "the piggy-backed run stamped run/rollup.last" wait_for test -s "$STATE/run/rollup.last"
rollup --check > /dev/null
expect_eq "after piggy-backing, --check agrees" "$?" 0

check "every state file parses" all_state_parses
finish
