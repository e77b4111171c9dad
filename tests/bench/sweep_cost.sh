#!/usr/bin/env bash
# The sweep's cost must follow the active tasks, not the history: one state tree
# with ACTIVE processing tasks and no history, one with the same ACTIVE tasks plus
# FINISHED completed ones (default 1,000,000), and the same sweep timed on both,
# interleaved, REPEAT times each. Prints the medians and their ratio.
# Environment: BUILD, FINISHED, ACTIVE (1000), REPEAT (5).
set -u
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
FINISHED=${FINISHED:-1000000}
ACTIVE=${ACTIVE:-1000}
REPEAT=${REPEAT:-5}
WORK=$(mktemp -d /tmp/taskgate-bench-sweep.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

make_tree() { # dir finished
	STATE_DIR="$1" ADMIN_TOKEN=a-bench-token-000000 CLIENT_TOKEN=c-bench-token-000000 \
		"$BUILD/taskgate.fcgi" init > /dev/null
	# One server with room for every active task; no retention work (nothing is
	# old enough) and no health probes (the sweep does none).
	printf '{"id":"bench","name":"bench","protocol":"cog","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"},"capabilities":{"maxConcurrent":100000},"currentLoad":%d,"health":"online","maintenance":false,"registeredAt":%d,"lastHeartbeat":%d}' \
		"$ACTIVE" "$(date +%s%3N)" "$(date +%s%3N)" > "$1/servers/bench.json"
	python3 "$here/make_history.py" "$1" "$2" "$ACTIVE"
}

echo "sweep: building trees ($ACTIVE active; 0 and $FINISHED finished tasks)..."
t0=$(date +%s)
make_tree "$WORK/small" 0
make_tree "$WORK/big" "$FINISHED"
echo "sweep: trees built in $(( $(date +%s) - t0 )) s"

elapsed() { # the sweep's own measure of its run, from its summary line
	STATE_DIR="$1" "$BUILD/cron/taskgate-sweep" | sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p'
}
small=() big=()
for r in $(seq 1 "$REPEAT"); do
	small+=("$(elapsed "$WORK/small")")
	big+=("$(elapsed "$WORK/big")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ms=$(median "${small[@]}")
mb=$(median "${big[@]}")
echo "sweep: active=$ACTIVE finished=0 median_ms=$ms runs=${small[*]}"
echo "sweep: active=$ACTIVE finished=$FINISHED median_ms=$mb runs=${big[*]}"
awk -v a="$ms" -v b="$mb" 'BEGIN { printf "sweep: ratio big/small = %.2f (target: about 1)\n", (a > 0) ? b / a : 0 }'
