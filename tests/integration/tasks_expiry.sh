#!/usr/bin/env bash
# Queue expiry and unservable tasks through the front end and the cron programs.
#  (a) queueTimeoutSeconds: validated (400 naming the field, nothing stored); the
#      default comes from tasks.queueTimeoutSeconds; 0 means never
#  (b) tasks that want what no registered server offers (a group, a tag) are found
#      by the next sweep: "3 tasks want group 'cpu' that no server has" in the
#      findings, on /status and as the built-in unservable-tasks alert, long before
#      they would expire
#  (c) past their queueTimeoutSeconds they are FAILED with "no eligible server
#      within N s: <why>", leave the queue, and the finding and alert go away
#  (d) a servable task that waited too long behind a full server fails with the
#      servers' states as the reason; one with queueTimeoutSeconds 0 stays queued
#  (e) registering a server that offers the wish: the sweep dispatches the
#      unservable task, it completes, the finding and the alert resolve
# No cron runs behind the test (piggy-backing off): each sweep and rollup is run
# here. Every wait is bounded; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

sweep_out() { STATE_DIR="$STATE" "$BUILD/cron/taskgate-sweep"; }
rollup_run() { STATE_DIR="$STATE" "$BUILD/cron/taskgate-rollup" > /dev/null 2>&1; }
count_files() { find "$STATE/$1" -type f ! -name '.*' 2> /dev/null | wc -l; }
submit() { # BODY -> TID (expects 202)
	client POST /api/v2/tasks "$1"
	TID=$(jget .id)
	[ "$STATUS" = 202 ]
}
findings() { client GET /api/v2/stats/performance && jget '[.findings[].text] | join("\n")'; }
alert_subjects() { # STATE -> the unservable-tasks alerts in that state
	client GET /api/v2/alerts
	jget "[.$1[] | select(.name == \"unservable-tasks\") | .subject] | join(\"\\n\")"
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
set_config '.piggyback.enabled=false'
start_mock g --protocol cog --delay-ms 50 || not_ok "mock g starts"
check "register g1 (model m, group gpu, tag a100, one slot)" register_mock g g1 \
	'"capabilities":{"maxConcurrent":1,"supportedModels":["m"]},"groups":["gpu"],"tags":["a100"]'

# ---------------------------------------------------------------- (a) the field
n_tasks=$(count_files tasks)
n_queue=$(count_files queue)
bad() { # BODY WHAT
	client POST /api/v2/tasks "$1"
	if [ "$STATUS" = 400 ] && [ "$(jget .field)" = /queueTimeoutSeconds ]; then
		ok "(a) $2: 400 with field queueTimeoutSeconds"
	else
		not_ok "(a) $2: 400 with field queueTimeoutSeconds (got $STATUS $BODY)"
	fi
}
bad '{"model":"m","input":{},"queueTimeoutSeconds":-1}' "a negative queueTimeoutSeconds"
bad '{"model":"m","input":{},"queueTimeoutSeconds":"60"}' "a string"
bad '{"model":"m","input":{},"queueTimeoutSeconds":1.5}' "a fraction"
bad '{"model":"m","input":{},"queueTimeoutSeconds":2592001}' "more than 30 days"
expect_eq "(a) the refused requests stored no task" "$(count_files tasks)" "$n_tasks"
expect_eq "(a) ... and queued nothing" "$(count_files queue)" "$n_queue"
check "(a) a task without the field" submit '{"model":"m","input":{}}'
expect_eq "(a) gets the default of 3600 s" "$(task_field "$TID" .request.queueTimeoutSeconds)" 3600
set_config '.tasks.queueTimeoutSeconds=900'
check "(a) with tasks.queueTimeoutSeconds 900" submit '{"model":"m","input":{}}'
expect_eq "(a) the config's default is used" "$(task_field "$TID" .request.queueTimeoutSeconds)" 900
check "(a) an explicit 0" submit '{"model":"m","input":{},"queueTimeoutSeconds":0}'
expect_eq "(a) is kept (never expires)" "$(task_field "$TID" .request.queueTimeoutSeconds)" 0
check "(a) the three tasks complete on g1" wait_long is_status "$TID" COMPLETED

# ---------------------------------------------------------------- (b) unservable found
cpu=()
for i in 1 2 3; do
	check "(b) task $i for group cpu, queueTimeoutSeconds 3" \
		submit '{"model":"m","input":{},"group":"cpu","queueTimeoutSeconds":3}'
	cpu+=("$TID")
done
check "(b) a task wanting tag h100, queueTimeoutSeconds 0" \
	submit '{"model":"m","input":{},"tags":["a100","h100"],"queueTimeoutSeconds":0}'
h100=$TID
expect_eq "(b) all four wait QUEUED" \
	"$(for t in "${cpu[@]}" "$h100"; do task_field "$t" .status; done | sort -u)" QUEUED
out=$(sweep_out)
check "(b) the sweep counts four unservable tasks, expires none yet" \
	grep -q 'expired=0 unservable=4' <<< "$out"
f=$(findings)
check "(b) finding: '3 tasks want group 'cpu' that no server has'" \
	grep -qxF "3 tasks want group 'cpu' that no server has" <<< "$f"
check "(b) finding: '1 task wants tag 'h100' that no server has'" \
	grep -qxF "1 task wants tag 'h100' that no server has" <<< "$f"
code=$(curl -s -m 30 -o "$WORK/status.html" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/status")
expect_eq "(b) /status answers 200" "$code" 200
check "(b) /status shows the finding" grep -q "3 tasks want group .*cpu.* that no server has" "$WORK/status.html"
check "(b) /metrics: taskgate_queue_unservable 4" \
	bash -c "curl -s -m 30 -H 'Authorization: Bearer $CLIENT' '$BASE/metrics' | grep -qx 'taskgate_queue_unservable 4'"
rollup_run
subjects=$(alert_subjects firing)
check "(b) the built-in alert fires for group cpu" grep -qxF "group 'cpu' that no server has" <<< "$subjects"
check "(b) ... and for tag h100" grep -qxF "tag 'h100' that no server has" <<< "$subjects"
client GET /api/v2/alerts
check "(b) the alert's message counts the tasks" \
	jqe '.firing[] | select(.subject == "group '"'cpu'"' that no server has") | .message | test("^3 tasks want group .cpu. that no server has \\(the oldest, [0-9a-f-]{36}, has waited [0-9]+ s\\)$")' <<< "$BODY"

# ---------------------------------------------------------------- (c) expiry
sleep 3.2
out=$(sweep_out)
check "(c) the next sweep after 3 s expires the three" grep -q 'expired=3 unservable=1' <<< "$out"
for t in "${cpu[@]}"; do
	expect_eq "(c) task ${t:0:8} FAILED with the reason" \
		"$(task_field "$t" '"\(.status) \(.error)"')" \
		"FAILED no eligible server within 3 s: it wants group 'cpu' that no server has"
done
check "(c) their completedAt is set" test "$(task_field "${cpu[0]}" .completedAt)" != null
expect_eq "(c) only the h100 task is left in the queue index" "$(count_files queue)" 1
client GET '/api/v2/tasks?status=FAILED'
expect_eq "(c) the FAILED listing shows the three" "$(jget '[.items[].id] | length')" 3
f=$(findings)
check "(c) the group cpu finding is gone" test -z "$(grep "group 'cpu'" <<< "$f")"
rollup_run
check "(c) the group cpu alert resolved" grep -qxF "group 'cpu' that no server has" <<< "$(alert_subjects resolved)"
check "(c) the tag h100 alert still fires" grep -qxF "tag 'h100' that no server has" <<< "$(alert_subjects firing)"
client POST "/api/v2/tasks/${cpu[0]}/retry" ""
expect_eq "(c) a FAILED task can be retried" "$STATUS" 202
expect_eq "(c) ... and is QUEUED again" "$(task_field "${cpu[0]}" .status)" QUEUED
client DELETE "/api/v2/tasks/${cpu[0]}"
expect_eq "(c) ... and cancelled, to keep the queue small" "$STATUS" 200

# ---------------------------------------------------------------- (d) waiting behind a full server
check "(d) mock g holds its predictions" mock_control g '{"hold":true}'
check "(d) task A runs on g1" submit '{"model":"m","input":{"n":"A"}}'
a=$TID
check "(d) A is PROCESSING" wait_long is_status "$a" PROCESSING
check "(d) task B, queueTimeoutSeconds 2" submit '{"model":"m","input":{"n":"B"},"queueTimeoutSeconds":2}'
b=$TID
check "(d) task C, queueTimeoutSeconds 0" submit '{"model":"m","input":{"n":"C"},"queueTimeoutSeconds":0}'
c=$TID
check "(d) task D, the config's 900 s" submit '{"model":"m","input":{"n":"D"}}'
d=$TID
sleep 2.2
out=$(sweep_out)
check "(d) the sweep expires B alone" grep -q 'expired=1 unservable=1' <<< "$out"
expect_eq "(d) B FAILED: its one server is full" "$(task_field "$b" '"\(.status) \(.error)"')" \
	"FAILED no eligible server within 2 s: the 1 server that could take it is 1 full"
expect_eq "(d) C (never) still waits" "$(task_field "$c" .status)" QUEUED
expect_eq "(d) D (900 s) still waits" "$(task_field "$d" .status)" QUEUED
check "(d) mock g lets predictions end" mock_control g '{"hold":false}'
acd_done() { is_status "$a" COMPLETED && is_status "$c" COMPLETED && is_status "$d" COMPLETED; }
check "(d) A, C and D complete" wait_long acd_done
expect_eq "(d) g1 never saw B" "$(mock g /__requests | jq --arg p "/predictions/$b-1" '[.[] | select(.path == $p)] | length')" 0

# ---------------------------------------------------------------- (e) a server that offers the wish
start_mock h --protocol cog --delay-ms 50 || not_ok "mock h starts"
check "register h1 (tags a100, h100)" register_mock h h1 \
	'"capabilities":{"maxConcurrent":1,"supportedModels":["m"]},"tags":["a100","h100"]'
out=$(sweep_out)
check "(e) the next sweep dispatches it and finds nothing unservable" grep -q 'unservable=0' <<< "$out"
check "(e) the h100 task completes on h1" wait_long is_status "$h100" COMPLETED
expect_eq "(e) ... on h1" "$(task_field "$h100" .serverId)" h1
f=$(findings)
check "(e) no unservable finding is left" test -z "$(grep "that no server" <<< "$f")"
rollup_run
check "(e) the h100 alert resolved" grep -qxF "tag 'h100' that no server has" <<< "$(alert_subjects resolved)"
expect_eq "(e) no unservable alert fires" "$(alert_subjects firing)" ""
check "every state file parses" all_state_parses
finish
