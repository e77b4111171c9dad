#!/usr/bin/env bash
# cron/taskgate-sweep: timeouts and retries, backoff, the run lock, ledger repair,
# late callbacks racing a timeout, stale servers, retention.
. "$(dirname "$0")/../lib.sh"
SWEEP="$BUILD/cron/taskgate-sweep"
sweep() { STATE_DIR="$STATE" "$SWEEP" "$@"; }

start_taskgate 4 || { not_ok "taskgate starts"; finish; exit 1; }
# No piggy-backed runs: this test decides when the sweep runs. No clock margin.
set_config '.piggyback.enabled=false | .sweep.clockMarginMs=0 | .retry.minBackoffMs=200 | .retry.maxBackoffMs=2000 | .retry.jitter=0'

start_mock silent --protocol cog --slots 4 --mode no-callback
start_mock good --protocol cog --slots 4 --delay-ms 100
register_mock silent s-silent '"capabilities":{"maxConcurrent":1}'
check "register the silent server" test "$STATUS" = 201

# 1. A task on a backend that never calls back times out and completes elsewhere.
client POST /api/v2/tasks '{"model":"m","input":{"n":1},"timeoutSeconds":1,"maxAttempts":3}'
id=$(jget .id)
expect_eq "first attempt goes to the silent server" "$(jget .serverId)" s-silent
register_mock good s-good '"capabilities":{"maxConcurrent":2}'
sleep 1.3
out=$(sweep)
check "sweep reports a timeout" grep -q '1 timed out' <<< "$out"
client GET "/api/v2/tasks/$id"
expect_eq "timed-out task is queued for a retry" "$(jget .status)" QUEUED
expect_eq "attempt 1 outcome is timeout" "$(jget '.history[0].outcome')" timeout
ended=$(jget '.history[0].endedAt')
next=$(jget '.nextAttemptAt')
delay=$((next - ended))
check "first backoff is minBackoff (200 ms, got $delay)" test "$delay" -ge 195 -a "$delay" -le 260
admin GET /api/v2/servers/s-silent
expect_eq "the timed-out slot is released" "$(jget .currentLoad)" 0
check "the silent backend was told to cancel" \
	bash -c "curl -s http://127.0.0.1:$MOCK_PORT_silent/__requests | jq -e '[.[] | select(.path | endswith(\"/cancel\"))] | length >= 1' >/dev/null"
sleep 0.3
sweep --quiet > /dev/null
check "the retry completes on the other server" wait_status "$id" COMPLETED 10
expect_eq "completed on the good server" "$(jget .serverId)" s-good
expect_eq "two attempts" "$(jget .attempts)" 2

# 2. Backoff follows the formula over repeated timeouts, then FAILED after maxAttempts.
admin PUT /api/v2/servers/s-good/maintenance '{"enabled":true}'
client POST /api/v2/tasks '{"model":"m","input":{"n":2},"timeoutSeconds":1,"maxAttempts":3}'
id2=$(jget .id)
delays=()
for round in 1 2 3; do
	for i in $(seq 1 40); do
		client GET "/api/v2/tasks/$id2"
		[ "$(jget .status)" = PROCESSING ] && break
		sweep --quiet > /dev/null
		sleep 0.1
	done
	sleep 1.1
	sweep --quiet > /dev/null
	client GET "/api/v2/tasks/$id2"
	[ "$(jget .status)" = QUEUED ] && delays+=($(( $(jget .nextAttemptAt) - $(jget ".history[$((round - 1))].endedAt") )))
done
expect_eq "after 3 timed-out attempts the task failed" "$(jget .status)" FAILED
check "error says why" grep -q 'gave up after 3 failed attempts' <<< "$(jget .error)"
check "second backoff doubles (got ${delays[1]:-none})" test "${delays[1]:-0}" -ge 395 -a "${delays[1]:-0}" -le 460
admin PUT /api/v2/servers/s-good/maintenance '{"enabled":false}'

# 3. Two sweeps started together: one works, the other exits 0 at once.
sweep --for 3 --every 1 --quiet &
first=$!
sleep 0.3
start=$(date +%s%N)
sweep; rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "an overlapping sweep exits 0" "$rc" 0
check "an overlapping sweep returns at once (${took} ms)" test "$took" -lt 1000
wait $first

# 4. A corrupted currentLoad is repaired by one sweep.
edit_json "$STATE/servers/s-good.json" '.currentLoad = 7'
out=$(sweep); rc=$?
admin GET /api/v2/servers/s-good
expect_eq "ledger repaired to the PROCESSING count" "$(jget .currentLoad)" 0
expect_eq "a repair is a WARNING (exit 1)" "$rc" 1

# 5. Late callbacks racing the timeout: never two completions.
doubles=0
for round in $(seq 1 8); do
	client POST /api/v2/tasks "{\"model\":\"m\",\"input\":{\"race\":$round},\"timeoutSeconds\":1,\"maxAttempts\":1}"
	rid=$(jget .id)
	[ "$(jget .serverId)" = s-silent ] || { admin PUT /api/v2/servers/s-good/maintenance '{"enabled":true}'; continue; }
	url=$(curl -s "http://127.0.0.1:$MOCK_PORT_silent/__requests" | jq -r --arg id "$rid" '[.[] | select(.path | contains($id)) | .body | fromjson | .webhook][0]')
	sleep 1.05
	racers=()
	for k in 1 2 3; do
		curl -s -m 10 -o /dev/null -X POST -H 'Content-Type: application/json' \
			--data '{"status":"succeeded","output":"late"}' "$url" &
		racers+=($!)
	done
	sweep --quiet > /dev/null &
	racers+=($!)
	wait "${racers[@]}"
	client GET "/api/v2/tasks/$rid"
	n_end=$(jget '[.history[] | select(.endedAt != null)] | length')
	st=$(jget .status)
	outcome=$(jget '.history[0].outcome')
	if [ "$n_end" != 1 ] || { [ "$st" = COMPLETED ] && [ "$outcome" != succeeded ]; } ||
		{ [ "$st" = FAILED ] && [ "$outcome" != timeout ]; }; then
		doubles=$((doubles + 1))
		echo "# race $round: status $st, outcome $outcome, ended $n_end"
	fi
done
expect_eq "no double completion in 8 races" "$doubles" 0
admin GET /api/v2/servers/s-silent
expect_eq "no slot leaked by the races" "$(jget .currentLoad)" 0
admin PUT /api/v2/servers/s-good/maintenance '{"enabled":false}'

# 6. Stale servers go offline, and much later are unregistered.
admin POST /api/v2/servers '{"id":"ghost","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"}}'
old=$(( $(date +%s%3N) - 3600 * 1000 ))
edit_json "$STATE/servers/ghost.json" ".registeredAt=$old | .lastHeartbeat=$old | .lastSuccessAt=0"
sweep --quiet > /dev/null
admin GET /api/v2/servers/ghost
expect_eq "a server silent past staleAfter is offline" "$(jget .status)" offline
older=$(( $(date +%s%3N) - 8 * 86400 * 1000 ))
edit_json "$STATE/servers/ghost.json" ".registeredAt=$older | .lastHeartbeat=$older"
sweep --quiet > /dev/null
admin GET /api/v2/servers/ghost
expect_eq "a server silent past removeAfter is unregistered" "$STATUS" 404

# 7. Retention: finished tasks older than retentionDays are removed, others stay.
admin PUT /api/v2/servers/s-silent/maintenance '{"enabled":true}'
client POST /api/v2/tasks '{"model":"m","input":{"old":true}}' -H 'Prefer: wait=5'
oid=$(jget .id)
expect_eq "a task to expire completed" "$(jget .status)" COMPLETED
long_ago=$(( $(date +%s%3N) - 9 * 86400 * 1000 ))
f=$(task_file "$oid")
edit_json "$f" ".createdAt=$long_ago | .completedAt=$long_ago"
hour=$(date -u -d "@$((long_ago / 1000))" +%Y%m%d%H)
minute=$(date -u -d "@$((long_ago / 1000))" +%M)
mkdir -p "$STATE/created/$hour/$minute"
mv "$STATE"/created/*/*/*"-$oid" "$STATE/created/$hour/$minute/$(printf '%013d' "$long_ago")-$oid"
sweep --quiet > /dev/null
client GET "/api/v2/tasks/$oid"
expect_eq "an expired finished task is removed" "$STATUS" 404
client GET "/api/v2/tasks/$id"
expect_eq "a recent finished task stays" "$STATUS" 200
check "the expired hour folder is gone" test ! -d "$STATE/created/$hour"
# 8. A queue entry whose task file is not there yet (a create between its two writes)
# is a hint kept for a minute from the entry's own queuedAt, wherever that falls in
# its 65.5 s bucket; older, it is dropped. Entries queued 0 to 58 s ago cover the
# bucket offsets that a grace counted from the bucket's start would cut short.
now=$(date +%s%3N)
young=0
for d in $(seq 0 2000 58000); do
	q=$((now - d))
	b=$((q - q % 65536))
	id=$(printf '00000000-0000-4000-8000-%012d' "$d")
	mkdir -p "$STATE/queue/500000/$(printf '%013d' "$b")"
	: > "$STATE/queue/500000/$(printf '%013d' "$b")/$(printf '%013d' "$q")-0000000000000-$id"
	young=$((young + 1))
done
q=$((now - 90000))
b=$((q - q % 65536))
old_id=00000000-0000-4000-8000-999999999999
mkdir -p "$STATE/queue/500000/$(printf '%013d' "$b")"
: > "$STATE/queue/500000/$(printf '%013d' "$b")/$(printf '%013d' "$q")-0000000000000-$old_id"
sweep --quiet > /dev/null
expect_eq "entries of tasks still being created (0-58 s old) are kept" \
	"$(find "$STATE/queue" -type f -name '*-00000000-0000-4000-8000-0*' | wc -l)" "$young"
expect_eq "an entry 90 s old without its task is dropped" \
	"$(find "$STATE/queue" -type f -name "*-$old_id" | wc -l)" 0
find "$STATE/queue" -type f -name '*-00000000-0000-4000-8000-*' -delete
check "every state file parses" all_state_parses
finish
