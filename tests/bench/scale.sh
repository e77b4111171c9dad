#!/usr/bin/env bash
# Costs follow the answer, not the tree: the same measures on a small tree and on a
# big one (default 1,000,000 finished and 100,000 queued tasks, written directly on
# disk by make_history.py), side by side in one run, with the ratio big/small:
#   list     GET /api/v2/tasks?status=COMPLETED&limit=10, p50 of REPEAT requests
#   dispatch queued tasks drained onto a fast Cog mock: tasks per second until
#            DRAIN of them completed (the small tree holds 100 queued)
#   sweep    taskgate-sweep's wall time, start-up included (median of REPEAT)
# Environment: BUILD, FINISHED (1000000), QUEUED (100000), SMALL_FINISHED (1000),
# SMALL_QUEUED (100), REPEAT (20), DRAIN (100), PROCS (4).
set -u
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
FINISHED=${FINISHED:-1000000}
QUEUED=${QUEUED:-100000}
SMALL_FINISHED=${SMALL_FINISHED:-1000}
SMALL_QUEUED=${SMALL_QUEUED:-100}
REPEAT=${REPEAT:-20}
DRAIN=${DRAIN:-100}
PROCS=${PROCS:-4}
ADMIN=bench-admin-token-0123456789
CLIENT=bench-client-token-0123456789
. "$here/lib.sh"

make_tree() { # name finished queued
	local state="$WORK/$1-state"
	STATE_DIR="$state" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT "$BUILD/taskgate.fcgi" init > /dev/null
	# No piggy-backed periodic work: each measure runs what it measures.
	python3 "$here/make_history.py" "$state" "$2" 0 "$3"
}

list_p50() { # url: p50 (ms) of REPEAT filtered listings
	local i
	for i in $(seq 1 "$REPEAT"); do
		curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $CLIENT" \
			"$1/api/v2/tasks?status=COMPLETED&limit=10"
	done | awk '{ printf "%.2f\n", $1 * 1000 }' | median
}

sweep_ms() { # name: median wall time (ms) of REPEAT sweep runs, start-up included
	local i t0 t1
	for i in $(seq 1 "$REPEAT"); do
		t0=$(date +%s%N)
		STATE_DIR="$WORK/$1-state" "$BUILD/cron/taskgate-sweep" --quiet > /dev/null
		t1=$(date +%s%N)
		awk -v d="$((t1 - t0))" 'BEGIN { printf "%.2f\n", d / 1e6 }'
	done | median
}

drain_rate() { # name: tasks/s until DRAIN queued tasks completed on a fresh fast server
	local name=$1 url mock
	eval "url=\$URL_$name; mock=\$MOCK_$name"
	local t0 t1 done i
	t0=$(date +%s%N)
	curl -s -o /dev/null -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
		--data "{\"id\":\"fast\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"$mock/predictions\",\"health\":\"$mock/health-check\"},\"capabilities\":{\"maxConcurrent\":64,\"supportedModels\":[\"bench\"]}}" \
		"$url/api/v2/servers"
	# A server that joins frees no slot: the sweep (as cron would) starts the drain.
	STATE_DIR="$WORK/$name-state" "$BUILD/cron/taskgate-sweep" --quiet > /dev/null
	for i in $(seq 1 1200); do
		done=$(curl -s "$mock/__stats" | jq .completed)
		[ "${done:-0}" -ge "$DRAIN" ] && break
		# cron's pace in a --every 1 loop, so a stall shows as a rate, not a hang
		[ $((i % 10)) = 0 ] && STATE_DIR="$WORK/$name-state" "$BUILD/cron/taskgate-sweep" --quiet > /dev/null
		sleep 0.1
	done
	t1=$(date +%s%N)
	awk -v n="${done:-0}" -v t="$(( (t1 - t0) / 1000000 ))" 'BEGIN { printf "%.1f", n * 1000 / (t > 0 ? t : 1) }'
}

bench_need lighttpd curl jq python3
echo "scale: building trees (small: $SMALL_FINISHED finished, $SMALL_QUEUED queued;" \
	"big: $FINISHED finished, $QUEUED queued)..."
t0=$(date +%s)
make_tree small "$SMALL_FINISHED" "$SMALL_QUEUED"
make_tree big "$FINISHED" "$QUEUED"
echo "scale: trees built in $(( $(date +%s) - t0 )) s"
bench_gateway small "$WORK/small-state"
bench_gateway big "$WORK/big-state"
bench_mock small --slots 64 --delay-ms 1
bench_mock big --slots 64 --delay-ms 1

ls=$(list_p50 "$URL_small") lb=$(list_p50 "$URL_big")
ss=$(sweep_ms small) sb=$(sweep_ms big)
ds=$(drain_rate small) db=$(drain_rate big)

printf '\n%-34s %12s %12s %8s %s\n' measure small big big/small target
printf '%-34s %12s %12s %8s %s\n' "list status=COMPLETED limit=10 ms" "$ls" "$lb" "$(ratio "$lb" "$ls")" "<= 2"
printf '%-34s %12s %12s %8s %s\n' "dispatch, tasks/s" "$ds" "$db" "$(ratio "$db" "$ds")" ">= 0.5"
printf '%-34s %12s %12s %8s %s\n' "sweep ms" "$ss" "$sb" "$(ratio "$sb" "$ss")" "<= 2"
