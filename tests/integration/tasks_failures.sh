#!/usr/bin/env bash
# Backend failures through lighttpd, with real mock backends and no cron:
#  (a) busy (Cog 409): the task goes to another server, not counted as a failure;
#      with no other server it waits QUEUED
#  (b) bad input (422): FAILED at once, no retry
#  (c) error 500 / connection refused: retried on another server; after
#      maxAttempts FAILED with an error naming why
#  (d) starting (503): not a failure, the task waits
#  (e) a backend dying mid-task: the task stays PROCESSING (the timeout sweep is a
#      later issue); a cancel frees the slot
# The retry backoff is set to 0 in config.json so retries are due at once, and the
# piggy-backed sweep is off, so only the request path moves tasks.
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

# reg ID PROTOCOL PORT MAXC MODEL [HEALTH_PORT]: HEALTH_PORT (default PORT) answers the
# health checks, so a server whose predictions fail can still pass the registration
# probe (a server that fails it is "starting" and takes no task).
reg() {
	local ep hp=${6:-$3}
	if [ "$2" = cog ]; then
		ep="{\"predict\":\"http://127.0.0.1:$3/predictions\",\"health\":\"http://127.0.0.1:$hp/health-check\"}"
	else
		ep="{\"predict\":\"http://127.0.0.1:$3/predict\",\"health\":\"http://127.0.0.1:$hp/health\"}"
	fi
	admin POST /api/v2/servers "{\"id\":\"$1\",\"protocol\":\"$2\",\"endpoints\":$ep,\"capabilities\":{\"maxConcurrent\":$4,\"supportedModels\":[\"$5\"]}}"
	[ "$STATUS" = 201 ]
}
all_status() { # STATUS ID...
	local want=$1 t
	shift
	for t in "$@"; do is_status "$t" "$want" || return 1; done
}
submit() { # MODEL [EXTRA JSON FIELDS] -> TID
	client POST /api/v2/tasks "{\"model\":\"$1\",\"input\":{\"m\":\"$1\"}${2:+,$2}}"
	TID=$(jget .id)
}
# wait_secs N CMD...: polls CMD every 0.1 s for up to N seconds
wait_secs() {
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 $n); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
# nudge: a request that makes taskgate drain its queue after answering (a new task
# for a model nobody serves, cancelled at once).
nudge() {
	client POST /api/v2/tasks '{"model":"nudge-nobody","input":null}'
	client DELETE "/api/v2/tasks/$(jget .id)"
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
# No cron and no piggy-backed sweep or health checks: what happens here is done by
# the request path alone (dispatch, the drain after a freed slot).
tune() { jq ". + {retry: {minBackoffMs: 0, maxBackoffMs: 0, jitter: 0}, piggyback: {enabled: false}}" \
	"$STATE/config.json" > "$STATE/config.json.new" && mv "$STATE/config.json.new" "$STATE/config.json"; }
check "config.json: retry backoff 0, piggy-backed periodic work off" tune

start_mock busy --protocol cog --slots 4 --delay-ms 100 --mode busy || not_ok "mock busy starts"
start_mock good --protocol cog --slots 4 --delay-ms 100 || not_ok "mock good starts"
start_mock bad --protocol cog --slots 4 --mode bad-input || not_ok "mock bad starts"
start_mock badjson --protocol http-json --slots 4 --mode bad-input || not_ok "mock badjson starts"
start_mock err --protocol cog --slots 4 --mode error500 || not_ok "mock err starts"
start_mock err2 --protocol cog --slots 4 --mode error500 || not_ok "mock err2 starts"
start_mock ok2 --protocol cog --slots 4 --delay-ms 100 || not_ok "mock ok2 starts"
start_mock start --protocol cog --slots 4 --mode starting || not_ok "mock start starts"
start_mock dying --protocol cog --slots 4 --delay-ms 60000 || not_ok "mock dying starts"
DYING_PID=${_pids[${#_pids[@]} - 1]}
DEAD_PORT=$(free_port)
DEAD_PORT2=$(free_port)

# ---------------------------------------------------------------- (a) busy
check "(a) register b1 (always 409) for model mb" reg b1 cog "$MOCK_PORT_busy" 2 mb
check "(a) register g1 (ok) for model mb" reg g1 cog "$MOCK_PORT_good" 2 mb
ids=()
for _ in 1 2 3 4; do submit mb; ids+=("$TID"); sleep 0.3; done
check "(a) b1 refused at least one dispatch with 409" wait_for bash -c \
	"[ \$(curl -s http://127.0.0.1:$MOCK_PORT_busy/__stats | jq .rejected) -ge 1 ]"
check "(a) every task completes on g1 within 8 s, with no other request" \
	wait_secs 8 all_status COMPLETED "${ids[@]}"
if ! all_status COMPLETED "${ids[@]}"; then
	echo "# tasks refused by b1 are still QUEUED: $(for t in "${ids[@]}"; do task_field "$t" '"\(.status)/\(.nextAttemptAt)"'; done | paste -sd' ')"
	nudge
	check "(a) ... they complete once another request drains the queue" \
		wait_secs 8 all_status COMPLETED "${ids[@]}"
fi
moved=0 wrong=0
for t in "${ids[@]}"; do
	client GET "/api/v2/tasks/$t"
	h=$(jc '[.history[] | [.serverId, .outcome]]')
	case $h in
	'[["g1","succeeded"]]') ;;
	'[["b1","busy"],["g1","succeeded"]]') moved=$((moved + 1)) ;;
	*) wrong=$((wrong + 1)); echo "# unexpected history of $t: $h" ;;
	esac
	[ "$(jget .failures)" = 0 ] || { wrong=$((wrong + 1)); echo "# $t counts a busy answer as a failure"; }
	[ "$(jget .serverId)" = g1 ] || wrong=$((wrong + 1))
done
check "(a) the refused tasks moved to g1 (history b1 busy, g1 succeeded): $moved" test "$moved" -ge 1
expect_eq "(a) no other history, busy never counts as a failure, all ended on g1" "$wrong" 0
expect_eq "(a) b1's load is 0" "$(server_load b1)" 0
expect_eq "(a) g1's load is 0" "$(server_load g1)" 0
client GET /api/v2/servers/b1
expect_eq "(a) a busy server is not marked offline" "$(jget .status)" online
check "(a) register b2 (always 409) alone for model mbo" reg b2 cog "$MOCK_PORT_busy" 2 mbo
submit mbo
lonely=$TID
check "(a) with only a busy server the task waits QUEUED" wait_for is_status "$lonely" QUEUED
client GET "/api/v2/tasks/$lonely"
expect_eq "(a) ... after one busy attempt that is not a failure" \
	"$(jc '[.attempts, .failures, .history[0].outcome]')" '[1,0,"busy"]'
check "(a) ... with a nextAttemptAt" jqe '.nextAttemptAt > 0' <<< "$BODY"
expect_eq "(a) ... and b2's load 0" "$(server_load b2)" 0
client DELETE "/api/v2/tasks/$lonely"
expect_eq "(a) it can be cancelled from the queue" "$STATUS $(jget .status)" "200 CANCELLED"

# ---------------------------------------------------------------- (b) bad input
check "(b) register r1 (Cog, 422) for model mbad" reg r1 cog "$MOCK_PORT_bad" 2 mbad
check "(b) register r2 (http-json, 422) for model mbadj" reg r2 http-json "$MOCK_PORT_badjson" 2 mbadj
submit mbad '"maxAttempts":5'
rej=$TID
check "(b) Cog 422: the task is FAILED" wait_for is_status "$rej" FAILED
client GET "/api/v2/tasks/$rej"
expect_eq "(b) ... after one attempt, not retried" "$(jc '[.attempts, [.history[].outcome]]')" '[1,["rejected"]]'
check "(b) ... the error says the backend rejected it (422)" jqe '.error | test("422")' <<< "$BODY"
sleep 0.5
expect_eq "(b) ... the backend saw one request" "$(mock bad /__stats | jq .received)" 1
expect_eq "(b) ... r1's load is 0" "$(server_load r1)" 0
submit mbadj '"maxAttempts":5'
rejj=$TID
check "(b) http-json 422: the task is FAILED" wait_for is_status "$rejj" FAILED
expect_eq "(b) ... after one attempt" "$(task_field "$rejj" .attempts)" 1
sleep 0.5
expect_eq "(b) ... the backend saw one request" "$(mock badjson /__stats | jq .received)" 1
expect_eq "(b) ... r2's load is 0" "$(server_load r2)" 0
client GET /api/v2/servers/r1
expect_eq "(b) bad input does not make the server offline" "$(jget .status)" online

# ---------------------------------------------------------------- (c) errors and retries
check "(c) register e1 (500) for model mr" reg e1 cog "$MOCK_PORT_err" 2 mr
check "(c) register o1 (ok) for model mr" reg o1 cog "$MOCK_PORT_ok2" 2 mr
ids=()
for _ in 1 2 3 4; do submit mr '"maxAttempts":3'; ids+=("$TID"); sleep 0.3; done
check "(c) e1 answered 500 at least once" wait_for bash -c \
	"[ \$(curl -s http://127.0.0.1:$MOCK_PORT_err/__stats | jq .rejected) -ge 1 ]"
check "(c) every task completes (retried on o1) within 8 s, with no other request" \
	wait_secs 8 all_status COMPLETED "${ids[@]}"
retried=0 wrong=0
for t in "${ids[@]}"; do
	client GET "/api/v2/tasks/$t"
	h=$(jc '[.history[] | [.serverId, .outcome]]')
	case $h in
	'[["o1","succeeded"]]') ;;
	'[["e1","error"],["o1","succeeded"]]')
		retried=$((retried + 1))
		[ "$(jget .failures)" = 1 ] || { wrong=$((wrong + 1)); echo "# $t: failures $(jget .failures)"; }
		jqe '.history[0].error | test("500")' <<< "$BODY" || { wrong=$((wrong + 1)); echo "# $t: attempt error $(jget .history[0].error)"; } ;;
	*) wrong=$((wrong + 1)); echo "# unexpected history of $t: $h" ;;
	esac
done
check "(c) tasks that hit e1 were retried on o1: $retried" test "$retried" -ge 1
expect_eq "(c) ... with the 500 recorded on the failed attempt, one failure each" "$wrong" 0
expect_eq "(c) e1's load is 0" "$(server_load e1)" 0
expect_eq "(c) o1's load is 0" "$(server_load o1)" 0

check "(c) register e2 (500) for model md" reg e2 cog "$MOCK_PORT_err2" 4 md
check "(c) register x1 (nothing listens on its predict port; good answers its checks) for model md" reg x1 cog "$DEAD_PORT" 4 md "$MOCK_PORT_good"
submit md '"maxAttempts":3'
dead=$TID
check "(c) a task no server can run is FAILED after 3 attempts within 8 s, with no other request" \
	wait_secs 8 is_status "$dead" FAILED
if ! is_status "$dead" FAILED; then
	echo "# it is $(task_field "$dead" '"\(.status), \(.attempts) attempts, nextAttemptAt \(.nextAttemptAt)"')"
	for _ in 1 2 3; do
		is_status "$dead" FAILED && break
		nudge
		wait_secs 2 is_status "$dead" FAILED
	done
	check "(c) ... it fails once other requests drain the queue" is_status "$dead" FAILED
fi
client GET "/api/v2/tasks/$dead"
expect_eq "(c) 3 attempts, 3 failures" "$(jc '[.attempts, .failures]')" '[3,3]'
expect_eq "(c) every attempt ended in error" "$(jc '[.history[].outcome] | unique')" '["error"]'
check "(c) consecutive attempts went to different servers" \
	jqe '[.history[].serverId] as $s | $s[0] != $s[1] and $s[1] != $s[2]' <<< "$BODY"
check "(c) the error says it gave up after 3 attempts" jqe '.error | test("3 failed attempts")' <<< "$BODY"
check "(c) ... and why (HTTP 500 or the refused connection)" \
	jqe '.error | test("HTTP 500|onnect")' <<< "$BODY"
check "(c) the refused connection is named in x1's attempt" \
	jqe '[.history[] | select(.serverId == "x1") | .error] | all(test("onnect"))' <<< "$BODY"
check "(c) the 500 is named in e2's attempt" \
	jqe '[.history[] | select(.serverId == "e2") | .error] | all(test("500"))' <<< "$BODY"
expect_eq "(c) e2's load is 0" "$(server_load e2)" 0
expect_eq "(c) x1's load is 0" "$(server_load x1)" 0
check "(c) register x2 (nothing listens on its predict port) for model m1" reg x2 cog "$DEAD_PORT2" 2 m1 "$MOCK_PORT_good"
submit m1 '"maxAttempts":1'
one=$TID
check "(c) maxAttempts 1 on a refused connection: FAILED after one attempt" wait_for is_status "$one" FAILED
client GET "/api/v2/tasks/$one"
expect_eq "(c) ... one attempt" "$(jget .attempts)" 1
check "(c) ... the error names the connection failure" jqe '.error | test("onnect")' <<< "$BODY"
expect_eq "(c) x2's load is 0" "$(server_load x2)" 0

# ---------------------------------------------------------------- (d) starting
check "(d) register s1 (predictions answer 503 starting; good answers its checks) for model ms" reg s1 cog "$MOCK_PORT_start" 2 ms "$MOCK_PORT_good"
submit ms '"maxAttempts":1'
st=$TID
check "(d) a 503 (starting) answer puts the task back in the queue" wait_for is_status "$st" QUEUED
client GET "/api/v2/tasks/$st"
expect_eq "(d) ... it is not a failure, even with maxAttempts 1" "$(jc '[.attempts, .failures]')" '[1,0]'
expect_eq "(d) ... s1's load is 0" "$(server_load s1)" 0
mock_control start '{"mode":"ok","delayMs":100}' || not_ok "(d) mock start to ok"
sleep 1.2 # past the re-queue delay
nudge
check "(d) once the server is ready the task completes" wait_for is_status "$st" COMPLETED
expect_eq "(d) ... on its second attempt" "$(task_field "$st" .attempts)" 2

# ---------------------------------------------------------------- (e) a backend dying mid-task
check "(e) register k1 for model mk" reg k1 cog "$MOCK_PORT_dying" 2 mk
submit mk
kt=$TID
check "(e) the task runs on k1" wait_for bash -c \
	"[ \$(curl -s http://127.0.0.1:$MOCK_PORT_dying/__stats | jq .active) = 1 ]"
expect_eq "(e) k1's load is 1" "$(server_load k1)" 1
kill "$DYING_PID"
check "(e) the backend is gone" wait_for bash -c "! kill -0 $DYING_PID 2> /dev/null"
check "(e) ... and its port refuses connections" bash -c "! curl -s -m 2 http://127.0.0.1:$MOCK_PORT_dying/__stats"
sleep 2
expect_eq "(e) the task stays PROCESSING (no timeout sweep yet)" "$(task_field "$kt" .status)" PROCESSING
expect_eq "(e) k1's load stays 1" "$(server_load k1)" 1
client DELETE "/api/v2/tasks/$kt"
expect_eq "(e) cancel answers 200 CANCELLED although the backend is gone" "$STATUS $(jget .status)" "200 CANCELLED"
expect_eq "(e) k1's load is back to 0" "$(server_load k1)" 0
sleep 0.5
expect_eq "(e) ... and stays 0 after the failed backend cancel" "$(server_load k1)" 0
client GET /api/v2/servers
expect_eq "(e) every server's load is 0 at the end" "$(jget '[.items[].currentLoad] | add')" 0
expect_eq "(e) nothing is left PROCESSING" "$(find "$STATE/active" -type f ! -name ".*" | wc -l)" 0
check "every JSON file of the state tree parses" all_state_parses
finish
