#!/usr/bin/env bash
# Tasks through lighttpd against real mock backends: the life of one task.
#  (a) Cog: create -> 202 + Location -> dispatch (PUT /predictions/<id>-1 with a
#      webhook) -> webhooks -> COMPLETED with result.output, result.metrics and logs
#  (b) http-json sync: the response body is the result
#  (c) http-json async: 202, then the backend calls back through callbackUrl
#  (d) Prefer: wait=N answers 200 with the COMPLETED task and Preference-Applied
#  (e) unknown ids are 404 (never a fake PENDING); auth is required
#  (f) validation errors on POST: 400 naming the field, and nothing is stored
#  (g) listing: status/serverId filters, limit and cursor paging, bad filters 400
# No cron runs. Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"
# predictions NAME: the requests mock NAME received, without the health checks (a
# registration probes the server once before it answers).
predictions() { mock "$1" /__requests | jq '[.[] | select(.path | test("^/health") | not)]'; }

# reg_server ID PROTOCOL PORT MAXC MODEL [ASYNC]: register a mock as a server that
# serves only MODEL (so each test decides where its tasks go).
reg_server() {
	local id=$1 proto=$2 port=$3 maxc=$4 model=$5 async=${6:-false} ep
	if [ "$proto" = cog ]; then
		ep="{\"predict\":\"http://127.0.0.1:$port/predictions\",\"health\":\"http://127.0.0.1:$port/health-check\"}"
	else
		ep="{\"predict\":\"http://127.0.0.1:$port/predict\",\"health\":\"http://127.0.0.1:$port/health\"}"
	fi
	admin POST /api/v2/servers "{\"id\":\"$id\",\"protocol\":\"$proto\",\"endpoints\":$ep,\"capabilities\":{\"maxConcurrent\":$maxc,\"supportedModels\":[\"$model\"],\"async\":$async}}"
	[ "$STATUS" = 201 ]
}
# mock NAME PATH: GET a mock's control endpoint
count_files() { find "$STATE/$1" -type f ! -name ".*" 2> /dev/null | wc -l; }
header() { grep -i "^$1:" "$WORK/h" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
start_mock cog --protocol cog --slots 4 --delay-ms 300 || not_ok "cog mock starts"
start_mock sync --protocol http-json --slots 4 --delay-ms 200 || not_ok "http-json sync mock starts"
start_mock async --protocol http-json --slots 4 --delay-ms 200 --async || not_ok "http-json async mock starts"
check "register the Cog server" reg_server c1 cog "$MOCK_PORT_cog" 2 cog-m
check "register the http-json sync server" reg_server h1 http-json "$MOCK_PORT_sync" 2 sync-m
check "register the http-json async server" reg_server a1 http-json "$MOCK_PORT_async" 2 async-m true

# ---------------------------------------------------------------- (a) Cog
# Progress from the start webhook is asked for here; (h) checks the default.
set_config '.cog.webhookEvents = ["start", "completed"]'
client POST /api/v2/tasks '{"model":"cog-m","input":{"prompt":"hello","n":3}}' -D "$WORK/h"
expect_eq "(a) POST /api/v2/tasks answers 202" "$STATUS" 202
id=$(jget .id)
check "(a) the answer carries a task id" test -n "$id" -a "$id" != null
expect_eq "(a) Location points at the task" "$(header Location)" "/api/v2/tasks/$id"
check "(a) the answer is PENDING, QUEUED or PROCESSING" \
	grep -qxE 'PENDING|QUEUED|PROCESSING' <<< "$(jget .status)"
expect_eq "(a) the request is echoed back" "$(jc .request.input)" '{"prompt":"hello","n":3}'
check "(a) the task completes within 10 s" wait_for is_status "$id" COMPLETED
client GET "/api/v2/tasks/$id"
expect_eq "(a) GET answers 200" "$STATUS" 200
expect_eq "(a) result.output is the backend's output" "$(jc .result.output)" \
	'{"echo":{"prompt":"hello","n":3},"server":"cog"}'
check "(a) result.metrics.predict_time is a positive number" \
	jqe '.result.metrics.predict_time | type == "number" and . > 0' <<< "$BODY"
check "(a) result.logs holds the backend's logs" \
	jqe --arg p "$id-1" '.result.logs | test("prediction " + $p + " succeeded")' <<< "$BODY"
expect_eq "(a) serverId is the Cog server" "$(jget .serverId)" c1
expect_eq "(a) one attempt" "$(jget .attempts)" 1
expect_eq "(a) history: one attempt on c1 that succeeded" \
	"$(jc '[.history[] | [.attempt, .serverId, .outcome]]')" '[[1,"c1","succeeded"]]'
check "(a) completedAt and updatedAt are stamped, not before createdAt" \
	jqe '.completedAt >= .createdAt and .updatedAt >= .createdAt' <<< "$BODY"
expect_eq "(a) no error" "$(jget .error)" null
check "(a) the progress of the start webhook was recorded" \
	jqe '.progress.status == "processing"' <<< "$BODY"
predictions cog > "$WORK/a.req"
expect_eq "(a) the backend got exactly one prediction request" "$(jq length "$WORK/a.req")" 1
expect_eq "(a) ... PUT /predictions/<task>-1" "$(jq -r '.[0] | .method + " " + .path' "$WORK/a.req")" \
	"PUT /predictions/$id-1"
expect_eq "(a) ... with Prefer: respond-async" "$(jq -r '.[0].prefer' "$WORK/a.req")" respond-async
jq -r '.[0].body' "$WORK/a.req" > "$WORK/a.body"
expect_eq "(a) ... carrying the input" "$(jq -c .input "$WORK/a.body")" '{"prompt":"hello","n":3}'
check "(a) ... and a webhook to this taskgate for attempt 1 with a 128-bit token" \
	jqe --arg u "$BASE/api/v2/tasks/$id/callback?attempt=1&token=" \
	'.webhook | startswith($u) and (ltrimstr($u) | test("^[0-9a-f]{32,}$"))' "$WORK/a.body"
expect_eq "(a) ... asking for the start and completed events (config cog.webhookEvents)" \
	"$(jq -c .webhook_events_filter "$WORK/a.body")" '["start","completed"]'
check "(a) the secret is not in the task file in clear" \
	bash -c "! grep -rq '$(jq -r '.webhook | sub(".*token="; "")' "$WORK/a.body")' '$STATE/tasks'"
check "(a) the public task shows no secret hash" bash -c "! grep -q secretHash <<< '$BODY'"
expect_eq "(a) c1's currentLoad is back to 0" "$(server_load c1)" 0
expect_eq "(a) the mock saw the prediction complete" "$(mock cog /__stats | jq .completed)" 1

# ---------------------------------------------------------------- (b) http-json sync
client POST /api/v2/tasks '{"model":"sync-m","input":{"x":[1,2]}}' -D "$WORK/h"
expect_eq "(b) sync backend: POST still answers 202 at once" "$STATUS" 202
sid=$(jget .id)
expect_eq "(b) Location" "$(header Location)" "/api/v2/tasks/$sid"
check "(b) the task completes" wait_for is_status "$sid" COMPLETED
client GET "/api/v2/tasks/$sid"
expect_eq "(b) result.output is the response's output" "$(jc .result.output)" \
	'{"echo":{"x":[1,2]},"server":"sync"}'
expect_eq "(b) serverId h1" "$(jget .serverId)" h1
predictions sync > "$WORK/b.req"
expect_eq "(b) one POST /predict" "$(jq -r '[.[] | .method + " " + .path] | join(",")' "$WORK/b.req")" \
	"POST /predict"
jq -r '.[0].body' "$WORK/b.req" > "$WORK/b.body"
expect_eq "(b) body has taskId, model and input" "$(jq -c '[.taskId, .model, .input]' "$WORK/b.body")" \
	"[\"$sid\",\"sync-m\",{\"x\":[1,2]}]"
expect_eq "(b) h1's currentLoad is back to 0" "$(server_load h1)" 0

# ---------------------------------------------------------------- (c) http-json async
client POST /api/v2/tasks '{"model":"async-m","input":"just a string"}'
expect_eq "(c) async backend: 202" "$STATUS" 202
aid=$(jget .id)
check "(c) the task completes through the callback" wait_for is_status "$aid" COMPLETED
client GET "/api/v2/tasks/$aid"
expect_eq "(c) result.output comes from the callback" "$(jc .result.output)" \
	'{"echo":"just a string","server":"async"}'
expect_eq "(c) serverId a1" "$(jget .serverId)" a1
predictions async > "$WORK/c.req"
jq -r '.[0].body' "$WORK/c.req" > "$WORK/c.body"
check "(c) the backend got a callbackUrl for attempt 1" \
	jqe --arg u "$BASE/api/v2/tasks/$aid/callback?attempt=1&token=" '.callbackUrl | startswith($u)' \
	"$WORK/c.body"
expect_eq "(c) the backend delivered its callback" "$(mock async /__stats | jq .webhooksDelivered)" 1
expect_eq "(c) a1's currentLoad is back to 0" "$(server_load a1)" 0

# ---------------------------------------------------------------- (d) Prefer: wait
t0=$(date +%s%N)
client POST /api/v2/tasks '{"model":"cog-m","input":{"wait":true}}' -H 'Prefer: wait=5' -D "$WORK/h"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "(d) Prefer: wait=5 answers 200" "$STATUS" 200
expect_eq "(d) ... with the COMPLETED task" "$(jget .status)" COMPLETED
expect_eq "(d) ... and its output" "$(jc .result.output.echo)" '{"wait":true}'
check "(d) Preference-Applied names wait" grep -qi '^Preference-Applied: *wait=5' "$WORK/h"
# A 200 names the task in Content-Location: Apache turns a 200 with Location into a redirect.
check "(d) Content-Location names the task" grep -qi "^Content-Location: /api/v2/tasks/$(jget .id)" "$WORK/h"
check "(d) it answered as soon as the result was in (${ms} ms < 4000)" test "$ms" -lt 4000
curl -s -m 5 -X POST -d '{"delayMs":4000}' "http://127.0.0.1:$MOCK_PORT_cog/__control" > /dev/null
t0=$(date +%s%N)
client POST /api/v2/tasks '{"model":"cog-m","input":{"slow":true}}' -H 'Prefer: wait=1' -D "$WORK/h"
ms=$((($(date +%s%N) - t0) / 1000000))
slow=$(jget .id)
expect_eq "(d) Prefer: wait=1 on a 4 s task answers 202" "$STATUS" 202
expect_eq "(d) ... with the task still PROCESSING" "$(jget .status)" PROCESSING
check "(d) ... after about 1 s (${ms} ms)" test "$ms" -ge 900 -a "$ms" -lt 3000
check "(d) ... and Location" grep -qi "^Location: /api/v2/tasks/$slow" "$WORK/h"
curl -s -m 5 -X POST -d '{"delayMs":300}' "http://127.0.0.1:$MOCK_PORT_cog/__control" > /dev/null
check "(d) the slow task completes later" bash -c "for i in \$(seq 1 80); do
	curl -s -H 'Authorization: Bearer $CLIENT' '$BASE/api/v2/tasks/$slow' | jq -e '.status == \"COMPLETED\"' > /dev/null && exit 0; sleep 0.1; done; exit 1"

# ---------------------------------------------------------------- (e) unknown ids, auth
unknown=00000000-0000-4000-8000-000000000000
client GET "/api/v2/tasks/$unknown"
expect_eq "(e) GET of an unknown id is 404" "$STATUS" 404
expect_eq "(e) ... a problem document, not a PENDING task" "$(jget '.status')" 404
check "(e) ... that does not say PENDING" bash -c "! grep -q PENDING <<< '$BODY'"
client DELETE "/api/v2/tasks/$unknown"
expect_eq "(e) DELETE of an unknown id is 404" "$STATUS" 404
client POST "/api/v2/tasks/$unknown/retry" ""
expect_eq "(e) retry of an unknown id is 404" "$STATUS" 404
anon POST "/api/v2/tasks/$unknown/callback?attempt=1&token=abc" '{"status":"succeeded"}'
expect_eq "(e) callback for an unknown id is 404" "$STATUS" 404
check "(e) ... and created no task file" test ! -e "$(find "$STATE/tasks" -name "$unknown.json" | head -n 1)"
anon POST /api/v2/tasks '{"model":"cog-m","input":1}'
expect_eq "(e) POST without a token is 401" "$STATUS" 401
anon GET "/api/v2/tasks/$id"
expect_eq "(e) GET without a token is 401" "$STATUS" 401
api_as wrong-token-0123456789 GET /api/v2/tasks
expect_eq "(e) list with a wrong token is 403" "$STATUS" 403

# ---------------------------------------------------------------- (f) validation
n_tasks=$(count_files tasks)
n_created=$(count_files created)
n_queue=$(count_files queue)
n_requests=$(mock cog /__stats | jq .received)
# bad BODY FIELD: the POST is refused with 400 naming FIELD
bad() {
	client POST /api/v2/tasks "$1"
	if [ "$STATUS" = 400 ] && [ "$(jget .field)" = "/$2" ] && [ "$(jget .status)" = 400 ]; then
		ok "(f) $3: 400 with field $2"
	else
		not_ok "(f) $3: 400 with field $2 (got $STATUS $BODY)"
	fi
}
bad '{"input":{"a":1}}' model "model missing"
bad '{"model":"","input":1}' model "empty model"
bad '{"model":42,"input":1}' model "model not a string"
bad '{"model":"cog-m"}' input "input missing"
bad '{"model":"cog-m","input":1,"priority":1001}' priority "priority above range"
bad '{"model":"cog-m","input":1,"priority":-1001}' priority "priority below range"
bad '{"model":"cog-m","input":1,"priority":"high"}' priority "priority not a number"
bad '{"model":"cog-m","input":1,"priority":1.5}' priority "priority not an integer"
bad '{"model":"cog-m","input":1,"tags":"fast"}' tags "tags not an array"
bad '{"model":"cog-m","input":1,"tags":[1]}' tags "tags with a number"
bad '{"model":"cog-m","input":1,"tags":[""]}' tags "tags with an empty string"
bad '{"model":"cog-m","input":1,"maxAttempts":0}' maxAttempts "maxAttempts 0"
bad '{"model":"cog-m","input":1,"timeoutSeconds":0}' timeoutSeconds "timeoutSeconds 0"
bad '{"model":"cog-m","input":1,"group":7}' group "group not a string"
bad '{"model":"cog-m","input":1,"affinityKey":""}' affinityKey "empty affinityKey"
bad '{"model":"cog-m","input":1,"timeoutSecond":5}' timeoutSecond "a typo'd member"
bad '{"modle":"cog-m","input":1}' modle "a typo'd model"
bad '{"model":"cog-m","input":{},"model":"n"}' model "a repeated member"
client POST /api/v2/tasks '[1,2]'
expect_eq "(f) a body that is not an object is 400" "$STATUS" 400
client POST /api/v2/tasks '{"model":"cog-m","input":'
expect_eq "(f) malformed JSON is 400" "$STATUS" 400
expect_eq "(f) no task file was stored by the refused requests" "$(count_files tasks)" "$n_tasks"
expect_eq "(f) no created-index entry either" "$(count_files created)" "$n_created"
expect_eq "(f) no queue entry either" "$(count_files queue)" "$n_queue"
expect_eq "(f) and nothing reached the backend" "$(mock cog /__stats | jq .received)" "$n_requests"

# ---------------------------------------------------------------- (g) listing
# 7 tasks for a model no server serves: they wait QUEUED.
queued=()
for i in 1 2 3 4 5 6 7; do
	client POST /api/v2/tasks "{\"model\":\"nobody\",\"input\":{\"i\":$i}}"
	queued+=("$(jget .id)")
done
expect_eq "(g) a task for a model no server serves is QUEUED" "$(task_field "${queued[0]}" .status)" QUEUED
client GET '/api/v2/tasks?limit=200'
expect_eq "(g) list answers 200" "$STATUS" 200
echo "$BODY" > "$WORK/all.json"
total=$(count_files tasks)
expect_eq "(g) the full list has every task ($total)" "$(jq '.items | length' "$WORK/all.json")" "$total"
expect_eq "(g) ... and nextCursor null" "$(jq -r .nextCursor "$WORK/all.json")" null
check "(g) ... newest first" jqe '[.items[].createdAt] as $c | $c == ($c | sort | reverse)' "$WORK/all.json"
expect_eq "(g) ... the last task created comes first" "$(jq -r '.items[0].id' "$WORK/all.json")" "${queued[6]}"
expect_eq "(g) ... the first task created comes last" "$(jq -r '.items[-1].id' "$WORK/all.json")" "$id"
check "(g) list items carry no secret hash" bash -c "! grep -q secretHash '$WORK/all.json'"

# paging with limit=3: no duplicates, no gaps, the same order, null at the end
cursor="" pages=0
: > "$WORK/paged.ids"
for i in $(seq 1 20); do
	q="/api/v2/tasks?limit=3"
	[ -n "$cursor" ] && q="$q&cursor=$(jq -rn --arg c "$cursor" '$c | @uri')"
	client GET "$q"
	[ "$STATUS" = 200 ] || { not_ok "(g) page $i answers 200 (got $STATUS $BODY)"; break; }
	pages=$((pages + 1))
	n=$(jget '.items | length')
	jget '.items[].id' >> "$WORK/paged.ids"
	cursor=$(jget '.nextCursor // empty')
	[ -z "$cursor" ] && break
	[ "$n" = 3 ] || { not_ok "(g) a page with a nextCursor is full (page $i has $n)"; break; }
done
expect_eq "(g) limit=3 pages: ceil($total/3) pages" "$pages" $(((total + 2) / 3))
expect_eq "(g) pages hold no duplicates" "$(sort "$WORK/paged.ids" | uniq -d | wc -l)" 0
check "(g) pages concatenated equal the full list, in order" \
	diff <(jq -r '.items[].id' "$WORK/all.json") "$WORK/paged.ids"
client GET "/api/v2/tasks?limit=$total"
expect_eq "(g) limit=<exact count> returns all" "$(jget '.items | length')" "$total"
client GET '/api/v2/tasks?limit=1'
expect_eq "(g) limit=1 returns one item" "$(jget '.items | length')" 1
check "(g) ... with a nextCursor" test "$(jget .nextCursor)" != null

# filters
client GET '/api/v2/tasks?status=QUEUED&limit=200'
expect_eq "(g) status=QUEUED: exactly the 7 queued tasks" \
	"$(jget '[.items[].id] | sort | join(",")')" "$(printf '%s\n' "${queued[@]}" | sort | paste -sd,)"
client GET '/api/v2/tasks?status=COMPLETED&limit=200'
n_done=$(jq '[.items[] | select(.status == "COMPLETED")] | length' "$WORK/all.json")
expect_eq "(g) status=COMPLETED returns every completed task ($n_done)" "$(jget '.items | length')" "$n_done"
check "(g) ... and only completed ones" jqe '.items | all(.status == "COMPLETED")' <<< "$BODY"
client GET '/api/v2/tasks?status=FAILED'
expect_eq "(g) status=FAILED is empty" "$(jget '.items | length') $(jget .nextCursor)" "0 null"
client GET '/api/v2/tasks?serverId=c1&limit=200'
n_c1=$(jq '[.items[] | select(.serverId == "c1")] | length' "$WORK/all.json")
check "(g) serverId=c1 has tasks ($n_c1)" test "$n_c1" -ge 3
expect_eq "(g) serverId=c1 returns every task of c1" "$(jget '.items | length')" "$n_c1"
check "(g) ... and only tasks of c1" jqe '.items | all(.serverId == "c1")' <<< "$BODY"
client GET '/api/v2/tasks?serverId=h1&status=COMPLETED'
expect_eq "(g) serverId=h1&status=COMPLETED: the sync task" "$(jc '[.items[].id]')" "[\"$sid\"]"
client GET '/api/v2/tasks?serverId=nosuchserver'
expect_eq "(g) an unknown serverId is an empty list" "$STATUS $(jget '.items | length')" "200 0"
# filtered paging: status=QUEUED two at a time
cursor="" : > "$WORK/q.ids"
for i in $(seq 1 10); do
	q="/api/v2/tasks?status=QUEUED&limit=2"
	[ -n "$cursor" ] && q="$q&cursor=$(jq -rn --arg c "$cursor" '$c | @uri')"
	client GET "$q"
	jget '.items[].id' >> "$WORK/q.ids"
	cursor=$(jget '.nextCursor // empty')
	[ -z "$cursor" ] && break
done
expect_eq "(g) status=QUEUED paged by 2: the 7 tasks, newest first, once each" \
	"$(paste -sd, "$WORK/q.ids")" "$(printf '%s\n' "${queued[@]}" | tac | paste -sd,)"

# bad filter values
badq() {
	client GET "$1"
	if [ "$STATUS" = 400 ] && [ "$(jget .field)" = "$2" ]; then
		ok "(g) $1: 400 with field $2"
	else
		not_ok "(g) $1: 400 with field $2 (got $STATUS $BODY)"
	fi
}
badq '/api/v2/tasks?status=DONE' status
badq '/api/v2/tasks?status=queued' status
badq '/api/v2/tasks?limit=0' limit
badq '/api/v2/tasks?limit=201' limit
badq '/api/v2/tasks?limit=ten' limit
badq '/api/v2/tasks?limit=-5' limit
badq '/api/v2/tasks?serverId=..%2Fetc' serverId
badq '/api/v2/tasks?cursor=%3Cscript%3E' cursor

check "(g) every JSON file of the state tree parses" all_state_parses
# ---------------------------------------------------------------- (h) Cog events
set_config 'del(.cog)'
client POST /api/v2/tasks '{"model":"cog-m","input":{"prompt":"lean"}}'
hid=$(jget .id)
check "(h) a task with the default events completes" wait_for is_status "$hid" COMPLETED
mock cog /__requests > "$WORK/h.req"
expect_eq "(h) by default only the completed webhook is asked for" \
	"$(jq -c --arg p "/predictions/$hid-1" '[.[] | select(.path == $p) | .body | fromjson | .webhook_events_filter][0]' "$WORK/h.req")" \
	'["completed"]'
client GET "/api/v2/tasks/$hid"
expect_eq "(h) ... so no backend status was recorded" "$(jget .progress.status)" null
check "(h) ... and still its output" jqe '.result.output != null' <<< "$BODY"

finish
