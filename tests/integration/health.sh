#!/usr/bin/env bash
# cron/taskgate-health end to end: mock Cog and http-json backends registered through
# the API (lighttpd), checked with build/cron/taskgate-health against the same state
# tree. The statuses must follow HAProxy's counter exactly (rise 2, fall 3: a failure
# leaves a server online, the second makes it degraded, the third offline; one pass
# leaves it offline, the second brings it online), BUSY stays online, STARTING is not
# routable but not an error (a registration probes once: a server that does not pass
# it is registered starting, and one that never answers goes offline on its third
# failure, the registration's included), a run over 50 hanging servers takes about one timeout,
# the run lock keeps a second copy out, and the exit codes are Nagios'. Each server
# keeps its last check (lastCheck), and Cog answers carrying 25 KB or 1 MiB of setup
# logs keep a READY server online.
. "$(dirname "$0")/../lib.sh"

HEALTH="$BUILD/cron/taskgate-health"
TIMEOUT_MS=1000

# run_health ARGS...: one run against $STATE; sets RC, OUT, ERR, TOOK (ms).
run_health() {
	local t0 t1
	t0=$(date +%s%N)
	STATE_DIR="$STATE" "$HEALTH" "$@" > "$WORK/health.out" 2> "$WORK/health.err"
	RC=$?
	t1=$(date +%s%N)
	TOOK=$(((t1 - t0) / 1000000))
	OUT=$(cat "$WORK/health.out")
	ERR=$(cat "$WORK/health.err")
	cat "$WORK/health.err" >> "$WORK/health-all.err"
}

# field ID JQ: a field of the stored server (the file is the truth)
field() { jq -r "$2" "$STATE/servers/$1.json"; }
status_of() { field "$1" .status; }

register() { # id protocol port health-path
	admin POST /api/v2/servers "{\"id\":\"$1\",\"protocol\":\"$2\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$3/predictions\",\"health\":\"http://127.0.0.1:$3$4\"}}"
	[ "$STATUS" = 201 ]
}

control() { # port json
	curl -sf -m 5 -X POST -H 'Content-Type: application/json' --data-binary "$2" \
		"http://127.0.0.1:$1/__control" > /dev/null
}

# A listener that accepts connections and never answers (used when the mock's hang
# mode does not cover /health-check).
start_hanger() {
	python3 - "$WORK/hanger.port" <<'EOF' > /dev/null 2>&1 &
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1024)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(tmp, sys.argv[1])
held = []
s.settimeout(1)
end = time.time() + 900
while time.time() < end:
    try:
        c, _ = s.accept()
        held.append(c)
    except socket.timeout:
        pass
EOF
	_pids+=($!)
	wait_for test -s "$WORK/hanger.port"
}

# ---- set-up --------------------------------------------------------------------

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
check "taskgate-health is built" test -x "$HEALTH"

# Short probe timeouts so a hanging server costs 1 s per run.
# The registration probe's own timeout is short too: 50 hanging servers are registered.
jq --argjson t "$TIMEOUT_MS" '.health = {"timeoutMs": $t, "connectTimeoutMs": 500, "registrationTimeoutMs": 300}' \
	"$STATE/config.json" > "$STATE/config.json.new" && mv "$STATE/config.json.new" "$STATE/config.json"

# ---- usage and UNKNOWN ---------------------------------------------------------

STATE_DIR="$STATE" "$HEALTH" --help > "$WORK/help.out" 2>&1
expect_eq "--help exits 0" "$?" 0
check "--help names --for, --every, --quiet, --all" \
	grep -q -- '--every' "$WORK/help.out"
run_health --bogus
expect_eq "an unknown option is UNKNOWN (3)" "$RC" 3
run_health --for -5
expect_eq "a bad --for value is UNKNOWN (3)" "$RC" 3

RC=0
OUT=$(STATE_DIR="$WORK/no-such-tree" "$HEALTH" 2>/dev/null) || RC=$?
expect_eq "a missing state tree is UNKNOWN (3)" "$RC" 3
expect_eq "and says so on one line" "${OUT%% - *}" "TASKGATE HEALTH UNKNOWN"
check "and does not create the tree" test ! -e "$WORK/no-such-tree"
mkdir -p "$WORK/empty-tree"
RC=0
OUT=$(STATE_DIR="$WORK/empty-tree" "$HEALTH" 2>/dev/null) || RC=$?
expect_eq "a tree without config.json is UNKNOWN (3)" "$RC" 3

# ---- no servers ----------------------------------------------------------------

run_health --quiet
expect_eq "no servers, --quiet: exit 0" "$RC" 0
expect_eq "no servers, --quiet: silent" "$OUT" ""
run_health
expect_eq "no servers: OK line" "$OUT" \
	"TASKGATE HEALTH OK - 0 up, 0 degraded, 0 down | up=0 degraded=0 down=0"
check "a run leaves its stamp" test -s "$STATE/run/health.last"

# ---- the mocks -----------------------------------------------------------------

start_mock ready --protocol cog || not_ok "mock ready starts"
start_mock switch --protocol cog || not_ok "mock switch starts"
start_mock flap --protocol cog --mode flap || not_ok "mock flap starts"
start_mock busy --protocol cog --health BUSY || not_ok "mock busy starts"
start_mock starting --protocol cog --mode starting || not_ok "mock starting starts"
start_mock http --protocol http-json || not_ok "mock http starts"
start_mock hang --protocol cog --mode hang || not_ok "mock hang starts"

# Does the mock's hang mode hold health checks too? If not, use a silent listener.
if curl -s -m 2 -o /dev/null "http://127.0.0.1:$MOCK_PORT_hang/health-check"; then
	echo "# mock hang mode answers /health-check; using a silent listener instead"
	start_hanger || not_ok "silent listener starts"
	HANG_PORT=$(cat "$WORK/hanger.port")
else
	HANG_PORT=$MOCK_PORT_hang
fi
HANG_PATH=/health-check

check "register ready (cog)" register ready cog "$MOCK_PORT_ready" /health-check
check "register switch (cog)" register switch cog "$MOCK_PORT_switch" /health-check
check "register flap (cog)" register flap cog "$MOCK_PORT_flap" /health-check
check "register busy (cog)" register busy cog "$MOCK_PORT_busy" /health-check
check "register starting (cog)" register starting cog "$MOCK_PORT_starting" /health-check
check "register http (http-json)" register http http-json "$MOCK_PORT_http" /health
check "register hang (cog)" register hang cog "$HANG_PORT" "$HANG_PATH"

SERVERS="ready switch flap busy starting http hang"

# ---- the counter, run by run ---------------------------------------------------
# Expected status after runs 1..6. switch and http fail from run 2 to run 4 and pass
# again from run 5; hang fails every run (and failed its registration probe);
# starting answers STARTING throughout, within its setup grace; flap alternates
# pass/fail.
declare -A WANT=(
	[ready]="online online online online online online"
	[switch]="online online degraded offline offline online"
	[flap]="online online online online online online"
	[busy]="online online online online online online"
	[starting]="starting starting starting starting starting starting"
	[http]="online online degraded offline offline online"
	[hang]="starting offline offline offline offline offline"
)
WANT_RC=(0 1 1 1 1 1)
WANT_SWITCH_COUNTER=(4 3 2 0 1 4)

for run in 1 2 3 4 5 6; do
	if [ "$run" = 2 ]; then
		control "$MOCK_PORT_switch" '{"health":"UNHEALTHY"}' || not_ok "switch -> UNHEALTHY"
		control "$MOCK_PORT_http" '{"health":"UNHEALTHY"}' || not_ok "http -> UNHEALTHY"
	fi
	if [ "$run" = 5 ]; then
		control "$MOCK_PORT_switch" '{"health":"READY"}' || not_ok "switch -> READY"
		control "$MOCK_PORT_http" '{"health":"READY"}' || not_ok "http -> READY"
	fi
	run_health --all
	expect_eq "run $run: exit code" "$RC" "${WANT_RC[$((run - 1))]}"
	for s in $SERVERS; do
		read -r -a want <<< "${WANT[$s]}"
		expect_eq "run $run: $s is ${want[$((run - 1))]}" "$(status_of "$s")" \
			"${want[$((run - 1))]}"
	done
	expect_eq "run $run: switch's counter" "$(field switch .checkCounter)" \
		"${WANT_SWITCH_COUNTER[$((run - 1))]}"
	if [ "$run" = 1 ]; then
		expect_eq "run 1: Nagios line" "$OUT" \
			"TASKGATE HEALTH OK - 5 up, 0 degraded, 0 down, 2 starting | up=5 degraded=0 down=0"
	fi
	if [ "$run" = 3 ]; then
		expect_eq "run 3: Nagios line" "$OUT" \
			"TASKGATE HEALTH WARNING - 3 up, 2 degraded, 1 down, 1 starting | up=3 degraded=2 down=1"
	fi
done

expect_eq "hang: consecutiveFailures counts every failed check (and the registration's)" \
	"$(field hang .consecutiveFailures)" 7
expect_eq "starting: STARTING is not counted as an error" \
	"$(field starting .consecutiveFailures)" 0
expect_eq "starting: nor in its health score" "$(field starting .healthScore)" 100
expect_eq "busy: BUSY is never a failure" "$(field busy .consecutiveFailures)" 0
check "busy: lastSuccessAt is set" [ "$(field busy .lastSuccessAt)" -gt 0 ]
check "flap: healthScore shows the flapping" [ "$(field flap .healthScore)" -lt 100 ]
expect_eq "ready: healthScore 100" "$(field ready .healthScore)" 100
check "hang: healthScore fell" [ "$(field hang .healthScore)" -lt 20 ]
check "switch: statusSince moved on its last change" \
	[ "$(field switch .statusSince)" -ge "$(field switch .lastSuccessAt)" ]
ewma_kept() { jq -e '.responseTimeEwmaMs > 0' "$STATE/servers/ready.json" > /dev/null; }
check "ready: a response-time EWMA is kept" ewma_kept
client GET /api/v2/servers/hang
expect_eq "the API shows the checked status" "$(jget .status)" offline
check "the API shows lastHealthCheck" [ "$(jget .lastHealthCheck)" -gt 0 ]
check "status changes are logged" grep -q "server switch online -> degraded" "$WORK/health-all.err"
check "status changes are recorded as events" \
	grep -qh '"type":"server_status"' "$STATE"/stats/events/*.jsonl

# lastCheck: the last check's outcome, as an operator reads it
expect_eq "ready: lastCheck ok, HTTP 200, pass" "$(field ready '"\(.lastCheck.ok) \(.lastCheck.status) \(.lastCheck.verdict) \(.lastCheck.error)"')" "true 200 pass null"
expect_eq "ready: lastCheck.at is lastHealthCheck" "$(field ready .lastCheck.at)" "$(field ready .lastHealthCheck)"
expect_eq "hang: lastCheck says why (no answer)" "$(field hang '"\(.lastCheck.ok) \(.lastCheck.status) \(.lastCheck.verdict)"')" "false null fail"
check "hang: lastCheck.error names the timeout" jqe '.lastCheck.error | startswith("timed out after")' "$STATE/servers/hang.json"
expect_eq "starting: lastCheck is STARTING, not an error code" "$(field starting '"\(.lastCheck.status) \(.lastCheck.verdict) \(.lastCheck.error)"')" "200 starting status STARTING"
client GET /api/v2/servers/hang
check "the API shows lastCheck" jqe '.lastCheck.error | length > 0' <<< "$BODY"

# Cog repeats its setup logs in every /health-check answer: 25 KB and 1 MiB ones
# keep READY servers online (only the status is read; the rest is streamed past).
start_mock chatty --protocol cog || not_ok "mock chatty starts"
start_mock verbose --protocol cog || not_ok "mock verbose starts"
check "chatty: 25 KB of setup logs" control "$MOCK_PORT_chatty" '{"setupLogsBytes":25000}'
check "verbose: 1 MiB of setup logs" control "$MOCK_PORT_verbose" '{"setupLogsBytes":1048576}'
check "chatty's health answer is over 25 KB" \
	test "$(curl -s -m 5 "http://127.0.0.1:$MOCK_PORT_chatty/health-check" | wc -c)" -gt 25000
check "register chatty (cog)" register chatty cog "$MOCK_PORT_chatty" /health-check
check "register verbose (cog)" register verbose cog "$MOCK_PORT_verbose" /health-check
for run in 1 2 3 4; do run_health --all; done
for s in chatty verbose; do
	expect_eq "$s: online after four checks" "$(status_of "$s")" online
	expect_eq "$s: no failure counted" "$(field "$s" .consecutiveFailures)" 0
	expect_eq "$s: lastCheck ok, pass" "$(field "$s" '"\(.lastCheck.ok) \(.lastCheck.verdict)"')" "true pass"
	admin DELETE "/api/v2/servers/$s"
done

# maintenance: still checked, never changed by checks
admin PUT /api/v2/servers/ready/maintenance '{"enabled":true}'
before=$(field ready .lastHealthCheck)
run_health --all
check "a server in maintenance is still checked" [ "$(field ready .lastHealthCheck)" -gt "$before" ]
expect_eq "checks leave maintenance on" "$(field ready .maintenance)" true
admin PUT /api/v2/servers/ready/maintenance '{"enabled":false}'

# Without --all only due servers are checked: nothing is due right after a run.
before=$(field ready .lastHealthCheck)
run_health
expect_eq "without --all, a server not due is not checked" "$(field ready .lastHealthCheck)" "$before"
check "nextCheckAt lies ahead" [ "$(field ready .nextCheckAt)" -gt "$(date +%s%3N)" ]

# ---- the run lock --------------------------------------------------------------

# Another holder of the run lock (flock(2), as a second copy would take it).
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(60)' "$STATE/run/health.lock" "$WORK/holder.ready" &
holder=$!
_pids+=($holder)
wait_for test -e "$WORK/holder.ready" || not_ok "a lock holder starts"
before=$(field hang .consecutiveFailures)
run_health --all
expect_eq "run lock held: exit 0" "$RC" 0
expect_eq "run lock held: silent" "$OUT" ""
check "run lock held: exits at once (${TOOK} ms)" [ "$TOOK" -lt 500 ]
expect_eq "run lock held: nothing checked" "$(field hang .consecutiveFailures)" "$before"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# Two copies started together: one works, the other exits 0 at once.
one_copy() { # out-file result-file
	local t0 rc=0
	t0=$(date +%s%N)
	STATE_DIR="$STATE" "$HEALTH" --all > "$1" 2>/dev/null || rc=$?
	echo "$rc $((($(date +%s%N) - t0) / 1000000))" > "$2"
}
before=$(field hang .consecutiveFailures)
one_copy "$WORK/c1.out" "$WORK/c1.res" &
c1=$!
one_copy "$WORK/c2.out" "$WORK/c2.res" &
c2=$!
wait "$c1" "$c2"
read -r rc1 ms1 < "$WORK/c1.res"
read -r rc2 ms2 < "$WORK/c2.res"
echo "# copy 1: exit $rc1 in $ms1 ms, $(wc -c < "$WORK/c1.out") bytes; copy 2: exit $rc2 in $ms2 ms, $(wc -c < "$WORK/c2.out") bytes"
if [ -s "$WORK/c1.out" ]; then
	worker_ms=$ms1 idle_rc=$rc2 idle_ms=$ms2 idle_out=$WORK/c2.out
else
	worker_ms=$ms2 idle_rc=$rc1 idle_ms=$ms1 idle_out=$WORK/c1.out
fi
expect_eq "two copies: the idle one exits 0" "$idle_rc" 0
check "two copies: the idle one is silent" test ! -s "$idle_out"
check "two copies: the idle one exits at once ($idle_ms ms)" [ "$idle_ms" -lt 500 ]
check "two copies: the worker did a full run ($worker_ms ms)" [ "$worker_ms" -ge $((TIMEOUT_MS - 100)) ]
expect_eq "two copies: the servers were checked exactly once" \
	"$(field hang .consecutiveFailures)" $((before + 1))

# ---- 50 hanging servers: about one timeout -------------------------------------

reg_ok=0
for i in $(seq -w 1 50); do
	register "h$i" cog "$HANG_PORT" "$HANG_PATH" && reg_ok=$((reg_ok + 1))
done
expect_eq "50 hanging servers registered" "$reg_ok" 50
run_health --all
echo "# 57 servers, 51 of them hanging: one run took $TOOK ms (timeout $TIMEOUT_MS ms)"
check "51 hanging checks take about one timeout ($TOOK ms < $((3 * TIMEOUT_MS)) ms)" \
	[ "$TOOK" -lt $((3 * TIMEOUT_MS)) ]
check "and at least one timeout ($TOOK ms)" [ "$TOOK" -ge $((TIMEOUT_MS - 100)) ]
failed_once=0
for i in $(seq -w 1 50); do # once at registration, once by the run
	[ "$(field "h$i" .consecutiveFailures)" = 2 ] && failed_once=$((failed_once + 1))
done
expect_eq "every hanging server was checked once" "$failed_once" 50

# ---- CRITICAL: nothing up ------------------------------------------------------

for s in ready switch flap busy starting http; do
	admin DELETE "/api/v2/servers/$s"
done
run_health --all
expect_eq "no server up: CRITICAL (2)" "$RC" 2
run_health --all
expect_eq "and still CRITICAL" "$RC" 2
expect_eq "CRITICAL line" "$OUT" \
	"TASKGATE HEALTH CRITICAL - 0 up, 0 degraded, 51 down | up=0 degraded=0 down=51"
run_health --all --quiet
expect_eq "--quiet still prints when not OK" "${OUT%% -*}" "TASKGATE HEALTH CRITICAL"

# ---- --for / --every -----------------------------------------------------------

admin DELETE /api/v2/servers/hang
for i in $(seq -w 1 50); do admin DELETE "/api/v2/servers/h$i"; done
register refused http-json 1 /health || not_ok "register refused"
run_health --all --for 3 --every 1
expect_eq "--for 3 --every 1: three runs (after the registration's probe)" \
	"$(field refused .consecutiveFailures)" 4
check "--for 3 --every 1: ends within the window ($TOOK ms)" \
	test "$TOOK" -ge 1900 -a "$TOOK" -lt 3500
expect_eq "--for: the last run's verdict" "$RC" 2

check "every state file parses" all_state_parses
finish
