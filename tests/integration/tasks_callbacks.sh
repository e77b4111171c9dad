#!/usr/bin/env bash
# Callbacks through lighttpd: POST /api/v2/tasks/:id/callback?attempt=N&token=SECRET
# (what Cog sends) and PUT /api/v2/tasks/:id with the server's callback token or the
# admin token. The tasks run on mock Cog servers in no-callback mode, so every
# webhook in this test is one we send ourselves, using the URL the backend got.
#  (a) wrong or missing token: 401 and nothing changes
#  (b) progress ("processing" with logs) is recorded in .progress
#  (c) wrong attempt (attempt=99) or another server's token: refused, nothing changes
#  (d) the terminal webhook completes the task; a duplicate is a 200 no-op; a
#      different terminal update afterwards is 409
#  (e) Bearer <server callbackToken> on the callback route and on PUT; admin on PUT
#  (f) after a retry, the old attempt's webhook is 409 and changes nothing
#  (g) a real Cog mock started with --webhook-token completes its tasks
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

TOK1=server-one-callback-token-0123456789
TOK2=server-two-callback-token-0123456789
reg_cog() { # ID PORT MAXC MODEL [CALLBACK_TOKEN]
	local extra=""
	[ -n "${5:-}" ] && extra=",\"callbackToken\":\"$5\""
	admin POST /api/v2/servers "{\"id\":\"$1\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$2/predictions\",\"health\":\"http://127.0.0.1:$2/health-check\"},\"capabilities\":{\"maxConcurrent\":$3,\"supportedModels\":[\"$4\"]}$extra}"
	[ "$STATUS" = 201 ]
}
task_file() { find "$STATE/tasks" -name "$1.json" | head -n 1; }
task_hash() { sha256sum < "$(task_file "$1")"; }
# webhook MOCK TASK ATTEMPT: the webhook URL the backend received for that attempt,
# made relative to BASE
webhook() {
	mock "$1" /__requests | jq -r --arg p "/predictions/$2-$3" \
		'[.[] | select(.method == "PUT" and .path == $p)][0].body | fromjson | .webhook' |
		sed "s|^$BASE||"
}
# cb PATH BODY [curl args]: an unauthenticated POST (the URL carries the secret)
cb() { anon POST "$@"; }
submit() { # MODEL -> TID, and waits until the backend has the prediction
	client POST /api/v2/tasks "{\"model\":\"$1\",\"input\":{\"t\":\"$1\"}}"
	TID=$(jget .id)
	[ "$(jget .status)" = PROCESSING ]
}
# unchanged ID HASH WHAT: the task file is byte for byte what it was
unchanged() {
	if [ "$(task_hash "$1")" = "$2" ]; then ok "$3: nothing changed"; else not_ok "$3: nothing changed (the task file differs)"; fi
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
start_mock s1 --protocol cog --slots 8 --delay-ms 60000 --mode no-callback || not_ok "mock s1 starts"
start_mock s2 --protocol cog --slots 8 --delay-ms 60000 --mode no-callback || not_ok "mock s2 starts"
start_mock w1 --protocol cog --slots 4 --delay-ms 200 --webhook-token "$TOK1" || not_ok "mock w1 starts"
check "register s1 with a callbackToken" reg_cog s1 "$MOCK_PORT_s1" 8 m1 "$TOK1"
check "the callbackToken is not shown" jqe '.hasCallbackToken == true and (tostring | contains("server-one") | not)' <<< "$BODY"
check "register s2 with another callbackToken" reg_cog s2 "$MOCK_PORT_s2" 8 m2 "$TOK2"
check "register w1 with the token its webhooks carry" reg_cog w1 "$MOCK_PORT_w1" 2 mw "$TOK1"

# ---------------------------------------------------------------- (a) wrong token
check "(a) a task goes to s1" submit m1
A=$TID
url=$(webhook s1 "$A" 1)
check "(a) s1 received the prediction with a webhook URL for attempt 1" \
	grep -q "^/api/v2/tasks/$A/callback?attempt=1&token=[0-9a-f]\{32,\}$" <<< "$url"
secret=${url##*token=}
h=$(task_hash "$A")
load0=$(server_load s1)
cb "/api/v2/tasks/$A/callback?attempt=1&token=0123456789abcdef0123456789abcdef" \
	'{"status":"succeeded","output":"forged"}'
expect_eq "(a) a wrong token is 401" "$STATUS" 401
cb "/api/v2/tasks/$A/callback?attempt=1&token=${secret}0" '{"status":"succeeded","output":"forged"}'
expect_eq "(a) the token plus one character is 401" "$STATUS" 401
cb "/api/v2/tasks/$A/callback?attempt=1&token=${secret:0:31}" '{"status":"succeeded","output":"forged"}'
expect_eq "(a) a truncated token is 401" "$STATUS" 401
cb "/api/v2/tasks/$A/callback?attempt=1" '{"status":"succeeded","output":"forged"}'
expect_eq "(a) no token at all is 401" "$STATUS" 401
cb "/api/v2/tasks/$A/callback?attempt=1&token=0123456789abcdef0123456789abcdef" \
	'{"status":"succeeded","output":"forged"}' -H "Authorization: Bearer $CLIENT"
expect_eq "(a) a wrong token with the client token as Bearer is 401" "$STATUS" 401
unchanged "$A" "$h" "(a) after the refused updates"
expect_eq "(a) the task is still PROCESSING" "$(task_field "$A" .status)" PROCESSING
expect_eq "(a) s1's load is unchanged" "$(server_load s1)" "$load0"
anon PUT "/api/v2/tasks/$A" '{"status":"succeeded","output":"forged"}'
expect_eq "(a) PUT without a token is 401" "$STATUS" 401
anon PUT "/api/v2/tasks/$A" '{"status":"succeeded","output":"forged"}' -H "Authorization: Bearer $CLIENT"
expect_eq "(a) PUT with the client token is 401" "$STATUS" 401
anon PUT "/api/v2/tasks/$A" '{"status":"succeeded","output":"forged"}' -H "Authorization: Bearer $TOK2"
expect_eq "(a) PUT with another server's callback token is 401" "$STATUS" 401
cb "/api/v2/tasks/$A/callback?attempt=1" '{"status":"succeeded","output":"forged"}' -H "Authorization: Bearer $TOK2"
expect_eq "(a) callback with another server's token is 401" "$STATUS" 401
unchanged "$A" "$h" "(a) after the refused PUTs"

# ---------------------------------------------------------------- (b) progress
cb "$url" '{"status":"processing","logs":"step 1 of 3\n"}'
expect_eq "(b) a processing update is 200" "$STATUS" 200
client GET "/api/v2/tasks/$A"
expect_eq "(b) the task stays PROCESSING" "$(jget .status)" PROCESSING
expect_eq "(b) .progress.status records it" "$(jget .progress.status)" processing
expect_eq "(b) .progress.logs records the logs" "$(jget .progress.logs)" "step 1 of 3"
cb "$url" '{"status":"processing","logs":"step 1 of 3\nstep 2 of 3\n"}'
expect_eq "(b) a second progress update is 200" "$STATUS" 200
expect_eq "(b) ... and the logs follow it" "$(task_field "$A" .progress.logs)" "$(printf 'step 1 of 3\nstep 2 of 3')"
big=$(head -c 9000 /dev/zero | tr '\0' x)
cb "$url" "{\"status\":\"processing\",\"logs\":\"${big}END\"}"
expect_eq "(b) a 9 KB log is accepted" "$STATUS" 200
client GET "/api/v2/tasks/$A"
check "(b) ... and only a bounded tail (<= 4096 bytes) is kept, ending with the newest text" \
	jqe '(.progress.logs | length) <= 4096 and (.progress.logs | endswith("END"))' <<< "$BODY"
cb "$url" '{"status":"thinking"}'
expect_eq "(b) an unknown status is 400" "$STATUS $(jget .field)" "400 /status"
cb "$url" '{"output":1}'
expect_eq "(b) a missing status is 400" "$STATUS $(jget .field)" "400 /status"
h=$(task_hash "$A")

# ---------------------------------------------------------------- (c) wrong attempt
cb "/api/v2/tasks/$A/callback?attempt=99&token=$secret" '{"status":"succeeded","output":"stale"}'
expect_eq "(c) attempt=99 (with this task's secret) is 409" "$STATUS" 409
cb "/api/v2/tasks/$A/callback?attempt=99&token=$secret" '{"status":"processing","logs":"stale"}'
expect_eq "(c) progress for attempt=99 is 409" "$STATUS" 409
anon PUT "/api/v2/tasks/$A?attempt=99" '{"status":"succeeded","output":"stale"}' -H "Authorization: Bearer $ADMIN"
expect_eq "(c) even the admin token for attempt=99 is 409" "$STATUS" 409
cb "/api/v2/tasks/$A/callback?attempt=2&token=$secret" '{"status":"succeeded","output":"stale"}'
expect_eq "(c) attempt=2 (not started) is 409" "$STATUS" 409
unchanged "$A" "$h" "(c) after the wrong-attempt updates"

# ---------------------------------------------------------------- (d) terminal
cb "$url" '{"status":"succeeded","output":{"answer":42},"metrics":{"predict_time":1.25},"logs":"done\n"}'
expect_eq "(d) the terminal webhook is 200" "$STATUS" 200
client GET "/api/v2/tasks/$A"
expect_eq "(d) the task is COMPLETED" "$(jget .status)" COMPLETED
expect_eq "(d) result.output" "$(jc .result.output)" '{"answer":42}'
expect_eq "(d) result.metrics.predict_time" "$(jget .result.metrics.predict_time)" 1.25
expect_eq "(d) result.logs" "$(jget .result.logs)" "done"
expect_eq "(d) s1's load went down by one" "$(server_load s1)" $((load0 - 1))
h=$(task_hash "$A")
cb "$url" '{"status":"succeeded","output":{"answer":42},"metrics":{"predict_time":1.25},"logs":"done\n"}'
expect_eq "(d) the same terminal webhook again is 200" "$STATUS" 200
cb "$url" '{"status":"succeeded","output":{"answer":"different"}}'
expect_eq "(d) a repeated 'succeeded' with another output is a 200 no-op" "$STATUS" 200
unchanged "$A" "$h" "(d) after the duplicate terminal webhooks"
expect_eq "(d) the first result stands" "$(task_field "$A" .result.output.answer)" 42
expect_eq "(d) the load went down only once" "$(server_load s1)" $((load0 - 1))
cb "$url" '{"status":"failed","error":"late failure"}'
expect_eq "(d) a different terminal update after completion is 409" "$STATUS" 409
cb "$url" '{"status":"processing","logs":"late"}'
expect_eq "(d) progress after completion is 409" "$STATUS" 409
unchanged "$A" "$h" "(d) after the late updates"

# ---------------------------------------------------------------- (e) Bearer tokens
check "(e) task B goes to s1" submit m1
B=$TID
cb "/api/v2/tasks/$B/callback?attempt=1" '{"status":"processing","logs":"via bearer"}' \
	-H "Authorization: Bearer $TOK1"
expect_eq "(e) callback with s1's callbackToken (no secret): progress 200" "$STATUS" 200
expect_eq "(e) ... recorded" "$(task_field "$B" .progress.logs)" "via bearer"
cb "/api/v2/tasks/$B/callback?attempt=1" '{"status":"succeeded","output":"bearer ok"}' \
	-H "Authorization: Bearer $TOK1"
expect_eq "(e) ... and the terminal update: 200" "$STATUS" 200
expect_eq "(e) B is COMPLETED with its output" "$(task_field "$B" '"\(.status) \(.result.output)"')" "COMPLETED bearer ok"
check "(e) task C goes to s1" submit m1
C=$TID
anon PUT "/api/v2/tasks/$C" '{"status":"succeeded","output":{"via":"put"}}' -H "Authorization: Bearer $TOK1"
expect_eq "(e) PUT /api/v2/tasks/:id with s1's callbackToken: 200" "$STATUS" 200
expect_eq "(e) C is COMPLETED" "$(task_field "$C" '"\(.status) \(.result.output.via)"')" "COMPLETED put"
check "(e) task D goes to s2" submit m2
D=$TID
anon PUT "/api/v2/tasks/$D" '{"status":"succeeded","output":"wrong server"}' -H "Authorization: Bearer $TOK1"
expect_eq "(e) s1's token cannot update a task of s2" "$STATUS" 401
expect_eq "(e) ... D is still PROCESSING" "$(task_field "$D" .status)" PROCESSING
anon PUT "/api/v2/tasks/$D" '{"status":"failed","error":"operator says no"}' -H "Authorization: Bearer $ADMIN"
expect_eq "(e) PUT with the admin token: 200" "$STATUS" 200
client GET "/api/v2/tasks/$D"
expect_eq "(e) D is FAILED" "$(jget .status)" FAILED
check "(e) ... with the error given" jqe '.error | test("operator says no")' <<< "$BODY"
expect_eq "(e) ... after one attempt (a reported failure is not retried)" "$(jget .attempts)" 1
expect_eq "(e) s2's load is back to 0" "$(server_load s2)" 0

# ---------------------------------------------------------------- (f) old attempt after a retry
client POST "/api/v2/tasks/$D/retry" ""
expect_eq "(f) retry of the FAILED task: 202" "$STATUS" 202
check "(f) it is dispatched again (attempt 2 on s2)" wait_for is_status "$D" PROCESSING
expect_eq "(f) ... attempt 2" "$(task_field "$D" .attempts)" 2
old=$(webhook s2 "$D" 1)
new=$(webhook s2 "$D" 2)
check "(f) attempt 2 got a new URL with a new secret" test -n "$new" -a "${new##*token=}" != "${old##*token=}"
h=$(task_hash "$D")
cb "$old" '{"status":"succeeded","output":"from the old attempt"}'
expect_eq "(f) the old attempt's 'succeeded' is 409" "$STATUS" 409
cb "$old" '{"status":"processing","logs":"old"}'
expect_eq "(f) the old attempt's progress is 409" "$STATUS" 409
cb "/api/v2/tasks/$D/callback?attempt=2&token=${old##*token=}" '{"status":"succeeded","output":"old secret"}'
expect_eq "(f) the old secret does not open attempt 2 (401)" "$STATUS" 401
unchanged "$D" "$h" "(f) after the old attempt's updates"
cb "$new" '{"status":"succeeded","output":"from attempt 2"}'
expect_eq "(f) the current attempt's webhook is 200" "$STATUS" 200
expect_eq "(f) D is COMPLETED by attempt 2" "$(task_field "$D" '"\(.status) \(.result.output)"')" "COMPLETED from attempt 2"
expect_eq "(f) s2's load is back to 0" "$(server_load s2)" 0

# ---------------------------------------------------------------- (g) a mock sending Authorization
client POST /api/v2/tasks '{"model":"mw","input":{"w":1}}'
W=$(jget .id)
check "(g) a task on w1 (mock --webhook-token) completes" wait_for is_status "$W" COMPLETED
expect_eq "(g) ... with w1's output" "$(task_field "$W" .result.output.server)" w1
expect_eq "(g) w1's webhooks (completed only, the default) were all accepted" "$(mock w1 /__stats | jq '"\(.webhooksDelivered)/\(.webhooksFailed)"')" '"1/0"'

# cancel the tasks still held by the no-callback mocks; every load returns to 0
client GET '/api/v2/tasks?status=PROCESSING&limit=200'
for t in $(jget '.items[].id'); do client DELETE "/api/v2/tasks/$t" > /dev/null; done
expect_eq "s1's load is 0 at the end" "$(server_load s1)" 0
expect_eq "s2's load is 0 at the end" "$(server_load s2)" 0
check "every JSON file of the state tree parses" all_state_parses
finish
