#!/usr/bin/env bash
# A deadline counts against a server only when the server took the attempt:
# (a) a Cog server that accepts a prediction (202) and never sends its webhook: the
#     attempt records acceptedAt; its timeout is the server's failure;
# (b) an attempt taskgate lost (the process sending it was killed before the server's
#     answer came back): no acceptedAt; its timeout retries the task and leaves the
#     server's health as it was, and the log says why.
# Every loop is bounded; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"
sweep() { STATE_DIR="$STATE" "$BUILD/cron/taskgate-sweep" "$@"; }

start_taskgate 2 || { not_ok "taskgate starts"; finish; exit 1; }
# This test decides when the sweep runs; no clock margin.
set_config '.piggyback.enabled=false | .sweep.clockMarginMs=0 | .logRequests=false'
start_mock silent --protocol cog --slots 4 --mode no-callback --delay-ms 60000 || not_ok "mock starts"
check "register the silent server" register_mock silent s1 '"capabilities":{"maxConcurrent":4}'
failures() { admin GET /api/v2/servers/s1 > /dev/null; jget .consecutiveFailures; }
expect_eq "s1 starts with no failures" "$(failures)" 0

# ---------------------------------------------------------------- (a)
client POST /api/v2/tasks '{"model":"m","input":{"n":1},"timeoutSeconds":1,"maxAttempts":1}'
a=$(jget .id)
accepted() { [ "$(task_field "$a" '.history[0].acceptedAt // "none"')" != none ]; }
check "(a) the attempt records when s1 accepted it" wait_long accepted
sleep 1.3
sweep --quiet > /dev/null
check "(a) it timed out" wait_status "$a" FAILED 5
expect_eq "(a) the timeout counts against s1" "$(failures)" 1

# ---------------------------------------------------------------- (b)
# A second server that answers its creates 3 s late; s1 steps aside.
start_mock slow --protocol cog --slots 4 --mode no-callback --delay-ms 60000 --accept-delay-ms 3000 ||
	not_ok "(b) mock slow starts"
check "(b) register the slow server" register_mock slow s2 '"capabilities":{"maxConcurrent":4}'
admin PUT /api/v2/servers/s1/maintenance '{"enabled":true}'
failures2() { admin GET /api/v2/servers/s2 > /dev/null; jget .consecutiveFailures; }
client POST /api/v2/tasks '{"model":"m","input":{"n":2},"timeoutSeconds":1,"maxAttempts":2}'
b=$(jget .id)
# The worker sending it: a taskgate.fcgi of this tree that the web server did not
# start (a worker leaves it: init, or a subreaper, adopts it).
sender() {
	local p pp
	for p in /proc/[0-9]*; do
		grep -qszFx "STATE_DIR=$STATE" "$p/environ" 2>/dev/null || continue
		grep -qsF taskgate.fcgi "$p/cmdline" || continue
		pp=$(awk '{print $4}' "$p/stat" 2>/dev/null)
		case $(cat "/proc/$pp/comm" 2>/dev/null) in
		lighttpd | apache2) continue ;;
		esac
		echo "${p#/proc/}"
	done
}
received() { mock slow /__requests | jq -e --arg t "$b" 'any(.[]; .path | contains($t))' > /dev/null; }
check "(b) the create reached the server" wait_long received
pids=$(sender)
check "(b) the sending worker is found" test -n "$pids"
kill -9 $pids 2>/dev/null
expect_eq "(b) the attempt has no acceptedAt" "$(task_field "$b" '.history[0].acceptedAt')" null
sleep 1.3
out=$(sweep)
check "(b) the sweep timed it out" grep -q '1 timed out' <<< "$out"
expect_eq "(b) and it is queued for its second attempt" "$(task_field "$b" .status)" QUEUED
expect_eq "(b) s2 is not blamed for taskgate's loss" "$(failures2)" 0
check "(b) the log says why" grep -rqs "timed out before s2 acknowledged it: not counted" "$WORK/lighttpd" "$WORK/apache/logs" "$STATE/log"
finish
