#!/usr/bin/env bash
# 200 tasks over 3 servers with maxConcurrent 2, through lighttpd with 4 FastCGI
# processes: the capacity check and the load increment happen together, so no
# backend ever runs more than 2 at once; the queue drains as slots free; every task
# completes once; every ledger returns to 0; every state file parses.
# The mocks have 10 slots each (so a mock never refuses: any excess would show in
# its maxActive) and take 100 ms per prediction; they start held (see below).
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

TASKS=${TASKS:-200}
LOOPS=${LOOPS:-8}
WAIT_SECONDS=${WAIT_SECONDS:-120}


start_taskgate 4 || { not_ok "lighttpd with taskgate (4 processes) starts"; finish; exit 1; }
ok "lighttpd with taskgate (4 processes) starts"
for m in m1 m2 m3; do
	start_mock "$m" --protocol cog --slots 10 --delay-ms 100 || not_ok "mock $m starts"
	p=$(mport "$m")
	admin POST /api/v2/servers "{\"id\":\"s-$m\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$p/predictions\",\"health\":\"http://127.0.0.1:$p/health-check\"},\"capabilities\":{\"maxConcurrent\":2}}"
	expect_eq "register s-$m (maxConcurrent 2)" "$STATUS" 201
done

# submitter K: tasks K, K+LOOPS, K+2*LOOPS, ... (503 + Retry-After is retried, at
# most 5 times); prints "<status> <id> <i>" per task
submitter() {
	local k=$1 i try code
	for ((i = k; i <= TASKS; i += LOOPS)); do
		for try in 1 2 3 4 5 6; do
			code=$(curl -s -m 30 -o "$WORK/sub.$k.body" -w '%{http_code}' -X POST \
				-H "Authorization: Bearer $CLIENT" -H 'Content-Type: application/json' \
				--data-binary "{\"model\":\"load\",\"input\":{\"i\":$i}}" "$BASE/api/v2/tasks")
			[ "$code" = 503 ] && [ "$try" -lt 6 ] && { echo "retry $i" >> "$WORK/sub.$k.503"; sleep 0.2; continue; }
			break
		done
		echo "$code $(grep -o '"id":"[^"]*"' "$WORK/sub.$k.body" | head -n 1 | cut -d'"' -f4) $i"
	done > "$WORK/sub.$k.out"
}
# The mocks hold their first predictions until the queue is 10 deep, so the
# queue builds however fast this machine dispatches; then they run freely while
# the rest is still being submitted.
for m in m1 m2 m3; do
	check "mock $m holds running predictions" mock_control "$m" '{"hold":true}'
done
held=1
release() {
	for m in m1 m2 m3; do check "mock $m lets them end" mock_control "$m" '{"hold":false}'; done
	held=0
}
t0=$SECONDS
subs=()
for k in $(seq 1 $LOOPS); do
	submitter "$k" &
	subs+=($!)
done
# While they submit, watch the queue depth and the ledgers (bounded).
maxq=0 over=0
for i in $(seq 1 600); do
	q=$(find "$STATE/queue" -type f ! -name ".*" 2> /dev/null | wc -l)
	[ "$q" -gt "$maxq" ] && maxq=$q
	[ $held = 1 ] && [ "$q" -ge 10 ] && release
	for s in s-m1 s-m2 s-m3; do
		l=$(jq -r .currentLoad "$STATE/servers/$s.json" 2> /dev/null)
		[ -n "$l" ] && [ "$l" -gt 2 ] && over=$((over + 1))
	done
	running=0
	for p in "${subs[@]}"; do kill -0 "$p" 2> /dev/null && running=1; done
	[ $running = 0 ] && break
	sleep 0.1
done
wait "${subs[@]}"
[ $held = 1 ] && release
cat "$WORK"/sub.*.out > "$WORK/submitted"
echo "# submitted in $((SECONDS - t0)) s; 503 retries: $(cat "$WORK"/sub.*.503 2> /dev/null | wc -l); deepest queue seen: $maxq"
expect_eq "all $TASKS POSTs answered 202" "$(grep -c '^202 ' "$WORK/submitted")" "$TASKS"
expect_eq "$TASKS distinct task ids" "$(awk '$1 == 202 { print $2 }' "$WORK/submitted" | sort -u | wc -l)" "$TASKS"
check "tasks had to wait in the queue (deepest $maxq)" test "$maxq" -ge 10
expect_eq "no server's stored currentLoad was ever seen above 2" "$over" 0

# wait (bounded) until all are COMPLETED
done_n=0
deadline=$((SECONDS + WAIT_SECONDS))
while [ $SECONDS -lt $deadline ]; do
	client GET "/api/v2/tasks?status=COMPLETED&limit=200"
	done_n=$(jget '.items | length')
	[ "$done_n" -ge "$TASKS" ] && break
	sleep 0.5
done
echo "# all completed after $((SECONDS - t0)) s"
expect_eq "all $TASKS tasks COMPLETED within $WAIT_SECONDS s" "$done_n" "$TASKS"
client GET '/api/v2/tasks?limit=200'
echo "$BODY" > "$WORK/all.json"
extra=0
if [ "$(jq -r .nextCursor "$WORK/all.json")" != null ]; then
	client GET "/api/v2/tasks?limit=200&cursor=$(jq -r '.nextCursor | @uri' "$WORK/all.json")"
	extra=$(jget '.items | length')
fi
expect_eq "exactly $TASKS tasks are stored" "$(jq '.items | length' "$WORK/all.json") $extra" "$TASKS 0"
expect_eq "every stored task is COMPLETED" "$(jq '[.items[] | select(.status != "COMPLETED")] | length' "$WORK/all.json")" 0
expect_eq "every task completed on its first attempt" "$(jq '[.items[] | select(.attempts != 1)] | length' "$WORK/all.json")" 0
expect_eq "every result echoes its own input" \
	"$(jq '[.items[] | select(.result.output.echo.i != .request.input.i)] | length' "$WORK/all.json")" 0
expect_eq "the submitted ids are exactly the stored ones" \
	"$(awk '$1 == 202 { print $2 }' "$WORK/submitted" | sort | sha256sum)" \
	"$(jq -r '.items[].id' "$WORK/all.json" | sort | sha256sum)"

sum=0
for m in m1 m2 m3; do
	mock "$m" /__stats > "$WORK/$m.stats"
	echo "# $m: $(jq -c '{maxActive, completed, received, rejected, webhooksDelivered, webhooksFailed}' "$WORK/$m.stats")"
	max=$(jq .maxActive "$WORK/$m.stats")
	check "mock $m never ran more than 2 at once (maxActive $max)" test "$max" -le 2
	check "mock $m ran tasks 2 at a time at some point" test "$max" -eq 2
	expect_eq "mock $m refused nothing" "$(jq .rejected "$WORK/$m.stats")" 0
	c=$(jq .completed "$WORK/$m.stats")
	check "mock $m took a share of the work ($c)" test "$c" -ge 10
	expect_eq "mock $m received exactly the predictions it completed" "$(jq .received "$WORK/$m.stats")" "$c"
	expect_eq "mock $m delivered every webhook" "$(jq .webhooksFailed "$WORK/$m.stats")" 0
	sum=$((sum + c))
	client GET "/api/v2/servers/s-$m"
	expect_eq "s-$m currentLoad is back to 0" "$(jget .currentLoad)" 0
	expect_eq "s-$m is still online" "$(jget .status)" online
	expect_eq "the tasks of s-$m are the ones mock $m completed" \
		"$(jq --arg s "s-$m" '[.items[] | select(.serverId == $s)] | length' "$WORK/all.json")" "$c"
done
expect_eq "the mocks completed $TASKS predictions in all (each task once)" "$sum" "$TASKS"
expect_eq "the queue index is empty" "$(find "$STATE/queue" -type f ! -name ".*" | wc -l)" 0
expect_eq "the active index is empty" "$(find "$STATE/active" -type f ! -name ".*" | wc -l)" 0
check "nothing was quarantined" test -z "$(ls -A "$STATE/corrupt" 2> /dev/null)"
check "every JSON file of the state tree parses" all_state_parses
finish
