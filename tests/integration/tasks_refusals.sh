#!/usr/bin/env bash
# Refusals through lighttpd: what taskgate answers when a change cannot be made,
# and that it then writes nothing.
#  (a) a callback for a task whose file vanished between the callback's check of
#      its credentials and its change is 404 (no such task), not 409: the callback
#      is held on the task's lock stripe (flock) while the file is removed
#  (b) moves the transition table refuses: DELETE of a COMPLETED or FAILED task and
#      retry of a COMPLETED task are 409 problem+json, the task file is byte for
#      byte what it was, and the refused move is logged
#  (c) a callback racing a cancel: the attempt's webhook after the cancel is 409 and
#      changes nothing
# The tasks run on a mock Cog server in no-callback mode, so every webhook here is
# one we send ourselves, using the URL the backend got. Only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

TOK1=server-one-callback-token-0123456789
task_hash() { sha256sum < "$(task_file "$1")"; }
webhook() { # TASK ATTEMPT: the webhook URL s1 received, relative to BASE
	mock s1 /__requests | jq -r --arg p "/predictions/$1-$2" \
		'[.[] | select(.method == "PUT" and .path == $p)][0].body | fromjson | .webhook' |
		sed "s|^$BASE||"
}
submit() { # -> TID, PROCESSING on s1
	client POST /api/v2/tasks '{"model":"m1","input":{"n":1}}'
	TID=$(jget .id)
	[ "$(jget .status)" = PROCESSING ]
}
# answer METHOD PATH: "<status> <content type>" of a client request with no body
answer() {
	curl -s -m 10 -o /dev/null -w '%{http_code} %{content_type}' -X "$1" \
		-H "Authorization: Bearer $CLIENT" --data-binary '' "$BASE$2"
}
unchanged() { # ID HASH WHAT
	if [ "$(task_hash "$1")" = "$2" ]; then ok "$3: nothing written"; else not_ok "$3: nothing written (the task file differs)"; fi
}
# logged TEXT: taskgate wrote TEXT to its stderr (lighttpd keeps it in one of its logs)
logged() { cat "$WORK"/lighttpd/*.log 2>/dev/null | grep -q -- "$1"; }

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
start_mock s1 --protocol cog --slots 8 --delay-ms 60000 --mode no-callback || not_ok "mock s1 starts"
check "register s1" register_mock s1 s1 "\"capabilities\":{\"maxConcurrent\":8,\"supportedModels\":[\"m1\"]},\"callbackToken\":\"$TOK1\""

# ---------------------------------------------------------------- (a) vanished task
check "(a) a task goes to s1" submit
A=$TID
url=$(webhook "$A" 1)
check "(a) s1 got a webhook URL" grep -q "^/api/v2/tasks/$A/callback?attempt=1&token=" <<< "$url"
file=$(task_file "$A")
# The lock stripe of the id: the shard folder is the low byte of the id's hash,
# the stripe that hash modulo 64 (which divides 256).
shard=$(basename "$(dirname "$file")")
lockfile="$STATE/locks/tasks.$((16#$shard % 64))"
flock "$lockfile" -c "touch '$WORK/held'; sleep 2" &
_pids+=($!)
check "(a) the task's lock stripe is held" wait_for test -e "$WORK/held"
(anon POST "$url" '{"status":"succeeded","output":"late"}'; echo "$STATUS" > "$WORK/cb.status"; printf '%s' "$BODY" > "$WORK/cb.body") &
_pids+=($!)
sleep 0.7 # the callback has checked its token and waits for the lock
rm -f "$file"
check "(a) the callback answers" wait_for test -s "$WORK/cb.status"
expect_eq "(a) a callback for a vanished task is 404" "$(cat "$WORK/cb.status")" 404
check "(a) ... as problem+json naming the task" jqe --arg id "$A" '.status == 404 and (.detail | contains($id))' "$WORK/cb.body"
check "(a) ... and the task stays gone" test -z "$(task_file "$A")"
client GET "/api/v2/tasks/$A"
expect_eq "(a) GET of the vanished task is 404" "$STATUS" 404

# ---------------------------------------------------------------- (b) refused moves
check "(b) task C goes to s1" submit
C=$TID
anon POST "$(webhook "$C" 1)" '{"status":"succeeded","output":{"answer":42}}'
expect_eq "(b) C completes by its webhook" "$STATUS $(task_field "$C" .status)" "200 COMPLETED"
h=$(task_hash "$C")
expect_eq "(b) DELETE of a COMPLETED task is 409 problem+json" "$(answer DELETE "/api/v2/tasks/$C")" "409 application/problem+json"
unchanged "$C" "$h" "(b) after the DELETE"
check "(b) ... and the refused move is logged" logged "task $C: the move COMPLETED -> CANCELLED is not allowed"
expect_eq "(b) retry of a COMPLETED task is 409 problem+json" "$(answer POST "/api/v2/tasks/$C/retry")" "409 application/problem+json"
unchanged "$C" "$h" "(b) after the retry"
check "(b) ... and the refused move is logged" logged "task $C: the move COMPLETED -> QUEUED is not allowed"
client GET "/api/v2/tasks/$C"
expect_eq "(b) C is still COMPLETED with its result" "$(jget .status) $(jget .result.output.answer)" "COMPLETED 42"

check "(b) task F goes to s1" submit
F=$TID
anon POST "$(webhook "$F" 1)" '{"status":"failed","error":"out of memory"}'
expect_eq "(b) F fails by its webhook" "$STATUS $(task_field "$F" .status)" "200 FAILED"
h=$(task_hash "$F")
expect_eq "(b) DELETE of a FAILED task is 409 problem+json" "$(answer DELETE "/api/v2/tasks/$F")" "409 application/problem+json"
unchanged "$F" "$h" "(b) after the DELETE of F"
check "(b) ... and the refused move is logged" logged "task $F: the move FAILED -> CANCELLED is not allowed"

# ---------------------------------------------------------------- (c) callback after a cancel
check "(c) task R goes to s1" submit
R=$TID
url=$(webhook "$R" 1)
client DELETE "/api/v2/tasks/$R"
expect_eq "(c) DELETE of the running task is 200 CANCELLED" "$STATUS $(jget .status)" "200 CANCELLED"
h=$(task_hash "$R")
anon POST "$url" '{"status":"succeeded","output":"too late"}'
expect_eq "(c) its webhook after the cancel is 409" "$STATUS" 409
unchanged "$R" "$h" "(c) after the late webhook"
expect_eq "(c) R stays CANCELLED" "$(task_field "$R" .status)" CANCELLED
check "every state file parses" all_state_parses
finish
