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
#   linger     the dispatch figure again with workers.lingerMs 0 (a worker exits
#              as soon as a round finds nothing, so nearly every request forks
#              one), against the default: what lingering workers buy
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
. "$here/lib.sh"

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
	ms "$v"
}
per_s() { awk -v a="$1" -v b="$2" -v t="$DURATION" 'BEGIN { printf "%.1f", (b - a) / t }'; }

bench_need wrk lighttpd curl jq python3
bench_gateway fast "$WORK/fast-state"
bench_gateway slow "$WORK/slow-state"
bench_gateway hang "$WORK/hang-state"
bench_gateway nolinger "$WORK/nolinger-state" '.workers.lingerMs=0'
bench_mock direct --slots 1024 --delay-ms 1
bench_mock fed --slots 1024 --delay-ms 1
bench_mock fed0 --slots 1024 --delay-ms 1
bench_mock slowput --slots 1024 --delay-ms 1 --accept-delay-ms 500
bench_mock hung --slots 1024 --mode hang

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
register "$URL_nolinger" "$MOCK_fed0" 1024
c0=$(completed "$MOCK_fed0")
wrk_rps "$URL_nolinger/api/v2/tasks" -s "$here/post_task.lua" > /dev/null
c1=$(completed "$MOCK_fed0")
fed0=$(per_s "$c0" "$c1")

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
printf '%-44s %10s %10s %7s %s\n' "dispatch: completions/s, no linger vs linger" "$fed0" "$fed" "$(ratio "$fed0" "$fed")" "(linger kept for <= 0.5)"
