#!/usr/bin/env bash
# mod_fcgid's own process killing during a burst of task creations. Apache + mod_fcgid
# (apache-conf/taskgate-vhost.conf.in) with the process limits set very low: idle
# processes stopped after 1 s, every process after 3 s of life or 10 requests, no
# minimum kept, mod_fcgid's scans every second. While it stops (SIGTERM, later
# SIGKILL) and starts processes all the time, 4 clients create tasks concurrently
# against a Cog mock, so answers, dispatches, callbacks and piggy-backed sweeps all
# meet the kills. Then: every task acknowledged with 202 is GETtable with its id, every
# file of the state tree parses, and with the sweep running every acknowledged task
# completes (timeoutSeconds 3 bounds any attempt a kill interrupted).
. "$(dirname "$0")/../lib.sh"

FRONTEND=apache-fcgid
FCGID_MIN_PROCS=0 FCGID_IDLE=1 FCGID_LIFETIME=3 FCGID_MAX_REQUESTS=10
# Scans every second, and no throttling of the many spawns this causes.
APACHE_SERVER_EXTRA='LogLevel warn fcgid:info
FcgidIdleScanInterval 1
FcgidErrorScanInterval 1
FcgidZombieScanInterval 1
FcgidBusyScanInterval 1
FcgidSpawnScoreUpLimit 100000
FcgidSpawnScore 1
FcgidTerminationScore 0'
CLIENTS=4
PER_CLIENT=${PER_CLIENT:-40}

start_taskgate 4 || { not_ok "Apache + mod_fcgid with taskgate starts"; finish; exit 1; }
ok "Apache + mod_fcgid with taskgate starts (idle 1 s, lifetime 3 s, 10 requests per process)"
set_config '.sweep.clockMarginMs=0 | .retry.minBackoffMs=100 | .retry.maxBackoffMs=500 | .piggyback.sweepSeconds=1'

start_mock cog --protocol cog --slots 8 --delay-ms 100 || { not_ok "mock starts"; finish; exit 1; }
register_mock cog c1 '"capabilities":{"maxConcurrent":8}'
check "register the Cog mock" test "$STATUS" = 201

# burst N: creates PER_CLIENT tasks, one after the other; each answer goes to
# $WORK/burst-N as "STATUS ID" (ID "-" unless the answer names one).
burst() {
	local n=$1 i code id
	: > "$WORK/burst-$n"
	for i in $(seq 1 "$PER_CLIENT"); do
		code=$(curl -s -m 30 -o "$WORK/body-$n" -w '%{http_code}' -X POST \
			-H "Authorization: Bearer $CLIENT" -H 'Content-Type: application/json' \
			--data-binary "{\"model\":\"m\",\"input\":{\"client\":$n,\"i\":$i},\"timeoutSeconds\":3,\"maxAttempts\":5}" \
			"$BASE/api/v2/tasks")
		id=$(jq -r '.id // "-"' "$WORK/body-$n" 2> /dev/null)
		echo "$code ${id:--}" >> "$WORK/burst-$n"
		# A pause now and then lets processes go idle, so the idle kill happens too.
		[ $((i % 10)) = 0 ] && sleep 1.2
	done
}
t0=$SECONDS
bpids=()
for n in $(seq 1 $CLIENTS); do
	burst "$n" &
	bpids+=($!)
done
wait "${bpids[@]}"
echo "# burst of $((CLIENTS * PER_CLIENT)) creations took $((SECONDS - t0)) s"
for n in $(seq 1 $CLIENTS); do cat "$WORK/burst-$n"; done > "$WORK/answers"
grep '^202 ' "$WORK/answers" | cut -d' ' -f2 > "$WORK/acked"
n_acked=$(wc -l < "$WORK/acked")
echo "# answers: $(cut -d' ' -f1 "$WORK/answers" | sort | uniq -c | tr -s ' \n' ' ')"
expect_eq "every request was answered" "$(wc -l < "$WORK/answers")" $((CLIENTS * PER_CLIENT))
check "most creations were acknowledged ($n_acked of $((CLIENTS * PER_CLIENT)))" \
	test "$n_acked" -ge $((CLIENTS * PER_CLIENT * 8 / 10))
check "every 202 named a task" bash -c "! grep -qx -- '-' '$WORK/acked'"
expect_eq "no task id was acknowledged twice" "$(sort "$WORK/acked" | uniq -d | wc -l)" 0

log="$WORK/apache/logs/error.log"
spawned=$(grep -c 'mod_fcgid: server .* started' "$log")
stopped=$(grep -c 'mod_fcgid: process .* exit(' "$log")
echo "# mod_fcgid started $spawned processes and reported $stopped exits"
grep -o 'exit([a-z ]*)' "$log" | sort | uniq -c | sed 's/^/#   /'
check "mod_fcgid stopped processes during the burst ($stopped)" test "$stopped" -ge 10
check "... for lifetime or idle time" grep -qE 'exit\((lifetime expired|idle timeout)\)' "$log"

# Every acknowledged task is there, as itself.
missing=0
while read -r id; do
	client GET "/api/v2/tasks/$id"
	if [ "$STATUS" != 200 ] || [ "$(jget .id)" != "$id" ]; then
		missing=$((missing + 1))
		echo "# acknowledged task $id: GET answered $STATUS"
	fi
done < "$WORK/acked"
expect_eq "every acknowledged task is GETtable ($n_acked)" "$missing" 0
check "every state file parses (right after the burst)" all_state_parses
n_files=$(find "$STATE/tasks" -name '*.json' | wc -l)
check "the tree holds a file for each acknowledged task ($n_files >= $n_acked)" test "$n_files" -ge "$n_acked"

# With cron doing its work (sweep and health, as on a real host), nothing stays half
# done: all complete.
sweeper() {
	local i
	for i in $(seq 1 120); do
		STATE_DIR="$STATE" "$BUILD/cron/taskgate-sweep" --quiet > /dev/null 2>&1
		STATE_DIR="$STATE" "$BUILD/cron/taskgate-health" --quiet > /dev/null 2>&1
		sleep 0.5
	done
}
sweeper &
spid=$!
_pids+=($spid)
all_done() {
	local id
	while read -r id; do
		[ "$(jq -r .status "$(task_file "$id")" 2> /dev/null)" = COMPLETED ] || return 1
	done < "$WORK/acked"
}
end=$((SECONDS + 60))
until all_done || [ $SECONDS -ge $end ]; do sleep 1; done
check "every acknowledged task completes (sweep running, bounded 60 s)" all_done
if ! all_done; then
	while read -r id; do
		client GET "/api/v2/tasks/$id"
		[ "$(jget .status)" = COMPLETED ] || echo "# $id: $(jget '[.status, .attempts, .serverId] | @tsv')"
	done < "$WORK/acked" | head -10
fi
kill "$spid" 2> /dev/null
wait "$spid" 2> /dev/null
check "every state file parses (at the end)" all_state_parses
client GET /api/v2/servers/c1
expect_eq "the server's ledger is back to 0" "$(jget .currentLoad)" 0
finish
