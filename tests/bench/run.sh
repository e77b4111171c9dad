#!/usr/bin/env bash
# make bench: throughput and latency of taskgate's hot routes, side by side with a
# do-nothing FastCGI responder (the floor) under the same lighttpd, in one run, on
# 127.0.0.1. Prints requests/s, p50 and p99 for each, and the ratio to the floor.
# Ratios, not absolute figures, are what compare across machines.
#
# Measured:
#   floor                      GET /floor (floor.fcgi)
#   create, queued             POST /api/v2/tasks, no server registered
#   create, dispatched         POST /api/v2/tasks to a fast async Cog mock
#   get                        GET /api/v2/tasks/:id
# Each on the state tree on disk (every acknowledged write made durable by the
# journal: one fdatasync per request) and, for the creates, again on tmpfs
# (/dev/shm), which shows taskgate's own CPU cost without the disk's flush
# latency; queued creation once more on disk with "journal": false (file and
# directory fsync'd for every write), which shows what the journal buys.
# Then tests/bench/lb_servers.sh (1/10/100 servers) and tests/bench/sweep_cost.sh.
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
WORK=$(mktemp -d /tmp/taskgate-bench.XXXXXX)
SHM=$(mktemp -d /dev/shm/taskgate-bench.XXXXXX)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_gateway NAME STATE_PARENT [JQ]: lighttpd with taskgate on / and the floor on
# /floor; JQ edits config.json.
start_gateway() {
	local name=$1 dir="$WORK/$1" state="$2/$1-state" port edit=${3:-.}
	port=$(free_port)
	mkdir -p "$dir/www"
	STATE_DIR="$state" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="http://127.0.0.1:$port" \
		"$BUILD/taskgate.fcgi" init > /dev/null
	# Bench runs measure request handling, not piggy-backed cron work.
	jq ".piggyback.enabled=false | $edit" "$state/config.json" > "$state/c.new" && mv "$state/c.new" "$state/config.json"
	cat > "$dir/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$dir/www"
server.errorlog = "$dir/error.log"
server.max-request-size = 1024
fastcgi.server = (
  "/floor" => (( "bin-path" => "$BUILD/tests/floor.fcgi", "socket" => "$dir/floor.sock",
                 "max-procs" => $PROCS, "check-local" => "disable" )),
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
	eval "STATE_$name=$state"
}

# measure LABEL URL [wrk args]: one wrk run; prints and records rps, p50, p99.
declare -A RPS P50 P99
ms() { # wrk latency ("1.23ms", "850.00us", "1.10s") in milliseconds
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'
}
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

for tool in wrk lighttpd curl jq python3; do
	command -v "$tool" > /dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done

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
exit 0
