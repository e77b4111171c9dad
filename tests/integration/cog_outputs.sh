#!/usr/bin/env bash
# Cog's partial outputs: a model that yields its output piece by piece (an iterator)
# makes Cog send output webhooks carrying the list so far (the mock does as Cog
# 0.9.9: one per value but the last, none within 500 ms of the previous one). With
# cog.webhookEvents ["output", "completed"] each one updates the task's
# progress.output, so a client polling the task sees the pieces appear while it
# runs; the final list is result.output.
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
check "config.json: Cog sends output events" set_config '.cog.webhookEvents = ["output", "completed"]'
# Three values 2 s apart; the mock holds the prediction after the last one, so
# the test sees the running state for as long as it looks.
start_mock stream --protocol cog --slots 2 --delay-ms 6000 || not_ok "mock stream starts"
check "mock stream yields three outputs" mock_control stream '{"outputChunks":3,"hold":true}'
admin POST /api/v2/servers "{\"id\":\"stream\",\"protocol\":\"cog\",\"endpoints\":{\"predict\":\"http://127.0.0.1:$MOCK_PORT_stream/predictions\",\"health\":\"http://127.0.0.1:$MOCK_PORT_stream/health-check\"},\"capabilities\":{\"maxConcurrent\":2}}"
expect_eq "register stream" "$STATUS" 201

client POST /api/v2/tasks '{"model":"tokens","input":{"prompt":"hi"}}'
tid=$(jget .id)
expect_eq "the task is accepted" "$STATUS" 202
check "the PUT asked for output events" \
	wait_for bash -c "curl -s -m 5 http://127.0.0.1:$MOCK_PORT_stream/__requests | jq -e 'any(.[]; .method == \"PUT\" and (.body | fromjson | .webhook_events_filter | index(\"output\")))'"
outputs() { task_field "$tid" '.progress.output // [] | length'; }
two_outputs() { [ "$(outputs)" = 2 ]; }
check "progress.output shows the values so far (bounded 30 s)" wait_long two_outputs
client GET "/api/v2/tasks/$tid"
expect_eq "... while the task still runs" "$(jget .status)" PROCESSING
expect_eq "... as the list the model yielded" "$(jc .progress.output)" '["stream chunk 1","stream chunk 2"]'
check "the mock lets the prediction end" mock_control stream '{"hold":false}'
check "the task completes" wait_long is_status "$tid" COMPLETED
client GET "/api/v2/tasks/$tid"
expect_eq "result.output is the whole list" "$(jc .result.output)" '["stream chunk 1","stream chunk 2","stream chunk 3"]'
expect_eq "the mock sent two output webhooks and the completed one" \
	"$(mock stream /__stats | jq .webhooksDelivered)" 3
check "every JSON file of the state tree parses" all_state_parses
finish
