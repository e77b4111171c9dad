#!/usr/bin/env bash
# A power loss, through the real program behind lighttpd. Acknowledged writes are
# made durable by the journal (lib/journal.h): each file is put in place without
# fsync and a record of it is flushed once per request. A power loss can then
# lose or roll back the files themselves; this test does exactly that to the tree
# (removes the tasks, their index entries and a server, puts back an older version
# of a task) after killing every process with SIGKILL, records a different boot in
# the journal, and starts the web server again. Every acknowledged write must be
# back: each task with its last status, the listing, the queue (the tasks drain
# once a server that fits comes), the server, and a removal stays removed.
. "$(dirname "$0")/../lib.sh"

N=30
start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"

# Servers that cannot take model m: the tasks stay QUEUED.
admin POST /api/v2/servers '{"id":"other","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"},"capabilities":{"supportedModels":["other-model"]}}'
check "register a server for another model" test "$STATUS" = 201
admin POST /api/v2/servers '{"id":"doomed","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"},"capabilities":{"supportedModels":["other-model"]}}'
admin DELETE /api/v2/servers/doomed
check "register and remove a second server" test "$STATUS" = 204

ids=()
created=0
for i in $(seq 1 $N); do
	client POST /api/v2/tasks "{\"model\":\"m\",\"input\":{\"n\":$i},\"priority\":$((i % 3))}"
	[ "$STATUS" = 202 ] && created=$((created + 1)) && ids+=("$(jget .id)")
done
expect_eq "$N tasks acknowledged with 202" "$created" "$N"
first=${ids[0]}
cp "$(task_file "$first")" "$WORK/first-queued.json"
client DELETE "/api/v2/tasks/$first"
check "cancel the first task" test "$(jget .status)" = CANCELLED

# The power fails: nothing gets to clean up.
# The FastCGI processes are found by their state tree (their environment), so
# none of them outlives lighttpd and none of another test is touched.
ours() {
	local p
	for p in $(pgrep -f "$BUILD/taskgate.fcgi"); do
		tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -qxF "STATE_DIR=$STATE" && echo "$p"
	done
}
lpid=$(cat "$WORK/lighttpd/lighttpd.pid")
kill -9 $(ours) 2> /dev/null
{ kill -9 "$lpid" && wait "$lpid"; } 2> /dev/null
check "no process of the first start is left" wait_for test -z "$(ours)"

# What the disk may hold afterwards: files and entries that never reached it, a
# removal that did not, and an older version of a file that was replaced.
rm -rf "$STATE"/tasks/* "$STATE"/queue/* "$STATE"/created/* "$STATE/servers/other.json"
printf '{"id":"doomed"}' > "$STATE/servers/doomed.json"
shard=$(printf '%s' "$first" | python3 -c 'import sys
h = 2166136261
for c in sys.stdin.read().encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
print("%02x" % (h & 0xff))')
mkdir -p "$STATE/tasks/$shard"
cp "$WORK/first-queued.json" "$STATE/tasks/$shard/$first.json"
check "the tree lost the tasks (only the stale first one is left)" \
	test "$(find "$STATE/tasks" -name '*.json' | wc -l)" = 1

synced=$(ls "$STATE"/journal/*.synced)
edit_json "$synced" '.bootId = "previous-boot"'

lighttpd -D -f "$WORK/lighttpd/lighttpd.conf" > "$WORK/lighttpd/stderr2.log" 2>&1 &
_pids+=($!)
check "lighttpd starts again" wait_for curl -sf "$BASE/api/v2/health"

back=0 queued=0
for id in "${ids[@]}"; do
	client GET "/api/v2/tasks/$id"
	[ "$STATUS" = 200 ] && back=$((back + 1))
	[ "$(jget .status)" = QUEUED ] && queued=$((queued + 1))
done
expect_eq "every acknowledged task is back" "$back" "$N"
expect_eq "every task not cancelled is QUEUED" "$queued" "$((N - 1))"
check "the cancelled task is CANCELLED, not its older QUEUED version" is_status "$first" CANCELLED
check "the journal says what it re-applied" grep -q "re-applied" "$WORK"/lighttpd/*.log
client GET "/api/v2/tasks?limit=100"
expect_eq "the listing (created index) has every task" "$(jget '.items | length')" "$N"
admin GET /api/v2/servers/other
check "the registered server is back" test "$STATUS" = 200
admin GET /api/v2/servers/doomed
check "the removed server stays removed" test "$STATUS" = 404
check "every JSON file of the state tree parses" all_state_parses

# The queue index came back too: a server for model m drains it.
start_mock m --protocol cog --slots 8 --delay-ms 5 || { not_ok "mock starts"; finish; exit 1; }
register_mock m cog-m '"capabilities":{"maxConcurrent":8}'
check "register a server for model m" test "$STATUS" = 201
done_all() {
	local id
	for id in "${ids[@]:1}"; do is_status "$id" COMPLETED || return 1; done
}
check "every queued task completes on the new server" wait_long done_all

# Checkpoints follow journalCheckpointSeconds: the sweep takes one when the last is
# older, and none otherwise (syncfs flushes the whole file system).
sweep() { STATE_DIR="$STATE" "$BUILD/cron/taskgate-sweep" --quiet > /dev/null; }
set_config '.journalCheckpointSeconds = 3600'
sweep
t1=$(jq .syncedThrough "$synced")
sweep
expect_eq "a sweep soon after a checkpoint takes none" "$(jq .syncedThrough "$synced")" "$t1"
set_config '.journalCheckpointSeconds = 1'
sleep 1.2
sweep
check "a sweep after journalCheckpointSeconds takes one" test "$(jq .syncedThrough "$synced")" -gt "$t1"

finish
