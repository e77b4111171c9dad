#!/usr/bin/env bash
# The LoadBalancer through lighttpd (2 FastCGI processes) with Cog mock backends of
# different speeds:
#  (a) config: auth, validation (problem+json naming the field), partial update
#  (b) weighted 3:1 over 40 tasks -> 30/10 (+-2): the shared smooth-WRR cursor is
#      exact across processes
#  (c) round-robin over 3 servers, 30 tasks -> 10/10/10 exactly
#  (d) switching the algorithm live takes effect on the very next task
#  (e) a full server is skipped; status says "full"
#  (f) maintenance drains: no new tasks, running ones finish; status says why
#  (g) status: offline since ..., model mismatch, slow start, distribution of the
#      last hour (getLoadDistribution) matching the tasks' servers
#  (h) response-time prefers the fast backend, still probes the slow one
#  (i) stickySession: one affinityKey, one server
#  (j) rebalance: admin only; rebuilds a drifted currentLoad and reports it
# Each phase uses its own model, so only its own servers are eligible.
. "$(dirname "$0")/../lib.sh"

# reg ID MOCK MODEL MAXC [WEIGHT]
reg() {
	local port
	port=$(mport "$2")
	admin POST /api/v2/servers "{\"id\":\"$1\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$port/predictions\",\"health\":\"http://127.0.0.1:$port/health-check\"},\"capabilities\":{\"maxConcurrent\":$4,\"supportedModels\":[\"$3\"]},\"weight\":${5:-1}}"
	[ "$STATUS" = 201 ]
}
lbconf() { admin PUT /api/v2/loadbalancer/config "$1"; [ "$STATUS" = 200 ]; }
# submit MODEL [EXTRA_JSON]: sets TID and TSERVER (the server it was placed on, or null)
submit() {
	client POST /api/v2/tasks "{\"model\":\"$1\",\"input\":{\"x\":1}${2:+,$2}}"
	TID=$(jget .id)
	TSERVER=$(jget .serverId)
}
# count_on SERVER: tasks ever placed on it (any status)
count_on() { client GET "/api/v2/tasks?serverId=$1&limit=200" && jget '.items | length'; }
within() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; } # VALUE LO HI
# jedit FILE JQ: rewrites a state file the way taskgate does (temp file + rename)
jedit() { jq "$2" "$1" > "$1.edit" && mv "$1.edit" "$1"; }
jqq() { jq -e "$@" > /dev/null 2>&1; } # quiet jq -e for checks
status_of() { # SERVER FILTER [QUERY]: a field of the server's entry in the LB status
	client GET "/api/v2/loadbalancer/status${3:-}"
	printf '%s' "$BODY" | jq -r --arg id "$1" ".servers[] | select(.id == \$id) | $2"
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
start_mock fast --protocol cog --slots 256 --delay-ms 20 || not_ok "fast mock starts"
start_mock fast2 --protocol cog --slots 256 --delay-ms 20 || not_ok "second fast mock starts"
start_mock slow --protocol cog --slots 256 --delay-ms 3000 || not_ok "slow mock starts"
start_mock slow2 --protocol cog --slots 256 --delay-ms 600 || not_ok "600 ms mock starts"
# No piggy-backed sweep or health run: they would repair on their own the drift and
# the offline status this test sets up by hand.
jedit "$STATE/config.json" '.piggyback = {"enabled": false}'

# ------------------------------------------------------------------ (a) configuration
anon GET /api/v2/loadbalancer/status
expect_eq "(a) status needs a token" "$STATUS" 401
client GET /api/v2/loadbalancer/status
expect_eq "(a) status with the client token" "$STATUS" 200
expect_eq "(a) the default algorithm is round-robin" "$(jget .algorithm)" round-robin
expect_eq "(a) defaults: maxRetries 3, sticky off, slow start 30 s" \
	"$(jget '[.config.maxRetries, .config.stickySession, .config.slowStartSeconds] | join(" ")')" "3 false 30"
client PUT /api/v2/loadbalancer/config '{"algorithm":"p2c"}'
expect_eq "(a) config needs the admin token" "$STATUS" 403
client POST /api/v2/loadbalancer/rebalance "{}"
expect_eq "(a) rebalance needs the admin token" "$STATUS" 403
admin PUT /api/v2/loadbalancer/config '{"algorithm":"fastest"}' -D "$WORK/h"
expect_eq "(a) an unknown algorithm is 400" "$STATUS" 400
expect_eq "(a) ... naming the field" "$(jget .field)" /algorithm
check "(a) ... as problem+json" grep -qi '^Content-Type: application/problem+json' "$WORK/h"
for bad in '{"maxRetries":-1}|maxRetries' '{"maxRetries":"3"}|maxRetries' \
	'{"stickySession":1}|stickySession' '{"slowStartSeconds":99999}|slowStartSeconds' \
	'{"healthCheckInterval":0}|healthCheckInterval' '{"algoritm":"p2c"}|algoritm'; do
	admin PUT /api/v2/loadbalancer/config "${bad%|*}"
	expect_eq "(a) ${bad%|*} is 400 naming ${bad#*|}" "$STATUS $(jget .field)" "400 /${bad#*|}"
done
admin PUT /api/v2/loadbalancer/config '[1]'
expect_eq "(a) a non-object body is 400" "$STATUS" 400
admin PUT /api/v2/loadbalancer/config '{"slowStartSeconds":0,"maxRetries":2}'
expect_eq "(a) a valid partial update is 200" "$STATUS" 200
expect_eq "(a) ... keeps the algorithm and sets the rest" \
	"$(jget '[.algorithm, .maxRetries, .slowStartSeconds] | join(" ")')" "round-robin 2 0"
check "(a) lb.json holds the configuration" jqq '.maxRetries == 2' "$STATE/lb.json"

# ------------------------------------------------------------------ (b) weighted 3:1
check "(b) register w3 (weight 3) and w1 (weight 1)" \
	eval 'reg w3 fast mw 100 3 && reg w1 fast2 mw 100 1'
check "(b) algorithm weighted" lbconf '{"algorithm":"weighted"}'
for i in $(seq 1 40); do submit mw; done
n3=$(count_on w3)
n1=$(count_on w1)
check "(b) 40 tasks split 3:1 -> w3 30+-2 (got $n3), w1 10+-2 (got $n1)" \
	eval 'within "$n3" 28 32 && within "$n1" 8 12'
check "(b) the cursor lives in lb-state.json, not lb.json" \
	eval 'jqq ".wrr.w3 != null" "$STATE/lb-state.json" && ! jqq ".wrr" "$STATE/lb.json"'

# ------------------------------------------------------------------ (c) round-robin
check "(c) register r1 r2 r3" eval 'reg r1 fast mr 100 && reg r2 fast mr 100 5 && reg r3 fast2 mr 100'
check "(c) algorithm round-robin" lbconf '{"algorithm":"round-robin"}'
for i in $(seq 1 30); do submit mr; done
expect_eq "(c) 30 tasks -> 10/10/10 (weights ignored)" \
	"$(count_on r1) $(count_on r2) $(count_on r3)" "10 10 10"

# ------------------------------------------------------------------ (d) live switch
check "(d) register big (weight 1000, slow) and small (weight 1)" \
	eval 'reg big slow md 100 1000 && reg small fast md 100 1'
check "(d) algorithm weighted" lbconf '{"algorithm":"weighted"}'
submit md
expect_eq "(d) weighted: the task goes to big" "$TSERVER" big
submit md
expect_eq "(d) weighted: the next one too" "$TSERVER" big
check "(d) switch to least-connections" lbconf '{"algorithm":"least-connections"}'
submit md
expect_eq "(d) the very next task goes to the idle server (big has 2 running)" "$TSERVER" small
check "(d) switch back to weighted" lbconf '{"algorithm":"weighted"}'
submit md
expect_eq "(d) the next task follows the weights again" "$TSERVER" big

# ------------------------------------------------------------------ (e) full server skipped
check "(e) register tiny (maxConcurrent 1, slow) and roomy" \
	eval 'reg tiny slow mf 1 && reg roomy fast mf 100'
check "(e) algorithm round-robin" lbconf '{"algorithm":"round-robin"}'
tiny_first=""
for i in 1 2; do
	submit mf
	[ "$TSERVER" = tiny ] && tiny_first=$TID
done
check "(e) one of the first two tasks runs on tiny" test -n "$tiny_first"
got=""
for i in 1 2 3 4 5 6; do submit mf; got="$got $TSERVER"; done
expect_eq "(e) while tiny is full, every task goes to roomy" "$got" " roomy roomy roomy roomy roomy roomy"
expect_eq "(e) status: tiny is not eligible" "$(status_of tiny .eligible)" false
check "(e) ... because it is full" eval '[[ "$(status_of tiny .reason)" == "full: 1 of 1 slots taken" ]]'

# ------------------------------------------------------------------ (f) maintenance drains
check "(f) register m1 (slow) and m2" eval 'reg m1 slow mm 100 && reg m2 fast mm 100'
check "(f) algorithm round-robin" lbconf '{"algorithm":"round-robin"}'
for i in 1 2 3 4; do submit mm; done
check "(f) m1 has running tasks" eval '[ "$(server_load m1)" -ge 1 ]'
admin PUT /api/v2/servers/m1/maintenance '{"enabled":true}'
expect_eq "(f) m1 in maintenance" "$(jget .status)" maintenance
before=$(count_on m1)
got=""
for i in 1 2 3 4 5 6; do submit mm; got="$got $TSERVER"; done
expect_eq "(f) no new task goes to m1" "$got" " m2 m2 m2 m2 m2 m2"
expect_eq "(f) m1's task count did not grow" "$(count_on m1)" "$before"
check "(f) status: m1 not eligible, in maintenance" \
	eval '[ "$(status_of m1 .eligible)" = false ] && [[ "$(status_of m1 .reason)" == "in maintenance since "* ]]'
check "(f) m1's running tasks finish: its load drains to 0 (bounded 30 s)" wait_long load_is m1 0
client GET "/api/v2/tasks?serverId=m1&limit=50"
expect_eq "(f) ... all of them COMPLETED" "$(jget '[.items[].status] | unique | join(",")')" COMPLETED
admin PUT /api/v2/servers/m1/maintenance '{"enabled":false}'

# ------------------------------------------------------------------ (g) status details
check "(g) register ghost and mark it offline the way the health job does" \
	eval 'reg ghost fast mg 4 && jedit "$STATE/servers/ghost.json" ".health = \"offline\" | .statusSince = 1700000000000"'
check "(g) status: ghost offline since 2023-11-14" \
	eval '[[ "$(status_of ghost .reason)" == "offline since 2023-11-14T22:13:20"* ]]'
expect_eq "(g) ?model=other: a model mismatch is named" \
	"$(status_of roomy .reason '?model=other')" "does not serve the model 'other'"
expect_eq "(g) ?model=mf: roomy is eligible, no reason" "$(status_of roomy '"\(.eligible),\(.reason)"' '?model=mf')" "true,null"
check "(g) slow start 60 s" lbconf '{"slowStartSeconds":60}'
check "(g) register fresh (weight 10)" reg fresh fast mg 4 10
check "(g) a fresh server starts near 10% of its weight" \
	eval 'f=$(status_of fresh .weightFactors.slowStart); awk -v f="$f" "BEGIN{exit !(f >= 0.09 && f < 0.2)}"'
check "(g) ... its effective weight is below the configured one" \
	eval 'e=$(status_of fresh .effectiveWeight); awk -v e="$e" "BEGIN{exit !(e < 2)}"'
lbconf '{"slowStartSeconds":0}' > /dev/null
client GET /api/v2/loadbalancer/status
total=$(jget .distribution.total)
expect_eq "(g) distribution: every dispatch of this run counted" "$total" \
	"$(( $(count_on w3) + $(count_on w1) + $(count_on r1) + $(count_on r2) + $(count_on r3) + $(count_on big) + $(count_on small) + $(count_on tiny) + $(count_on roomy) + $(count_on m1) + $(count_on m2) ))"
client GET /api/v2/loadbalancer/status
expect_eq "(g) w3's tasksLastHour matches its tasks" "$(printf '%s' "$BODY" | jq '.servers[] | select(.id=="w3") | .tasksLastHour')" "$n3"
expect_eq "(g) the shares add up to ~1" \
	"$(printf '%s' "$BODY" | jq '[.distribution.servers[].share] | add | . * 10 | round')" 10
expect_eq "(g) summary counts the servers" "$(jget .summary.servers)" 13

# ------------------------------------------------------------------ (h) response-time
check "(h) register quick (20 ms) and sluggish (600 ms)" \
	eval 'reg quick fast mt 100 && reg sluggish slow2 mt 100'
check "(h) algorithm response-time" lbconf '{"algorithm":"response-time"}'
# Warm-up: both get probed (no data yet), results arrive, the EWMAs are learnt.
for i in 1 2 3 4; do submit mt; done
sleep 2.5
for i in 1 2 3 4; do submit mt; sleep 0.1; done
sleep 2.5
q0=$(count_on quick)
s0=$(count_on sluggish)
for i in $(seq 1 30); do submit mt; sleep 0.05; done
q=$(( $(count_on quick) - q0 ))
s=$(( $(count_on sluggish) - s0 ))
check "(h) both servers have a learnt EWMA" \
	eval '[ "$(status_of quick .responseTimeEwmaMs)" != null ] && [ "$(status_of sluggish .responseTimeEwmaMs)" != null ]'
check "(h) quick's EWMA is below sluggish's" \
	eval 'awk -v a="$(status_of quick .responseTimeEwmaMs)" -v b="$(status_of sluggish .responseTimeEwmaMs)" "BEGIN{exit !(a < b)}"'
check "(h) of 30 tasks the fast server took >= 24 (got $q, slow $s)" test "$q" -ge 24
check "(h) the slow one was not starved over the whole run ($((s0 + s)) tasks)" test $((s0 + s)) -ge 1

# ------------------------------------------------------------------ (i) stickiness
check "(i) register s1 s2 s3" eval 'reg s1 fast ms 100 && reg s2 fast ms 100 && reg s3 fast2 ms 100'
check "(i) round-robin with stickySession" lbconf '{"algorithm":"round-robin","stickySession":true}'
got=""
for i in 1 2 3 4 5 6; do submit ms '"affinityKey":"user-42"'; got="$got $TSERVER"; done
expect_eq "(i) one affinityKey, one server" "$(tr ' ' '\n' <<< "$got" | sort -u | grep -c .)" 1
check "(i) stickySession off" lbconf '{"stickySession":false}'
got=""
for i in 1 2 3; do submit ms '"affinityKey":"user-42"'; got="$got $TSERVER"; done
expect_eq "(i) without it, the algorithm spreads the same key" "$(tr ' ' '\n' <<< "$got" | sort -u | grep -c .)" 3

# ------------------------------------------------------------------ (j) rebalance
check "(j) wait for r1's tasks to finish" wait_long load_is r1 0
check "(j) drift r1's currentLoad to 5 behind taskgate's back" \
	jedit "$STATE/servers/r1.json" '.currentLoad = 5'
admin POST /api/v2/loadbalancer/rebalance "{}"
expect_eq "(j) rebalance answers 200" "$STATUS" 200
check "(j) ... reporting r1's load 5 -> 0" \
	eval 'printf "%s" "$BODY" | jqq ".changed[] | select(.id == \"r1\") | .currentLoad == {\"from\":5,\"to\":0}"'
check "(j) ... and at least one load correction" eval '[ "$(jget .loadCorrections)" -ge 1 ]'
check "(j) ... with effective weights for every server" \
	eval '[ "$(jget ".servers | length")" = 18 ] && printf "%s" "$BODY" | jqq "all(.servers[]; .effectiveWeight > 0)"'
expect_eq "(j) r1's currentLoad is 0 again" "$(server_load r1)" 0
admin POST /api/v2/loadbalancer/rebalance "{}"
expect_eq "(j) a second rebalance changes nothing" "$(jget '.changed | length') $(jget .loadCorrections)" "0 0"
check "every state file parses" all_state_parses
finish
