#!/usr/bin/env bash
# make bench: throughput and latency of taskgate's hot routes, side by side with a
# do-nothing FastCGI responder (the floor) under the same lighttpd, in one run, on
# 127.0.0.1. Prints requests/s, p50 and p99 for each, and the ratio to the floor.
# Ratios, not absolute figures, are what compare across machines.
#
# Measured:
#   floor                      GET /floor (floor.fcgi)
#   create, queued             POST /api/v2/tasks, no server registered
#   create, dispatched         POST /api/v2/tasks to a fast async Cog mock (answered at
#                              once: a worker sends the task; tests/bench/workmodel.sh
#                              measures the sends end to end)
#   get                        GET /api/v2/tasks/:id
# Each on the state tree on disk (every acknowledged write made durable by the
# journal: one fdatasync per request) and, for the creates, again on tmpfs
# (/dev/shm), which shows taskgate's own CPU cost without the disk's flush
# latency; queued creation once more on disk with "journal": false (file and
# directory fsync'd for every write), which shows what the journal buys.
# Then tests/bench/lb_servers.sh (1/10/100 servers), tests/bench/sweep_cost.sh,
# tests/bench/workmodel.sh (dispatch, slow PUTs, GETs beside hanging sends) and
# tests/bench/scale.sh (a million tasks against a thousand), and last
# tests/bench/journal_claim.c (taking a journal slot through its run-end hint,
# against walking the run).
# Environment: BUILD, DURATION (s per measurement, 5), CONNS (8), PROCS (4), ONLY.
set -u
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DURATION=${DURATION:-5}
CONNS=${CONNS:-8}
PROCS=${PROCS:-4}
CLIENT=bench-client-token-0123456789
ADMIN=bench-admin-token-0123456789
export TASKGATE_TOKEN=$CLIENT
. "$here/lib.sh"
SHM=$(mktemp -d /dev/shm/taskgate-bench.XXXXXX)
remove_shm() { rm -rf "$SHM"; }
bench_extra_cleanup=remove_shm

# start_gateway NAME STATE_PARENT [JQ]: a gateway (tests/bench/lib.sh) on the tree
# STATE_PARENT/NAME-state.
start_gateway() { bench_gateway "$1" "$2/$1-state" "${3:-.}"; }

# measure LABEL URL [wrk args]: one wrk run; prints and records rps, p50, p99.
declare -A RPS P50 P99
measure() {
	local label=$1 url=$2
	shift 2
	wrk -t1 -c2 -d1s "$@" "$url" > /dev/null 2>&1 # warm up: processes spawned, caches hot
	local out
	out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" 2>&1)
	RPS[$label]=$(awk '/^Requests\/sec/ { print $2 }' <<< "$out")
	P50[$label]=$(ms "$(awk '$1 == "50%" { print $2 }' <<< "$out")")
	P99[$label]=$(ms "$(awk '$1 == "99%" { print $2 }' <<< "$out")")
	local errs
	errs=$(awk '/Non-2xx/ { print $NF }' <<< "$out")
	[ -n "$errs" ] && echo "bench: $label had $errs non-2xx answers" >&2
}

bench_need wrk lighttpd curl jq python3

start_gateway disk "$WORK"
start_gateway tmpfs "$SHM"
start_gateway fsync "$WORK" '.journal=false'
"$BUILD/tests/mock_backend" --protocol cog --port 0 --port-file "$WORK/mock.port" --slots 1024 \
	--delay-ms 1 --name bench --max-seconds 3600 > "$WORK/mock.log" 2>&1 &
pids+=($!)
for i in $(seq 1 100); do [ -s "$WORK/mock.port" ] && break; sleep 0.1; done
MOCK="http://127.0.0.1:$(cat "$WORK/mock.port")"

register() { # gateway url
	curl -s -o /dev/null -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
		--data "{\"id\":\"fast\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"$MOCK/predictions\",\"health\":\"$MOCK/health-check\"},\"capabilities\":{\"maxConcurrent\":1024}}" \
		"$1/api/v2/servers"
}

measure floor "$URL_disk/floor"
measure "create queued (disk)" "$URL_disk/api/v2/tasks" -s "$here/post_task.lua"
measure "create queued (tmpfs)" "$URL_tmpfs/api/v2/tasks" -s "$here/post_task.lua"
measure "create queued (disk, fsync)" "$URL_fsync/api/v2/tasks" -s "$here/post_task.lua"
# The queued tasks would be drained onto the new server: start from fresh trees.
id=$(curl -s -H "Authorization: Bearer $CLIENT" "$URL_disk/api/v2/tasks?limit=1" | jq -r '.items[0].id')
measure "get task (disk)" "$URL_disk/api/v2/tasks/$id" -s "$here/get_auth.lua"
for g in disk tmpfs; do
	eval "st=\$STATE_$g"
	rm -rf "$st/queue" && mkdir "$st/queue"
done
register "$URL_disk"
register "$URL_tmpfs"
measure "create dispatched (disk)" "$URL_disk/api/v2/tasks" -s "$here/post_task.lua"
measure "create dispatched (tmpfs)" "$URL_tmpfs/api/v2/tasks" -s "$here/post_task.lua"

floor=${RPS[floor]}
printf '\n%-28s %10s %9s %9s %8s %8s\n' "route" "req/s" "p50 ms" "p99 ms" "ratio" "target"
for label in floor "create queued (disk)" "create queued (tmpfs)" "create queued (disk, fsync)" \
	"create dispatched (disk)" \
	"create dispatched (tmpfs)" "get task (disk)"; do
	case $label in
	"create queued (disk, fsync)") target=- ;;
	"create queued"*) target=0.50 ;;
	"create dispatched"*) target=0.25 ;;
	"get task"*) target=0.70 ;;
	*) target=- ;;
	esac
	ratio=$(awk -v a="${RPS[$label]:-0}" -v b="$floor" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')
	printf '%-28s %10s %9s %9s %8s %8s\n' "$label" "${RPS[$label]:-?}" "${P50[$label]:-?}" \
		"${P99[$label]:-?}" "$ratio" "$target"
done
echo
[ "${ONLY:-}" = core ] && exit 0
[ -x "$here/lb_servers.sh" ] && BUILD=$BUILD bash "$here/lb_servers.sh"
[ -x "$here/sweep_cost.sh" ] && BUILD=$BUILD bash "$here/sweep_cost.sh"
[ -x "$here/workmodel.sh" ] && BUILD=$BUILD bash "$here/workmodel.sh"
[ -x "$here/scale.sh" ] && BUILD=$BUILD bash "$here/scale.sh"
echo
"$BUILD/tests/journal_claim" 5000 200
exit 0
