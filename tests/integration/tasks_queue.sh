#!/usr/bin/env bash
# Tasks through lighttpd: the queue, cancel, retry and idempotency keys.
#  (a) all servers full: new tasks wait QUEUED; a higher-priority task queued later
#      runs first; the queue drains as slots free, with no cron running
#  (b) cancel a queued task: CANCELLED at once, never dispatched
#  (c) cancel a running task: the backend gets POST /predictions/<id>-<n>/cancel,
#      the slot is freed (currentLoad 0) and the next queued task takes it
#  (d) cancel of COMPLETED/FAILED is 409; a repeated cancel is a harmless 200
#  (e) retry of FAILED and CANCELLED re-queues and completes (POST and GET);
#      retry of COMPLETED/QUEUED is 409
#  (f) Idempotency-Key: the same task (Idempotent-Replayed: true), one prediction;
#      same key with another body 422; parallel requests with one key make one task
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

reg_cog() { # ID PORT MAXC MODEL
	admin POST /api/v2/servers "{\"id\":\"$1\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$2/predictions\",\"health\":\"http://127.0.0.1:$2/health-check\"},\"capabilities\":{\"maxConcurrent\":$3,\"supportedModels\":[\"$4\"]}}"
	[ "$STATUS" = 201 ]
}
# mock_saw NAME METHOD PATH: the mock received that request
mock_saw() { mock "$1" /__requests | jq -e --arg m "$2" --arg p "$3" 'any(.[]; .method == $m and .path == $p)' > /dev/null; }
mstat_is() { [ "$(mock "$1" /__stats | jq -r "$2")" = "$3" ]; } # NAME FILTER VALUE
all_status() { # STATUS ID...: every task has STATUS
	local want=$1 t
	shift
	for t in "$@"; do is_status "$t" "$want" || return 1; done
}
mock_mentions() { mock "$1" /__requests | grep -q "$2"; }
submit() { # MODEL INPUT [PRIORITY] -> sets TID
	client POST /api/v2/tasks "{\"model\":\"$1\",\"input\":$2,\"priority\":${3:-0}}"
	TID=$(jget .id)
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
# No cron, and no piggy-backed sweep either: the queue must drain through the
# request path alone (the process that frees a slot dispatches the next task).
no_piggyback() { jq '. + {piggyback: {enabled: false}}' "$STATE/config.json" > "$STATE/config.json.new" &&
	mv "$STATE/config.json.new" "$STATE/config.json"; }
check "config.json: piggy-backed periodic work off" no_piggyback
start_mock q --protocol cog --slots 4 --delay-ms 700 || not_ok "mock q starts"
start_mock i --protocol cog --slots 4 --delay-ms 100 || not_ok "mock i starts"
check "register q1 (maxConcurrent 1, model q)" reg_cog q1 "$MOCK_PORT_q" 1 q
check "register i1 (maxConcurrent 2, model idem)" reg_cog i1 "$MOCK_PORT_i" 2 idem

# ---------------------------------------------------------------- (a) queue + priority
# q holds its running prediction until the queue has been looked at, so the
# slot cannot free early on a slow front end (CGI forks a process per request).
check "(a) mock q holds running predictions" mock_control q '{"hold":true}'
submit q '{"n":"first"}' 0
first=$TID
expect_eq "(a) the first task goes straight to PROCESSING" "$(jget .status)" PROCESSING
submit q '{"n":"low1"}' 0
low1=$TID
expect_eq "(a) q1 is full: the second task is QUEUED" "$(jget .status)" QUEUED
expect_eq "(a) ... with no server" "$(jget .serverId)" null
submit q '{"n":"low2"}' 0
low2=$TID
submit q '{"n":"high"}' 10
high=$TID
expect_eq "(a) a priority-10 task is QUEUED too" "$(jget .status) $(jget .priority)" "QUEUED 10"
submit q '{"n":"neg"}' -5
neg=$TID
expect_eq "(a) q1's currentLoad is 1 while full" "$(server_load q1)" 1
expect_eq "(a) four tasks wait in the queue index" "$(find "$STATE/queue" -type f ! -name ".*" | wc -l)" 4
client GET '/api/v2/tasks?status=QUEUED'
expect_eq "(a) the list shows the four queued tasks" "$(jget '.items | length')" 4
check "(a) mock q lets its running prediction end" mock_control q '{"hold":false}'
check "(a) all five complete, draining as the slot frees (bounded 30 s)" \
	wait_long all_status COMPLETED "$first" "$low1" "$low2" "$high" "$neg"
order=$(mock q /__requests | jq -r '[.[] | select(.method == "PUT") | .path | ltrimstr("/predictions/") | rtrimstr("-1")] | join(" ")')
expect_eq "(a) dispatch order: first, then high (priority 10), low1, low2 (FIFO), neg (-5)" \
	"$order" "$first $high $low1 $low2 $neg"
expect_eq "(a) the backend never ran more than 1 at once" "$(mock q /__stats | jq .maxActive)" 1
expect_eq "(a) each task was dispatched once" "$(mock q /__stats | jq .received)" 5
expect_eq "(a) no backend refusal" "$(mock q /__stats | jq .rejected)" 0
started() { task_field "$1" '.history[0].startedAt'; }
check "(a) high started after first ended and before low1 started" \
	test "$(started "$high")" -ge "$(task_field "$first" .completedAt)" -a "$(started "$high")" -le "$(started "$low1")"
check "(a) queuedAt <= startedAt for a queued task" test "$(task_field "$low2" .queuedAt)" -le "$(started "$low2")"
expect_eq "(a) q1's currentLoad is back to 0" "$(server_load q1)" 0
expect_eq "(a) the queue index is empty" "$(find "$STATE/queue" -type f ! -name ".*" | wc -l)" 0

# ---------------------------------------------------------------- (b) cancel queued
mock_control q '{"delayMs":3000}' || not_ok "(b) slow down mock q"
submit q '{"n":"blocker"}'
blocker=$TID
submit q '{"n":"to-cancel"}'
qc=$TID
expect_eq "(b) the task waits QUEUED" "$(jget .status)" QUEUED
client DELETE "/api/v2/tasks/$qc"
expect_eq "(b) DELETE of a queued task answers 200" "$STATUS" 200
expect_eq "(b) ... CANCELLED at once" "$(jget .status)" CANCELLED
check "(b) ... completedAt stamped" jqe '.completedAt != null' <<< "$BODY"
expect_eq "(b) GET agrees" "$(task_field "$qc" .status)" CANCELLED
expect_eq "(b) no attempt was made" "$(task_field "$qc" .attempts)" 0
expect_eq "(b) its queue entry is gone" "$(find "$STATE/queue" -type f ! -name ".*" | wc -l)" 0
client DELETE "/api/v2/tasks/$qc"
expect_eq "(d) a second DELETE of a CANCELLED task is a harmless 200" "$STATUS $(jget .status)" "200 CANCELLED"

# ---------------------------------------------------------------- (c) cancel running
expect_eq "(c) the blocker is PROCESSING on q1" "$(task_field "$blocker" '"\(.status) \(.serverId)"')" "PROCESSING q1"
check "(c) the backend has it running" wait_for mstat_is q .active 1
expect_eq "(c) q1's currentLoad is 1" "$(server_load q1)" 1
client DELETE "/api/v2/tasks/$blocker"
expect_eq "(c) DELETE of a running task answers 200" "$STATUS" 200
expect_eq "(c) ... CANCELLED" "$(jget .status)" CANCELLED
expect_eq "(c) ... the attempt ended cancelled" "$(jc '[.history[-1].attempt, .history[-1].outcome]')" '[1,"cancelled"]'
expect_eq "(c) q1's currentLoad is back to 0 at once" "$(server_load q1)" 0
check "(c) the backend received POST /predictions/<id>-1/cancel" \
	wait_for mock_saw q POST "/predictions/$blocker-1/cancel"
check "(c) the backend cancelled the prediction" \
	wait_for mstat_is q '"\(.cancelled)/\(.active)"' 1/0
sleep 0.5 # the mock's "canceled" webhook follows; it must change nothing
expect_eq "(c) the task stays CANCELLED after the backend's canceled webhook" "$(task_field "$blocker" .status)" CANCELLED
expect_eq "(c) ... with one attempt" "$(task_field "$blocker" .attempts)" 1
expect_eq "(c) currentLoad is still 0 (released exactly once)" "$(server_load q1)" 0
# a cancel hands the slot to the next queued task
submit q '{"n":"runner"}'
runner=$TID
submit q '{"n":"next"}'
next=$TID
expect_eq "(c) with q1 busy the next task waits QUEUED" "$(jget .status)" QUEUED
client DELETE "/api/v2/tasks/$runner"
expect_eq "(c) cancel the running one" "$STATUS $(jget .status)" "200 CANCELLED"
check "(c) the queued task takes the freed slot without cron" wait_for is_status "$next" PROCESSING
expect_eq "(c) ... and the load is 1, not 2" "$(server_load q1)" 1
mock_control q '{"delayMs":200}' || not_ok "(c) speed up mock q"
check "(c) the next task completes (its 3 s prediction)" wait_long is_status "$next" COMPLETED
check "(c) load back to 0" wait_for load_is q1 0

# ---------------------------------------------------------------- (d) cancel terminal
client DELETE "/api/v2/tasks/$first"
expect_eq "(d) DELETE of a COMPLETED task is 409" "$STATUS" 409
expect_eq "(d) ... a problem document" "$(jget .status)" 409
expect_eq "(d) ... and the task is still COMPLETED" "$(task_field "$first" .status)" COMPLETED
check "(d) ... with its result" test "$(task_field "$first" .result.output.echo.n)" = first

# ---------------------------------------------------------------- (e) retry
mock_control q '{"mode":"fail"}' || not_ok "(e) mock q to fail mode"
submit q '{"n":"will-fail"}'
failed=$TID
check "(e) a task the backend fails ends FAILED" wait_for is_status "$failed" FAILED
client GET "/api/v2/tasks/$failed"
check "(e) ... with the backend's error" jqe '.error | test("mock failure")' <<< "$BODY"
expect_eq "(e) ... after one attempt (a failed prediction is not retried)" "$(jget .attempts)" 1
client DELETE "/api/v2/tasks/$failed"
expect_eq "(d) DELETE of a FAILED task is 409" "$STATUS" 409
mock_control q '{"mode":"ok"}' || not_ok "(e) mock q back to ok"
client POST "/api/v2/tasks/$failed/retry" ""
expect_eq "(e) POST retry of a FAILED task answers 202" "$STATUS" 202
check "(e) ... as QUEUED or PROCESSING" grep -qxE 'QUEUED|PROCESSING' <<< "$(jget .status)"
expect_eq "(e) ... with the error cleared" "$(jget .error)" null
check "(e) the retried task completes" wait_for is_status "$failed" COMPLETED
client GET "/api/v2/tasks/$failed"
expect_eq "(e) ... with a result" "$(jget .result.output.echo.n)" will-fail
expect_eq "(e) ... after two attempts" "$(jc '[.history[] | [.attempt, .outcome]]')" '[[1,"failed"],[2,"succeeded"]]'
expect_eq "(e) ... and no error" "$(jget .error)" null
check "(e) the second attempt used prediction id <task>-2" mock_saw q PUT "/predictions/$failed-2"

check "(b) the task cancelled while queued was never sent to the backend" bash -c \
	"! curl -s -m 5 http://127.0.0.1:$MOCK_PORT_q/__requests | grep -q '$qc'"
client GET "/api/v2/tasks/$qc/retry"
expect_eq "(e) GET retry of a CANCELLED (never run) task answers 202" "$STATUS" 202
check "(e) it completes" wait_for is_status "$qc" COMPLETED
expect_eq "(e) ... on its first attempt" "$(task_field "$qc" .attempts)" 1
client POST "/api/v2/tasks/$blocker/retry" ""
expect_eq "(e) POST retry of a task cancelled while running answers 202" "$STATUS" 202
check "(e) it completes" wait_for is_status "$blocker" COMPLETED
expect_eq "(e) ... on attempt 2" "$(task_field "$blocker" .attempts)" 2
client POST "/api/v2/tasks/$first/retry" ""
expect_eq "(e) retry of a COMPLETED task is 409" "$STATUS" 409
client GET "/api/v2/tasks/$first/retry"
expect_eq "(e) GET retry of a COMPLETED task is 409 too" "$STATUS" 409
expect_eq "(e) ... and it stays COMPLETED with 1 attempt" \
	"$(task_field "$first" '"\(.status) \(.attempts)"')" "COMPLETED 1"
mock_control q '{"delayMs":3000}' || not_ok "(e) slow down mock q"
submit q '{"n":"busy"}'
busy=$TID
submit q '{"n":"waiting"}'
waiting=$TID
client POST "/api/v2/tasks/$waiting/retry" ""
expect_eq "(e) retry of a QUEUED task is 409" "$STATUS" 409
client POST "/api/v2/tasks/$busy/retry" ""
expect_eq "(e) retry of a PROCESSING task is 409" "$STATUS" 409
mock_control q '{"delayMs":200}' || true
client DELETE "/api/v2/tasks/$busy"
check "(e) after a cancel the waiting task completes" wait_long is_status "$waiting" COMPLETED
check "(e) q1 load back to 0" wait_for load_is q1 0

# ---------------------------------------------------------------- (f) idempotency
r0=$(mock i /__stats | jq .received)
body='{"model":"idem","input":{"k":1}}'
client POST /api/v2/tasks "$body" -H 'Idempotency-Key: order-42' -D "$WORK/h1"
expect_eq "(f) first request with a key: 202" "$STATUS" 202
k1=$(jget .id)
check "(f) ... not marked replayed" bash -c "! grep -qi '^Idempotent-Replayed' '$WORK/h1'"
check "(f) it completes" wait_for is_status "$k1" COMPLETED
client POST /api/v2/tasks "$body" -H 'Idempotency-Key: order-42' -D "$WORK/h2"
check "(f) the repeat answers 200 or 202" grep -qxE '200|202' <<< "$STATUS"
expect_eq "(f) ... with the same task" "$(jget .id)" "$k1"
expect_eq "(f) ... in its current state" "$(jget .status)" COMPLETED
check "(f) ... Idempotent-Replayed: true" grep -qi '^Idempotent-Replayed: *true' "$WORK/h2"
check "(f) ... Location (202) or Content-Location (200) of the task" \
	grep -qiE "^(Content-)?Location: /api/v2/tasks/$k1" "$WORK/h2"
expect_eq "(f) the backend received exactly one prediction" "$(($(mock i /__stats | jq .received) - r0))" 1
n0=$(find "$STATE/tasks" -name '*.json' | wc -l)
client POST /api/v2/tasks '{"model":"idem","input":{"k":2}}' -H 'Idempotency-Key: order-42'
expect_eq "(f) the same key with another body is 422" "$STATUS" 422
expect_eq "(f) ... naming the Idempotency-Key" "$(jget .field)" Idempotency-Key
expect_eq "(f) ... and no task was stored" "$(find "$STATE/tasks" -name '*.json' | wc -l)" "$n0"
expect_eq "(f) ... nor sent" "$(($(mock i /__stats | jq .received) - r0))" 1
client POST /api/v2/tasks "$body" -H 'Idempotency-Key: order-43'
expect_eq "(f) another key with the same body is a new task" "$STATUS" 202
check "(f) ... with another id" test "$(jget .id)" != "$k1"
k2=$(jget .id)
client POST /api/v2/tasks "$body" -H "Idempotency-Key: $(head -c 300 /dev/zero | tr '\0' k)"
expect_eq "(f) a 300-character key is 400" "$STATUS $(jget .field)" "400 Idempotency-Key"
n_before=$(find "$STATE/tasks" -name '*.json' | wc -l)
r1=$(mock i /__stats | jq .received)
par=()
for p in $(seq 1 8); do
	curl -s -m 20 -o "$WORK/par.$p.body" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $CLIENT" \
		-H 'Content-Type: application/json' -H 'Idempotency-Key: parallel-1' \
		--data-binary '{"model":"idem","input":{"par":true}}' "$BASE/api/v2/tasks" > "$WORK/par.$p.status" &
	par+=($!)
done

wait "${par[@]}"
expect_eq "(f) 8 parallel requests with one key: exactly one 202" "$(cat "$WORK"/par.*.status | grep -c '^202$')" 1
expect_eq "(f) ... the others 200 (replayed) or 409 (in progress)" \
	"$(cat "$WORK"/par.*.status | grep -cvE '^(202|200|409)$')" 0
ids=$(for p in $(seq 1 8); do jq -r 'select(.id) | .id' "$WORK/par.$p.body"; done | sort -u | wc -l)
expect_eq "(f) ... every task answer names the same id" "$ids" 1
expect_eq "(f) ... one task file was created" "$(find "$STATE/tasks" -name '*.json' | wc -l)" $((n_before + 1))
sleep 0.5
expect_eq "(f) ... and one prediction reached the backend" "$(($(mock i /__stats | jq .received) - r1))" 1
check "(f) the task of order-43 completes" wait_for is_status "$k2" COMPLETED

check "every JSON file of the state tree parses" all_state_parses
finish
