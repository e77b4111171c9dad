#!/usr/bin/env bash
# A server that dies gives up its running tasks at once: kill -9 of a Cog server
# holding a running task (timeoutSeconds 300); the health checks take it offline
# (fall 3) and that ends the attempt there ("server ... went offline"), so the task
# completes on the other server within seconds, not after its 300 s deadline. The
# same when the server is marked offline by failed checks of a live but broken one.
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

reg_cog() { # ID PORT MODEL
	admin POST /api/v2/servers "{\"id\":\"$1\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$2/predictions\",\"health\":\"http://127.0.0.1:$2/health-check\"},\"capabilities\":{\"maxConcurrent\":4,\"supportedModels\":[\"$3\"]}}"
	[ "$STATUS" = 201 ]
}
health_run() { STATE_DIR="$STATE" "$BUILD/cron/taskgate-health" --all --quiet > /dev/null 2>&1; }
sweep_run() { STATE_DIR="$STATE" "$BUILD/cron/taskgate-sweep" --quiet > /dev/null 2>&1; }
completed_after_sweeps() { # ID: runs the sweep (as cron would) until the task completed
	local i
	for i in $(seq 1 60); do
		is_status "$1" COMPLETED && return 0
		sweep_run
		sleep 0.25
	done
	return 1
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
start_mock doomed --protocol cog --slots 4 --delay-ms 100 || not_ok "mock doomed starts"
check "mock doomed holds its predictions" mock_control doomed '{"hold":true}'
check "register doomed (model fo)" reg_cog doomed "$MOCK_PORT_doomed" fo

client POST /api/v2/tasks '{"model":"fo","input":{"n":1},"timeoutSeconds":300}'
tid=$(jget .id)
expect_eq "the task is accepted" "$STATUS" 202
check "it runs on doomed" wait_for bash -c "[ \"\$(curl -s -m 5 http://127.0.0.1:$MOCK_PORT_doomed/__stats | jq .active)\" = 1 ]"
expect_eq "... as PROCESSING there" "$(task_field "$tid" '"\(.status) \(.serverId)"')" "PROCESSING doomed"

start_mock spare --protocol cog --slots 4 --delay-ms 100 || not_ok "mock spare starts"
check "register spare (model fo)" reg_cog spare "$MOCK_PORT_spare" fo

doomed_pid=$(pgrep -f "mock-doomed.port" | head -n 1)
check "kill -9 of doomed's server" kill -9 "$doomed_pid"
t0=$SECONDS
for i in 1 2 3; do health_run; done
client GET /api/v2/servers/doomed
expect_eq "three failed checks take doomed offline" "$(jget .status)" offline
expect_eq "the task left doomed at once: QUEUED for its retry" \
	"$(task_field "$tid" '"\(.status) \(.history[0].outcome)"')" "QUEUED error"
client GET "/api/v2/tasks/$tid"
check "the attempt's error says why ($(jget '.history[0].error'))" \
	jqe '.history[0].error | test("server doomed went offline")' <<< "$BODY"
check "the task completes on spare" completed_after_sweeps "$tid"
expect_eq "... on its second attempt, on spare" "$(task_field "$tid" '"\(.attempts) \(.serverId)"')" "2 spare"
check "... within seconds of the failure, not its 300 s deadline ($((SECONDS - t0)) s)" \
	test $((SECONDS - t0)) -lt 60

# A live server whose checks fail (UNHEALTHY) is taken offline the same way.
check "mock spare holds its predictions" mock_control spare '{"hold":true}'
start_mock third --protocol cog --slots 4 --delay-ms 100 || not_ok "mock third starts"
client POST /api/v2/tasks '{"model":"fo","input":{"n":2},"timeoutSeconds":300}'
tid2=$(jget .id)
check "the second task runs on spare" wait_for bash -c "[ \"\$(curl -s -m 5 http://127.0.0.1:$MOCK_PORT_spare/__stats | jq .active)\" = 1 ]"
check "register third (model fo)" reg_cog third "$MOCK_PORT_third" fo
check "spare reports UNHEALTHY" mock_control spare '{"health":"UNHEALTHY"}'
for i in 1 2 3; do health_run; done
client GET /api/v2/servers/spare
expect_eq "three UNHEALTHY checks take spare offline" "$(jget .status)" offline
check "the second task completes on third" completed_after_sweeps "$tid2"
expect_eq "... on its second attempt" "$(task_field "$tid2" '"\(.attempts) \(.serverId)"')" "2 third"
check "spare's held prediction ending later changes nothing" mock_control spare '{"hold":false}'
sleep 0.5
expect_eq "the task stays COMPLETED on third" "$(task_field "$tid2" '"\(.status) \(.serverId)"')" "COMPLETED third"
check "every JSON file of the state tree parses" all_state_parses
finish
