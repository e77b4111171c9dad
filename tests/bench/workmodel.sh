#!/usr/bin/env bash
# The work model's figures (issue: nothing waits behind a request's after-work), each
# pair measured side by side in one run on 127.0.0.1, with its ratio:
#   dispatch   tasks completed per second by a fast async Cog mock: fed by taskgate
#              (wrk creating tasks) against the same mock driven directly (wrk
#              PUTting predictions whose webhook is the do-nothing floor program under
#              the same lighttpd); target >= 0.5
#   slow PUT   creates answered per second while the mock's PUT takes 500 ms, against
#              the same with a fast PUT; target >= 0.8 (within 20%)
#   GET p99    GET /api/v2/tasks/:id p99 while 32 tasks sit on a backend whose PUT
#              hangs, against the same with none; target <= 2
# Environment: BUILD, DURATION (5), CONNS (8), PROCS (4).
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
WORK=$(mktemp -d /tmp/taskgate-bench-work.XXXXXX)
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

start_gateway() { # name
	local name=$1 dir="$WORK/$1" state="$WORK/$1/state" port
	port=$(free_port)
	mkdir -p "$dir/www"
	STATE_DIR="$state" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="http://127.0.0.1:$port" \
		"$BUILD/taskgate.fcgi" init > /dev/null
	jq '.piggyback.enabled=false' "$state/config.json" > "$state/c.new" && mv "$state/c.new" "$state/config.json"
	cat > "$dir/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$dir/www"
server.errorlog = "$dir/error.log"
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
}

start_mock() { # name args...
	local name=$1
	shift
	"$BUILD/tests/mock_backend" --protocol cog --port 0 --port-file "$WORK/$name.port" \
		--name "$name" --max-seconds 3600 "$@" > "$WORK/$name.log" 2>&1 &
	pids+=($!)
	local i
	for i in $(seq 1 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.1; done
	eval "MOCK_$name=http://127.0.0.1:$(cat "$WORK/$name.port")"
}

register() { # gateway-url mock-url maxConcurrent
	curl -s -o /dev/null -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
		--data "{\"id\":\"s\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"$2/predictions\",\"health\":\"$2/health-check\"},\"capabilities\":{\"maxConcurrent\":$3}}" \
		"$1/api/v2/servers"
}

completed() { curl -s "$1/__stats" | jq .completed; }

wrk_rps() { # url args...: requests/s of one wrk run
	local url=$1
	shift
	wrk -t2 -c"$CONNS" -d"${DURATION}s" "$@" "$url" 2>&1 | awk '/^Requests\/sec/ { print $2 }'
}
wrk_p99() { # url args...: p99 (ms) of one wrk run
	local url=$1 v
	shift
	v=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" 2>&1 | awk '$1 == "99%" { print $2 }')
	awk -v v="$v" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'
}
per_s() { awk -v a="$1" -v b="$2" -v t="$DURATION" 'BEGIN { printf "%.1f", (b - a) / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

for tool in wrk lighttpd curl jq python3; do
	command -v "$tool" > /dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
start_gateway fast
start_gateway slow
start_gateway hang
start_mock direct --slots 1024 --delay-ms 1
start_mock fed --slots 1024 --delay-ms 1
start_mock slowput --slots 1024 --delay-ms 1 --accept-delay-ms 500
start_mock hung --slots 1024 --mode hang

# dispatch: direct, then through taskgate (each mock counts its own completions)
c0=$(completed "$MOCK_direct")
WEBHOOK="$URL_fast/floor" wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$here/put_direct.lua" \
	"$MOCK_direct" > /dev/null 2>&1
c1=$(completed "$MOCK_direct")
direct=$(per_s "$c0" "$c1")
register "$URL_fast" "$MOCK_fed" 1024
c0=$(completed "$MOCK_fed")
fast_creates=$(wrk_rps "$URL_fast/api/v2/tasks" -s "$here/post_task.lua")
c1=$(completed "$MOCK_fed")
fed=$(per_s "$c0" "$c1")

# slow PUT: creates answered while each PUT takes 500 ms
register "$URL_slow" "$MOCK_slowput" 1024
slow_creates=$(wrk_rps "$URL_slow/api/v2/tasks" -s "$here/post_task.lua")

# GET p99: none hanging, then 32 tasks on a backend that never answers its PUT
id=$(curl -s -H "Authorization: Bearer $CLIENT" -H 'Content-Type: application/json' \
	-d '{"model":"bench","input":{}}' "$URL_hang/api/v2/tasks" | jq -r .id)
calm=$(wrk_p99 "$URL_hang/api/v2/tasks/$id" -s "$here/get_auth.lua")
register "$URL_hang" "$MOCK_hung" 32
for i in $(seq 1 32); do
	curl -s -o /dev/null -H "Authorization: Bearer $CLIENT" -H 'Content-Type: application/json' \
		-d '{"model":"bench","input":{}}' "$URL_hang/api/v2/tasks"
done
sleep 0.5
hung=$(wrk_p99 "$URL_hang/api/v2/tasks/$id" -s "$here/get_auth.lua")

printf '\n%-44s %10s %10s %7s %s\n' measure taskgate baseline ratio target
printf '%-44s %10s %10s %7s %s\n' "dispatch: completions/s, fed vs direct" "$fed" "$direct" "$(ratio "$fed" "$direct")" ">= 0.5"
printf '%-44s %10s %10s %7s %s\n' "creates/s, PUT 500 ms vs fast PUT" "$slow_creates" "$fast_creates" "$(ratio "$slow_creates" "$fast_creates")" ">= 0.8"
printf '%-44s %10s %10s %7s %s\n' "GET p99 ms, 32 hanging vs none" "$hung" "$calm" "$(ratio "$hung" "$calm")" "<= 2"
