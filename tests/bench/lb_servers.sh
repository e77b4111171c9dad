#!/usr/bin/env bash
# Create throughput against the number of registered servers (issue 4's bench):
# POST /api/v2/tasks through lighttpd + taskgate with 1, 10 and 100 servers
# registered, all pointing at one fast async Cog mock with many slots (so every
# task is dispatched, none queues), each measured with wrk for DURATION seconds on
# 127.0.0.1 and printed as a ratio to the 1-server figure. Target: 100 servers
# >= 0.7x. Each size gets its own fresh state tree and lighttpd, all started
# first; then REPEAT rounds measure every size in turn (1, 10, 100, 1, 10, ...)
# and the median of each size is reported, so a burst of load from elsewhere on
# the machine does not land on one size only.
#
# Output, one line per size, then the verdict:
#   lb: servers=100 rps=512.3 ratio_to_1=0.93 p50_ms=14.1 p99_ms=48.0 non2xx=0
#   lb: target servers=100 >= 0.70x of servers=1: PASS (0.93)
# Environment: BUILD (build folder), DURATION (5 s per measurement), REPEAT (3),
# CONNS (8), THREADS (2), PROCS (FastCGI processes per lighttpd, 4), SIZES
# ("1 10 100"), ALGORITHM (default: the configured default, round-robin),
# DELAY_MS (mock prediction time, 5).
set -u
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DURATION=${DURATION:-5}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-8}
THREADS=${THREADS:-2}
PROCS=${PROCS:-4}
SIZES=${SIZES:-1 10 100}
ALGORITHM=${ALGORITHM:-}
DELAY_MS=${DELAY_MS:-5}
ADMIN=bench-admin-token-0123456789
CLIENT=bench-client-token-0123456789
WORK=$(mktemp -d /tmp/taskgate-bench-lb.XXXXXX)
pids=()
pidfiles=()

cleanup() {
	local f p
	for f in "${pidfiles[@]}"; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	sleep 0.3
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk lighttpd curl jq python3; do
	command -v "$tool" > /dev/null || { echo "lb: $tool is missing" >&2; exit 1; }
done
[ -x "$BUILD/taskgate.fcgi" ] && [ -x "$BUILD/tests/mock_backend" ] ||
	{ echo "lb: build first (make all build/tests/mock_backend)" >&2; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_for() {
	local i
	for i in $(seq 1 100); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# One mock for every size: async Cog, many slots, a short prediction.
"$BUILD/tests/mock_backend" --protocol cog --port 0 --port-file "$WORK/mock.port" \
	--slots 1024 --delay-ms "$DELAY_MS" --name bench --max-seconds 3600 > "$WORK/mock.log" 2>&1 &
pids+=($!)
wait_for test -s "$WORK/mock.port" || { echo "lb: the mock did not start" >&2; exit 1; }
MOCK_PORT=$(cat "$WORK/mock.port")

# start_taskgate DIR: fresh state tree + lighttpd; sets BASE.
start_taskgate() {
	local dir=$1 port
	port=$(free_port)
	BASE="http://127.0.0.1:$port"
	mkdir -p "$dir/www"
	STATE_DIR="$dir/state" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" \
		"$BUILD/taskgate.fcgi" init > /dev/null || return 1
	sed -e "s|@PORT@|$port|" -e "s|@DOCROOT@|$dir/www|" -e "s|@LOGDIR@|$dir|g" \
		-e "s|@PROGRAM@|$BUILD/taskgate.fcgi|" -e "s|@RUNDIR@|$dir|" -e "s|@PROCS@|$PROCS|" \
		-e "s|@STATE_DIR@|$dir/state|" "$ROOT/apache-conf/lighttpd.conf.in" > "$dir/lighttpd.conf"
	lighttpd -f "$dir/lighttpd.conf" > "$dir/stderr.log" 2>&1 || return 1
	pidfiles+=("$dir/lighttpd.pid")
	wait_for curl -sf "$BASE/api/v2/health"
}

register() { # ID
	curl -sf -o /dev/null -m 10 -X POST -H "Authorization: Bearer $ADMIN" \
		-H 'Content-Type: application/json' --data-binary \
		"{\"id\":\"$1\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$MOCK_PORT/predictions\",\"health\":\"http://127.0.0.1:$MOCK_PORT/health-check\"},\"capabilities\":{\"maxConcurrent\":10000}}" \
		"$BASE/api/v2/servers"
}

# to_ms "1.23ms" | "850.00us" | "1.20s" -> milliseconds
to_ms() {
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0;
		else if (v ~ /s$/) n *= 1000; printf "%.1f", n }'
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

declare -A URL
for n in $SIZES; do
	dir="$WORK/n$n"
	start_taskgate "$dir" || { echo "lb: taskgate did not start for servers=$n" >&2; exit 1; }
	URL[$n]=$BASE
	for i in $(seq 1 "$n"); do
		register "$(printf 'bench-%03d' "$i")" || { echo "lb: registering server $i failed" >&2; exit 1; }
	done
	if [ -n "$ALGORITHM" ]; then
		curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
			--data-binary "{\"algorithm\":\"$ALGORITHM\"}" "$BASE/api/v2/loadbalancer/config" ||
			{ echo "lb: setting the algorithm failed" >&2; exit 1; }
	fi
done

export TASKGATE_TOKEN=$CLIENT BENCH_MODEL=bench
declare -A RPS P50 P99 ERR
for r in $(seq 1 "$REPEAT"); do
	for n in $SIZES; do
		out="$WORK/n$n/wrk.$r"
		# Warm-up: processes started, caches and shards created.
		wrk -t1 -c2 -d1s -s "$here/lb_post.lua" "${URL[$n]}/api/v2/tasks" > /dev/null 2>&1
		wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$here/lb_post.lua" \
			"${URL[$n]}/api/v2/tasks" > "$out" 2>&1
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
		[ -n "$rps" ] || { echo "lb: wrk failed for servers=$n:" >&2; cat "$out" >&2; exit 1; }
		RPS[$n]="${RPS[$n]:-} $rps"
		P50[$n]="${P50[$n]:-} $(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
		P99[$n]="${P99[$n]:-} $(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
		ERR[$n]=$(( ${ERR[$n]:-0} + $(awk '/Non-2xx/ { n = $NF } END { print n + 0 }' "$out") ))
	done
done

declare -A MED
for n in $SIZES; do
	# shellcheck disable=SC2086
	MED[$n]=$(median ${RPS[$n]})
done
first=${SIZES%% *}
for n in $SIZES; do
	ratio=$(awk -v a="${MED[$n]}" -v b="${MED[$first]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	# shellcheck disable=SC2086
	echo "lb: servers=$n rps=${MED[$n]} ratio_to_$first=$ratio p50_ms=$(median ${P50[$n]}) p99_ms=$(median ${P99[$n]}) non2xx=${ERR[$n]} runs=${RPS[$n]# }"
done
last=${SIZES##* }
if [ "$last" != "$first" ]; then
	ratio=$(awk -v a="${MED[$last]}" -v b="${MED[$first]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.7 ? "PASS" : "FAIL") }')
	echo "lb: target servers=$last >= 0.70x of servers=$first: $verdict ($ratio)"
fi
