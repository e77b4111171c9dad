#!/usr/bin/env bash
# Strict request bodies, through the front end:
# (a) an unknown member is 400 with field its JSON pointer, and "did you mean" when
#     one edit from a known name (the typos users made: timeoutSecond, maxAttempt,
#     grp, modle, capabilites), on every route whose body taskgate defines (tasks,
#     servers with their endpoints and capabilities, maintenance, load balancer);
# (b) a member given twice is 400 naming it, at any depth, on every JSON route;
# (c) every problem about the body names a field: "/" for the whole body,
#     Content-Type for a 415;
# (d) a refused body changes nothing in the state tree;
# (e) "strictBodies": false ignores unknown members (the old behaviour), still
#     refusing repeated ones;
# (f) what backends send (Cog's webhook with its many members) is never strict.
# Only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

start_taskgate 2 || { not_ok "taskgate starts"; finish; exit 1; }
ok "taskgate starts behind ${FRONTEND:-lighttpd}"

# refused DESC EXPECTED_FIELD [HINT]: the last answer was 400 naming the field
# (and its detail suggesting HINT).
refused() {
	local got
	got=$(jget .field)
	if [ "$STATUS" = 400 ] && [ "$got" = "$2" ] &&
		{ [ -z "${3:-}" ] || jqe --arg h "did you mean '$3'?" '.detail | contains($h)' <<< "$BODY"; }; then
		ok "$1: 400, field $2${3:+, did you mean $3}"
	else
		not_ok "$1: 400, field $2${3:+, did you mean $3} (got $STATUS $BODY)"
	fi
}
snapshot() {
	(cd "$STATE" && find . \( -path ./run -o -path ./locks -o -path ./log \) -prune -o -type f -print0 |
		sort -z | xargs -0 -r sha256sum)
}
task='{"model":"m","input":{"p":1}}'
server='{"id":"s1","protocol":"http-json","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"},"capabilities":{"maxConcurrent":2}}'
admin POST /api/v2/servers "$server"
expect_eq "the right registration is 201" "$STATUS" 201
admin PUT /api/v2/servers/s1/maintenance '{"enabled":true}'
expect_eq "the right maintenance is 200" "$STATUS" 200
sleep 1 # work after the answers settles
before=$(snapshot)

# ---------------------------------------------------------------- (a)
client POST /api/v2/tasks "$(jq -c '.timeoutSecond = 5' <<< "$task")"
refused "(a) task timeoutSecond" /timeoutSecond timeoutSeconds
client POST /api/v2/tasks "$(jq -c '.maxAttempt = 2' <<< "$task")"
refused "(a) task maxAttempt" /maxAttempt maxAttempts
client POST /api/v2/tasks "$(jq -c '.grp = "cpu"' <<< "$task")"
refused "(a) task grp (two edits: no hint)" /grp
check "(a) ... the detail lists the members instead" jqe '.detail | test("the members are model, input")' <<< "$BODY"
client POST /api/v2/tasks '{"modle":"m","input":{}}'
refused "(a) task modle (named, not 'model is required')" /modle model
client POST /api/v2/tasks '{"model":"m","input":{},"Priority":1}'
refused "(a) task Priority" /Priority priority
admin POST /api/v2/servers "$(jq -c '.capabilites = {"maxConcurrent":4}' <<< "$server")"
refused "(a) server capabilites" /capabilites capabilities
admin POST /api/v2/servers "$(jq -c '.capabilities.maxConcurent = 4' <<< "$server")"
refused "(a) server capabilities.maxConcurent" /capabilities/maxConcurent maxConcurrent
admin POST /api/v2/servers "$(jq -c '.endpoints.heath = "http://127.0.0.1:9/h"' <<< "$server")"
refused "(a) server endpoints.heath" /endpoints/heath health
admin POST /api/v2/servers "$(jq -c '.["a/b~c"] = 1' <<< "$server")"
refused "(a) a member with / and ~ (RFC 6901 escapes)" "/a~1b~0c"
admin PUT /api/v2/loadbalancer/config '{"algoritm":"p2c"}'
refused "(a) load balancer algoritm" /algoritm algorithm
admin PUT /api/v2/servers/s1/maintenance '{"enabled":false,"reason":"disk"}'
refused "(a) maintenance reason" /reason

# ---------------------------------------------------------------- (b)
client POST /api/v2/tasks '{"model":"m","input":{},"model":"n"}'
refused "(b) task model twice" /model
client POST /api/v2/tasks '{"model":"m","input":{"x":1,"y":2,"x":3}}'
refused "(b) a repeat inside input" /input/x
client POST /api/v2/tasks '{"model":"m","input":{"l":[{"k":1},{"k":1,"k":2}]}}'
refused "(b) a repeat inside an array" /input/l/1/k
admin POST /api/v2/servers "$(jq -c '.id = "s2"' <<< "$server" | sed 's/"id":"s2"/"id":"s2","id":"s3"/')"
refused "(b) server id twice" /id
admin PUT /api/v2/servers/s1/maintenance '{"enabled":false,"enabled":true}'
refused "(b) maintenance enabled twice" /enabled
admin PUT /api/v2/loadbalancer/config '{"algorithm":"p2c","algorithm":"weighted"}'
refused "(b) load balancer algorithm twice" /algorithm

# ---------------------------------------------------------------- (c)
client POST /api/v2/tasks '[1]'
refused "(c) a body that is not an object" /
client POST /api/v2/tasks '{"model":'
refused "(c) malformed JSON" /
client POST /api/v2/tasks ''
refused "(c) no body" /
STATUS=$(curl -s -m 10 -o "$WORK/b" -w '%{http_code}' -H "Authorization: Bearer $CLIENT" \
	-H 'Content-Type: text/plain' --data-binary "$task" "$BASE/api/v2/tasks")
BODY=$(cat "$WORK/b")
expect_eq "(c) text/plain is 415 naming Content-Type" "$STATUS $(jget .field)" "415 Content-Type"

# ---------------------------------------------------------------- (d)
expect_eq "(d) none of the refused bodies changed the tree" "$(snapshot)" "$before"
client GET /api/v2/servers/s1
expect_eq "(d) s1 is still in maintenance" "$(jget .status)" maintenance
client POST /api/v2/tasks '{"model":"m","input":{"anything":1,"goes":{"here":[1]}}}'
expect_eq "(d) the input's own members are the model's business" "$STATUS" 202

# ---------------------------------------------------------------- (e)
check "(e) strictBodies off" set_config '.strictBodies = false'
client POST /api/v2/tasks "$(jq -c '.timeoutSecond = 5' <<< "$task")"
expect_eq "(e) an unknown member is ignored" "$STATUS" 202
expect_eq "(e) ... and the default used" "$(task_field "$(jget .id)" .request.timeoutSeconds)" 300
admin POST /api/v2/servers "$(jq -c '.id = "s4" | .capabilites = {"maxConcurrent":4}' <<< "$server")"
expect_eq "(e) a registration with capabilites is 201" "$STATUS" 201
admin PUT /api/v2/loadbalancer/config '{"algoritm":"p2c"}'
expect_eq "(e) the load balancer ignores algoritm" "$STATUS" 200
client POST /api/v2/tasks '{"model":"m","input":{},"model":"n"}'
refused "(e) a repeated member is refused all the same" /model
check "(e) strictBodies back on" set_config '.strictBodies = true'

# ---------------------------------------------------------------- (f)
start_mock cog --protocol cog --slots 2 || not_ok "(f) mock cog starts"
check "(f) register cog" register_mock cog cog
admin PUT /api/v2/servers/s1/maintenance '{"enabled":true}'
admin PUT /api/v2/servers/s4/maintenance '{"enabled":true}'
client POST /api/v2/tasks '{"model":"m","input":{"prompt":"x"}}'
tid=$(jget .id)
check "(f) a task through Cog (webhooks with id, input, logs, metrics, started_at...) completes" \
	wait_long is_status "$tid" COMPLETED
check "every JSON file of the state tree parses" all_state_parses
finish
