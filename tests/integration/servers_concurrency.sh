#!/usr/bin/env bash
# Concurrency of the server registry through lighttpd with 4 FastCGI processes:
#  (a) 20 parallel registrations of one id: one 201, nineteen 409;
#  (b) two writers racing on one server (maintenance toggles vs heartbeats): no
#      5xx but 503 + Retry-After, and no lost update;
#  (c) kill -9 of the FastCGI processes in the middle of a write storm: every file
#      still parses and taskgate serves again;
#  (d) DELETE of a server with currentLoad > 0 is 409 unless ?force=1.
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

PROGRAM="$BUILD/taskgate.fcgi"
STORM_SECONDS=${STORM_SECONDS:-10}
KILL_ROUNDS=10

# reg_body ID [NAME]: a valid registration.
reg_body() {
	printf '{"id":"%s","name":"%s","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"},"capabilities":{"maxConcurrent":2}}' \
		"$1" "${2:-$1}"
}

# raw METHOD PATH [BODY]: one admin request; prints "<status> ra=<Retry-After>
# ct=<Content-Type>" and leaves the body in the file named by $OUT.
raw() {
	local data=()
	[ $# -ge 3 ] && data=(--data-binary "$3" -H 'Content-Type: application/json')
	curl -s -m 10 -o "${OUT:-$WORK/raw.out}" \
		-w '%{http_code} ra=%header{retry-after} ct=%{content_type}\n' \
		-X "$1" -H "Authorization: Bearer $ADMIN" "${data[@]}" "$BASE$2"
}

# jqe ARGS...: jq -e, quietly (for check)

# lighttpd_pid: the lighttpd this script started (LPID, set after each start).
lighttpd_pid() { echo "$LPID"; }

# our_fcgi_pids: the FastCGI children of OUR lighttpd whose command line is OUR
# build's program; never any other process on the machine.
our_fcgi_pids() {
	local lp p cmd
	lp=$(lighttpd_pid)
	for p in $(pgrep -P "$lp" 2> /dev/null); do
		cmd=$({ tr '\0' ' ' < "/proc/$p/cmdline"; } 2> /dev/null) || continue
		[[ $cmd == "$PROGRAM"* ]] && echo "$p"
	done
}

restart_lighttpd() {
	local lp
	lp=$(lighttpd_pid)
	kill "$lp" 2> /dev/null
	for _ in $(seq 1 50); do kill -0 "$lp" 2> /dev/null || break; sleep 0.1; done
	kill -9 "$lp" 2> /dev/null
	lighttpd -D -f "$WORK/lighttpd/lighttpd.conf" >> "$WORK/lighttpd/stderr.log" 2>&1 &
	LPID=$!
	_pids+=("$LPID")
	wait_for curl -sf "$BASE/api/v2/health"
}

start_taskgate 4 || { not_ok "lighttpd with taskgate (4 processes) starts"; finish; exit 1; }
ok "lighttpd with taskgate (4 processes) starts"
LPID=${_pids[${#_pids[@]} - 1]}
check "the lighttpd started is ours (pid $LPID)" grep -q "$WORK/lighttpd/lighttpd.conf" "/proc/$LPID/cmdline"
n=$(our_fcgi_pids | wc -l)
expect_eq "lighttpd runs 4 FastCGI processes of this build" "$n" 4

# ---------------------------------------------------------------- (a)
a_pids=()
for i in $(seq 1 20); do
	(OUT="$WORK/a.$i.body" raw POST /api/v2/servers "$(reg_body race-1 "racer-$i")" > "$WORK/a.$i.status") &
	a_pids+=($!)
done
_pids+=("${a_pids[@]}")
wait "${a_pids[@]}"
n201=$(cat "$WORK"/a.*.status | grep -c '^201 ' || true)
n409=$(cat "$WORK"/a.*.status | grep -c '^409 ' || true)
expect_eq "(a) 20 parallel registrations of one id: exactly one 201" "$n201" 1
expect_eq "(a) ... and nineteen 409" "$n409" 19
winner=$(grep -l '^201 ' "$WORK"/a.*.status | head -n 1 | sed 's/.*a\.\([0-9]*\)\.status/\1/')
expect_eq "(a) the stored server is the one the 201 answered" \
	"$(jq -r .name "$STATE/servers/race-1.json" 2> /dev/null)" "racer-${winner:-none}"
check "(a) every 409 names the id field" bash -c \
	"for f in '$WORK'/a.*.status; do grep -q '^409' \$f || continue; b=\${f%.status}.body; jq -e '.field == \"/id\"' \$b > /dev/null || exit 1; done"
check "(a) one file for race-1 and no temp file left" \
	test "$(find "$STATE/servers" -name '*race-1*' | wc -l)" -eq 1
check "(a) state parses" all_state_parses

# ---------------------------------------------------------------- (b)
OUT="$WORK/b.reg" raw POST /api/v2/servers "$(reg_body duel-1)" > "$WORK/b.reg.status"
check "(b) register duel-1" grep -q '^201 ' "$WORK/b.reg.status"
# Out of maintenance it shows its health: starting (nothing answers its health
# endpoint, so it never passed a check), and no writer here changes that.
up=$(jq -r .status "$WORK/b.reg")
expect_eq "(b) duel-1 is registered starting" "$up" starting
# Each writer is one curl run over a keep-alive connection (so the requests come
# fast enough to overlap), and reads back after each write: the maintenance writer
# GETs the server after each PUT (it must show the value just written, as only this
# writer changes it); the heartbeat writer GETs after each POST (lastHeartbeat must
# be at least the one just answered). A lost update breaks one of these.
mkdir -p "$WORK/b"
AUTH=(-H "Authorization: Bearer $ADMIN")
JSON=(-H 'Content-Type: application/json')
W='%{http_code} ra=%header{retry-after}\n'
m_args=() h_args=()
for i in $(seq 1 100); do
	if [ $((i % 2)) = 1 ]; then v=true; else v=false; fi
	echo "$v" > "$WORK/b/m.$i.want"
	m_args+=(-s -X PUT "${AUTH[@]}" "${JSON[@]}" --data-binary "{\"enabled\":$v}"
		-o "$WORK/b/m.$i.put" -w "m $i $W" "$BASE/api/v2/servers/duel-1/maintenance" --next
		-s "${AUTH[@]}" -o "$WORK/b/m.$i.get" -w "mg $i $W" "$BASE/api/v2/servers/duel-1" --next)
	h_args+=(-s -X POST "${AUTH[@]}" "${JSON[@]}" --data-binary '{}'
		-o "$WORK/b/h.$i.post" -w "h $i $W" "$BASE/api/v2/servers/duel-1/heartbeat" --next
		-s "${AUTH[@]}" -o "$WORK/b/h.$i.get" -w "hg $i $W" "$BASE/api/v2/servers/duel-1" --next)
done
unset 'm_args[${#m_args[@]}-1]' 'h_args[${#h_args[@]}-1]' # the trailing --next
timeout 60 curl -m 20 "${m_args[@]}" > "$WORK/b.maint" 2>&1 &
pm=$!
timeout 60 curl -m 20 "${h_args[@]}" > "$WORK/b.hb" 2>&1 &
ph=$!
_pids+=("$pm" "$ph")
wait "$pm" "$ph"

expect_eq "(b) the maintenance writer made 100 PUTs" "$(grep -c '^m ' "$WORK/b.maint")" 100
expect_eq "(b) the heartbeat writer made 100 POSTs" "$(grep -c '^h ' "$WORK/b.hb")" 100
bad5=$(cat "$WORK/b.maint" "$WORK/b.hb" | awk '$3 ~ /^5/ && !($3 == 503 && $4 ~ /^ra=[0-9]+$/)' | wc -l)
expect_eq "(b) no 5xx other than 503 with Retry-After" "$bad5" 0
other=$(cat "$WORK/b.maint" "$WORK/b.hb" | awk '$3 != 200 && $3 != 503' | wc -l)
expect_eq "(b) every answer is 200 or 503" "$other" 0
n503=$(cat "$WORK/b.maint" "$WORK/b.hb" | awk '$3 == 503' | wc -l)
echo "# (b) 503 answers: $n503"

# Walk the maintenance writer's log: last_m is the last value a 200 PUT wrote.
m_wrong=0 m_lost=0 last_m=""
while read -r kind i code _; do
	[ "$code" = 200 ] || continue
	case $kind in
	m)
		want=$(cat "$WORK/b/m.$i.want")
		[ "$(jq -r .status "$WORK/b/m.$i.put")" = "$([ "$want" = true ] && echo maintenance || echo "$up")" ] ||
			m_wrong=$((m_wrong + 1))
		last_m=$want ;;
	mg)
		[ -z "$last_m" ] && continue
		if [ "$(jq -r .status "$WORK/b/m.$i.get")" != "$([ "$last_m" = true ] && echo maintenance || echo "$up")" ]; then
			m_lost=$((m_lost + 1))
			[ $m_lost -le 5 ] && echo "# GET after PUT #$i (enabled=$last_m) shows $(jq -r .status "$WORK/b/m.$i.get")"
		fi ;;
	esac
done < "$WORK/b.maint"
expect_eq "(b) each maintenance answer shows the value it wrote" "$m_wrong" 0
expect_eq "(b) no maintenance write was lost (GET after each PUT)" "$m_lost" 0

h_lost=0 h_back=0 last_hb=0
while read -r kind i code _; do
	[ "$code" = 200 ] || continue
	case $kind in
	h)
		hb=$(jq -r .lastHeartbeat "$WORK/b/h.$i.post")
		[ "$hb" -ge "$last_hb" ] || h_back=$((h_back + 1))
		last_hb=$hb ;;
	hg)
		got=$(jq -r .lastHeartbeat "$WORK/b/h.$i.get")
		if [ "$got" -lt "$last_hb" ]; then
			h_lost=$((h_lost + 1))
			[ $h_lost -le 5 ] && echo "# GET after heartbeat #$i shows lastHeartbeat $got < $last_hb"
		fi ;;
	esac
done < "$WORK/b.hb"
expect_eq "(b) heartbeat answers never go back in time" "$h_back" 0
expect_eq "(b) no heartbeat was lost (GET after each POST)" "$h_lost" 0

check "(b) the final document parses" jqe . "$STATE/servers/duel-1.json"
expect_eq "(b) final maintenance is the last value written" \
	"$(jq -r .maintenance "$STATE/servers/duel-1.json")" "${last_m:-none}"
expect_eq "(b) final lastHeartbeat is the last heartbeat's" \
	"$(jq -r .lastHeartbeat "$STATE/servers/duel-1.json")" "$last_hb"
client GET /api/v2/servers/duel-1
expect_eq "(b) GET agrees on lastHeartbeat" "$(jget .lastHeartbeat)" "$last_hb"
check "(b) nothing was quarantined" test -z "$(ls -A "$STATE/corrupt")"

# ---------------------------------------------------------------- (d)
# (before the storm, so a kill cannot get in its way)
OUT="$WORK/d.reg" raw POST /api/v2/servers "$(reg_body busy-1)" > "$WORK/d.status"
check "(d) register busy-1" grep -q '^201 ' "$WORK/d.status"
f="$STATE/servers/busy-1.json"
jq -c '.currentLoad = 1' "$f" > "$STATE/servers/.busy-1.json.by-test.tmp" &&
	mv "$STATE/servers/.busy-1.json.by-test.tmp" "$f"
expect_eq "(d) busy-1 now has currentLoad 1" "$(jq -r .currentLoad "$f")" 1
h0=$(sha256sum < "$f")
admin DELETE /api/v2/servers/busy-1
expect_eq "(d) DELETE of a server with running tasks is 409" "$STATUS" 409
expect_eq "(d) the 409 is a problem document" "$(jget .status)" 409
admin DELETE '/api/v2/servers/busy-1?force=0'
expect_eq "(d) ?force=0 is no force: 409" "$STATUS" 409
admin DELETE '/api/v2/servers/busy-1?force'
expect_eq "(d) a bare ?force is no force: 409" "$STATUS" 409
check "(d) the refused deletes left the file as it was" test "$(sha256sum < "$f")" == "$h0"
client GET /api/v2/servers/busy-1
expect_eq "(d) busy-1 still answers, currentLoad 1" "$STATUS $(jget .currentLoad)" "200 1"
admin DELETE '/api/v2/servers/busy-1?force=1'
expect_eq "(d) DELETE ?force=1 is 204" "$STATUS" 204
check "(d) the file is gone" test ! -e "$f"
client GET /api/v2/servers/busy-1
expect_eq "(d) busy-1 is 404 afterwards" "$STATUS" 404
OUT="$WORK/d.reg2" raw POST /api/v2/servers "$(reg_body busy-2)" > /dev/null
jq -c '.currentLoad = 3' "$STATE/servers/busy-2.json" > "$STATE/servers/.busy-2.json.by-test.tmp" &&
	mv "$STATE/servers/.busy-2.json.by-test.tmp" "$STATE/servers/busy-2.json"
admin DELETE '/api/v2/servers/busy-2?force=true'
expect_eq "(d) DELETE ?force=true is 204 too" "$STATUS" 204
OUT="$WORK/d.reg3" raw POST /api/v2/servers "$(reg_body idle-1)" > /dev/null
admin DELETE /api/v2/servers/idle-1
expect_eq "(d) DELETE of an idle server needs no force: 204" "$STATUS" 204

# ---------------------------------------------------------------- (c)
for i in 1 2 3; do OUT=/dev/null raw POST /api/v2/servers "$(reg_body "storm-m-$i")" > /dev/null; done
# Every round also aims at one request known to be in progress: a create with
# Prefer: wait for a task that a held backend never ends holds its process, and
# holds a wait slot (locks/wait.<n>, an flock) while it does.
start_mock held --protocol cog --slots 64 --delay-ms 100 || not_ok "(c) mock held starts"
check "(c) mock held holds running predictions" mock_control held '{"hold":true}'
admin POST /api/v2/servers "{\"id\":\"storm-held\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$MOCK_PORT_held/predictions\",\"health\":\"http://127.0.0.1:$MOCK_PORT_held/health-check\"},\"capabilities\":{\"maxConcurrent\":64,\"supportedModels\":[\"held\"]}}"
expect_eq "(c) register storm-held" "$STATUS" 201
a_wait_slot_is_held() {
	local f
	for f in "$STATE"/locks/wait.*; do
		[ -e "$f" ] && ! flock -n "$f" true && return 0
	done
	return 1
}
# The storm runs until the killer is done (the stop file) and never longer than
# 2 * STORM_SECONDS + 5 s, nor more than 3000 iterations per loop.
STOP="$WORK/storm.stop"
storm_end=$((SECONDS + 2 * STORM_SECONDS + 5))
# storm NAME: one bounded background write loop.
storm() {
	local name=$1 i
	for i in $(seq 1 3000); do
		[ -e "$STOP" ] || [ $SECONDS -ge $storm_end ] && break
		case $name in
		reg) OUT=/dev/null raw POST /api/v2/servers "$(reg_body "storm-r-$i")" ;;
		maint) OUT=/dev/null raw PUT "/api/v2/servers/storm-m-$((i % 3 + 1))/maintenance" \
			"{\"enabled\":$([ $((i % 2)) = 0 ] && echo true || echo false)}" ;;
		del) OUT=/dev/null raw POST /api/v2/servers "$(reg_body "storm-d-$i")"
			OUT=/dev/null raw DELETE "/api/v2/servers/storm-d-$i" ;;
		hb) OUT=/dev/null raw POST "/api/v2/servers/storm-m-$((i % 3 + 1))/heartbeat" '{}' ;;
		esac
	done > "$WORK/c.$name" 2>&1
}
storm_pids=()
for name in reg maint del hb; do
	storm "$name" &
	storm_pids+=($!)
done
_pids+=("${storm_pids[@]}")

killed=0 restarts=0 rounds=0
kill_end=$((SECONDS + 2 * STORM_SECONDS)) # lighttpd disables a dead backend for 1 s
sleep 0.5
for round in $(seq 1 $KILL_ROUNDS); do
	[ $SECONDS -ge $kill_end ] && break
	sleep 0.$((RANDOM % 4 + 2))
	curl -s -m 30 -o /dev/null -X POST -H "Authorization: Bearer $CLIENT" \
		-H 'Content-Type: application/json' -H 'Prefer: wait=20' \
		--data-binary "{\"model\":\"held\",\"input\":{\"round\":$round}}" "$BASE/api/v2/tasks" &
	_pids+=($!)
	wait_for a_wait_slot_is_held || echo "# (c) round $round: no request was seen waiting"
	victims=$(our_fcgi_pids)
	for p in $victims; do kill -9 "$p" 2> /dev/null && killed=$((killed + 1)); done
	rounds=$((rounds + 1))
	# lighttpd respawns its bin-path children; if it did not, restart it.
	if ! wait_for bash -c "[ \$(pgrep -P $(lighttpd_pid) | wc -l) -ge 1 ]" ||
		! wait_for curl -sf -o /dev/null -m 2 "$BASE/api/v2/health"; then
		restart_lighttpd && restarts=$((restarts + 1))
	fi
done
touch "$STOP"
wait "${storm_pids[@]}"
echo "# (c) kill rounds: $rounds, processes killed: $killed, lighttpd restarts: $restarts"
check "(c) $KILL_ROUNDS kill rounds ran during the storm" test "$rounds" -eq $KILL_ROUNDS
check "(c) every round killed FastCGI processes ($killed in all)" test "$killed" -ge "$rounds"
total=$(cat "$WORK"/c.* | wc -l)
echo "# (c) storm requests: $total; statuses: $(cut -d' ' -f1 "$WORK"/c.* | sort | uniq -c | tr -s ' \n' ' ')"
check "(c) the storm made requests ($total)" test "$total" -ge 40
check "(c) the storm wrote while processes died (some 2xx answers)" \
	test "$(cut -d' ' -f1 "$WORK"/c.* | grep -c '^2')" -ge 10
# lighttpd reports a backend that died with a request in flight.
inflight=$(grep -c 'response not received, request sent\|unexpected end-of-file' "$WORK/lighttpd/error.log" || true)
echo "# (c) requests in flight when their process was killed: $inflight"
check "(c) some kills hit a process in the middle of a request" test "$inflight" -ge 1

check "(c) every JSON file of the state tree parses after the kills" all_state_parses
check "(c) nothing was quarantined" test -z "$(ls -A "$STATE/corrupt")"
check "(c) no empty file among the servers" test -z "$(find "$STATE/servers" -name '*.json' -empty)"
check "(c) config.json survived" jqe '.adminToken | length > 0' "$STATE/config.json"

wait_for curl -sf "$BASE/api/v2/health"
anon GET /api/v2/health
expect_eq "(c) taskgate serves again: health 200" "$STATUS" 200
expect_eq "(c) ... with 4 FastCGI processes of this build" "$(our_fcgi_pids | wc -l)" 4
client GET /api/v2/servers
expect_eq "(c) the list answers 200" "$STATUS" 200
files=$(find "$STATE/servers" -maxdepth 1 -name '*.json' ! -name '.*' | wc -l)
expect_eq "(c) the list has every server file" "$(jget .count)" "$files"
unreadable=0
for id in $(jget '.items[].id'); do
	client GET "/api/v2/servers/$id"
	[ "$STATUS" = 200 ] || unreadable=$((unreadable + 1))
done
expect_eq "(c) every listed server answers GET 200" "$unreadable" 0
admin PUT /api/v2/servers/storm-m-1/maintenance '{"enabled":true}'
expect_eq "(c) a write after the kills is 200 (no lock left held)" "$STATUS" 200
admin POST /api/v2/servers/storm-m-1/heartbeat '{}'
expect_eq "(c) a heartbeat after the kills is 200" "$STATUS" 200
admin POST /api/v2/servers "$(reg_body after-storm)"
expect_eq "(c) a registration after the kills is 201" "$STATUS" 201
admin DELETE /api/v2/servers/after-storm
expect_eq "(c) a delete after the kills is 204" "$STATUS" 204
own500=$(cat "$WORK"/c.* | awk '$1 == 500 && $3 ~ /problem\+json/' | wc -l)
expect_eq "(c) taskgate itself never answered 500 in the storm" "$own500" 0
check "(c) state parses at the end" all_state_parses
finish
