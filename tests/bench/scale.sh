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
WORK=$(mktemp -d /tmp/taskgate-bench-scale.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
	wait 2> /dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

make_tree() { # name finished queued
	local state="$WORK/$1-state"
	STATE_DIR="$state" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="http://127.0.0.1:0" \
		"$BUILD/taskgate.fcgi" init > /dev/null
	# No piggy-backed periodic work: each measure runs what it measures.
	jq '.piggyback.enabled=false' "$state/config.json" > "$state/c.new" && mv "$state/c.new" "$state/config.json"
	python3 "$here/make_history.py" "$state" "$2" 0 "$3"
}

start_gateway() { # name
	local name=$1 dir="$WORK/$1" state="$WORK/$1-state" port
	port=$(free_port)
	mkdir -p "$dir/www"
	jq ".publicUrl=\"http://127.0.0.1:$port\"" "$state/config.json" > "$state/c.new" &&
		mv "$state/c.new" "$state/config.json"
	cat > "$dir/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$dir/www"
server.errorlog = "$dir/error.log"
fastcgi.server = (
  "/" => (( "bin-path" => "$BUILD/taskgate.fcgi", "socket" => "$dir/taskgate.sock",
            "max-procs" => $PROCS, "check-local" => "disable",
            "bin-environment" => ( "STATE_DIR" => "$state" ) )),
)
CONF
	lighttpd -D -f "$dir/lighttpd.conf" > "$dir/stderr.log" 2>&1 &
	pids+=($!)
	local i
	for i in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$port/api/v2/health" > /dev/null && break
		sleep 0.1
	done
	eval "URL_$name=http://127.0.0.1:$port"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

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

start_mock() { # name
	"$BUILD/tests/mock_backend" --protocol cog --port 0 --port-file "$WORK/$1.port" --slots 64 \
		--delay-ms 1 --name "$1" --max-seconds 3600 > "$WORK/$1.log" 2>&1 &
	pids+=($!)
	local i
	for i in $(seq 1 100); do [ -s "$WORK/$1.port" ] && break; sleep 0.1; done
	eval "MOCK_$1=http://127.0.0.1:$(cat "$WORK/$1.port")"
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

for tool in lighttpd curl jq python3; do
	command -v "$tool" > /dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
echo "scale: building trees (small: $SMALL_FINISHED finished, $SMALL_QUEUED queued;" \
	"big: $FINISHED finished, $QUEUED queued)..."
t0=$(date +%s)
make_tree small "$SMALL_FINISHED" "$SMALL_QUEUED"
make_tree big "$FINISHED" "$QUEUED"
echo "scale: trees built in $(( $(date +%s) - t0 )) s"
start_gateway small
start_gateway big
start_mock small
start_mock big

ls=$(list_p50 "$URL_small") lb=$(list_p50 "$URL_big")
ss=$(sweep_ms small) sb=$(sweep_ms big)
ds=$(drain_rate small) db=$(drain_rate big)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
printf '\n%-34s %12s %12s %8s %s\n' measure small big big/small target
printf '%-34s %12s %12s %8s %s\n' "list status=COMPLETED limit=10 ms" "$ls" "$lb" "$(ratio "$lb" "$ls")" "<= 2"
printf '%-34s %12s %12s %8s %s\n' "dispatch, tasks/s" "$ds" "$db" "$(ratio "$db" "$ds")" ">= 0.5"
printf '%-34s %12s %12s %8s %s\n' "sweep ms" "$ss" "$sb" "$(ratio "$sb" "$ss")" "<= 2"
