#!/usr/bin/env bash
# A new server is not routable until its first good check. A registration probes
# the server once: a READY Cog is online at once (a task submitted right after
# runs there); a Cog answering STARTING is registered "starting" and gets no task
# (the task stays QUEUED, the mock receives no prediction) and no failure counted,
# however many health runs see it, until the mock says READY and the health job's
# first READY makes it online and the queued task runs there. Past the setup grace
# (health.setupGraceSeconds) STARTING counts as failing, and fall of them take the
# server offline. An unreachable server is registered starting with its failure
# counted. The health job is run as cron runs it; piggy-backing is off so that
# nothing else checks or drains behind the test's back. Every wait is bounded.
. "$(dirname "$0")/../lib.sh"

HEALTH="$BUILD/cron/taskgate-health"
# (not --quiet: the status changes it logs are checked)
health_run() { STATE_DIR="$STATE" "$HEALTH" --all > /dev/null 2>> "$WORK/health.err"; }
sweep_run() { STATE_DIR="$STATE" "$BUILD/cron/taskgate-sweep" --quiet > /dev/null 2>&1; }
srv() { admin GET "/api/v2/servers/$1"; } # sets BODY
received() { mock "$1" /__stats | jq -r .received; }
# completes_after ID: runs the sweep (a cron tick) until the task completed, bounded
completes_after() {
	local i
	for i in $(seq 1 40); do
		[ "$(task_field "$1" .status)" = COMPLETED ] && return 0
		sweep_run
		sleep 0.25
	done
	return 1
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
set_config '.piggyback.enabled=false | .health.timeoutMs=1000 | .health.connectTimeoutMs=500'

# ---- a READY server is routable at once ------------------------------------------

start_mock ready --protocol cog --delay-ms 20 || not_ok "mock ready starts"
check "register ready (model r)" register_mock ready ready \
	'"capabilities":{"maxConcurrent":2,"supportedModels":["r"]}'
expect_eq "the registration probe found it READY: online at once" "$(jget .status)" online
expect_eq "... its lastCheck is that probe" "$(jget '"\(.lastCheck.ok) \(.lastCheck.verdict)"')" "true pass"
expect_eq "... and no setup is under way" "$(jget .setupSince)" null
client POST /api/v2/tasks '{"model":"r","input":{"n":0}}'
rid=$(jget .id)
expect_eq "a task submitted right after is placed there" "$(jget '"\(.status) \(.serverId)"')" \
	"PROCESSING ready"
check "... and completes" wait_status "$rid" COMPLETED 20

# ---- STARTING: out of placement, no failure counted --------------------------------

start_mock setup --protocol cog --health STARTING --delay-ms 20 || not_ok "mock setup starts"
check "register setup (model s) while its Cog says STARTING" register_mock setup setup \
	'"capabilities":{"maxConcurrent":2,"supportedModels":["s"]}'
expect_eq "it is registered starting" "$(jget .status)" starting
check "... with setupSince set" jqe '.setupSince > 0' <<< "$BODY"
expect_eq "... its lastCheck says STARTING" \
	"$(jget '"\(.lastCheck.ok) \(.lastCheck.status) \(.lastCheck.verdict) \(.lastCheck.error)"')" \
	"false 200 starting status STARTING"
expect_eq "... and no failure is counted" "$(jget .consecutiveFailures)" 0

client POST /api/v2/tasks '{"model":"s","input":{"n":1}}'
sid=$(jget .id)
expect_eq "a task for its model is accepted" "$STATUS" 202
expect_eq "... and queued: the starting server is not eligible" "$(jget .status)" QUEUED

for i in 1 2 3 4 5; do health_run; sweep_run; done
srv setup
expect_eq "after 5 health runs and sweeps it is still starting" "$(jget .status)" starting
expect_eq "... with no failure counted" "$(jget .consecutiveFailures)" 0
expect_eq "... and its health score untouched" "$(jget .healthScore)" 100
expect_eq "the task is still QUEUED" "$(task_field "$sid" .status)" QUEUED
expect_eq "the mock received no prediction" "$(received setup)" 0

admin GET /api/v2/servers?status=starting
expect_eq "?status=starting lists it" "$(jget '[.items[].id] | join(",")')" setup
client GET /api/v2/loadbalancer/status
check "the load balancer says why it is not eligible ($(jc '.servers[] | select(.id == "setup") | .reason'))" \
	jqe '.servers[] | select(.id == "setup") | (.eligible == false) and (.reason | test("starting"))' <<< "$BODY"
admin GET /status
check "the status page counts it as starting" grep -q 'id="servers-starting"' "$WORK/body"
check "... and shows its row as starting" grep -q 'data-server="setup" data-status="starting"' "$WORK/body"
check "the health job logged no status change for it" bash -c "! grep -q 'server setup .* -> ' '$WORK/health.err'"

# ---- READY: the first good check makes it routable ---------------------------------

check "the mock's setup ends: READY" mock_control setup '{"health":"READY"}'
health_run
srv setup
expect_eq "one health run sees READY: online" "$(jget .status)" online
expect_eq "... setupSince is cleared" "$(jget .setupSince)" null
check "the queued task completes" completes_after "$sid"
expect_eq "... on setup" "$(task_field "$sid" '"\(.serverId) \(.attempts)"')" "setup 1"
expect_eq "the mock received exactly that prediction" "$(received setup)" 1
check "the change was logged" grep -q 'server setup starting -> online' "$WORK/health.err"

# ---- past the setup grace, STARTING is failing --------------------------------------

set_config '.health.setupGraceSeconds=1'
start_mock stuck --protocol cog --health STARTING || not_ok "mock stuck starts"
check "register stuck (its Cog says STARTING) with a 1 s setup grace" register_mock stuck stuck
expect_eq "it is not routable" "$(jget .status)" starting
f0=$(jget .consecutiveFailures) # 0, unless the registration probe itself was late
sleep 2 # past the grace: the direction of the check does not depend on timing
health_run
srv stuck
expect_eq "one check past the grace counts a failure" "$(jget .consecutiveFailures)" $((f0 + 1))
check "... and says why ($(jget .lastCheck.error))" jqe '.lastCheck.error | test("past the setup grace of 1 s")' <<< "$BODY"
check "... its health score fell" jqe '.healthScore < 100' <<< "$BODY"
for i in $(seq $((f0 + 2)) 3); do health_run; done
srv stuck
expect_eq "three such checks (fall 3) take it offline" "$(jget '"\(.status) \(.consecutiveFailures)"')" "offline 3"
health_run
srv stuck
expect_eq "STARTING keeps counting: it stays offline" "$(jget '"\(.status) \(.consecutiveFailures)"')" "offline 4"
check "the mock's setup ends at last: READY" mock_control stuck '{"health":"READY"}'
health_run
health_run
srv stuck
expect_eq "it comes back like any offline server (rise 2)" "$(jget .status)" online
set_config '.health.setupGraceSeconds=600'

# ---- unreachable at registration ---------------------------------------------------

port=$(free_port)
admin POST /api/v2/servers "{\"id\":\"gone\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$port/predictions\",\"health\":\"http://127.0.0.1:$port/health-check\"}}"
expect_eq "a server nobody answers for is registered (201)" "$STATUS" 201
expect_eq "... starting, its failure counted" "$(jget '"\(.status) \(.consecutiveFailures) \(.lastCheck.verdict)"')" \
	"starting 1 fail"
health_run
health_run
srv gone
expect_eq "two more failed checks (fall 3) take it offline" "$(jget .status)" offline

check "every state file parses" all_state_parses
finish
