#!/usr/bin/env bash
# The server registry through lighttpd: register, list, maintenance, delete.
. "$(dirname "$0")/../lib.sh"

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"

anon GET /api/v2/health
expect_eq "health is public" "$STATUS" 200
expect_eq "health says state writable" "$(jget .stateWritable)" true

# A READY Cog behind it: the registration probes it and finds it up.
start_mock gpu --protocol cog || not_ok "mock gpu starts"
P=$MOCK_PORT_gpu
reg='{"id":"gpu-1","name":"GPU one","protocol":"cog","endpoints":{"predict":"http://127.0.0.1:'$P'/predictions","health":"http://127.0.0.1:'$P'/health-check"},"capabilities":{"maxConcurrent":2,"supportedModels":["sdxl"]},"groups":["a"],"tags":["fast"]}'
admin POST /api/v2/servers "$reg" -D "$WORK/headers"
expect_eq "register answers 201" "$STATUS" 201
check "register sets Location" grep -qi '^Location: /api/v2/servers/gpu-1' "$WORK/headers"
expect_eq "registered server is online" "$(jget .status)" online

admin POST /api/v2/servers "$reg"
expect_eq "second registration of the same id is 409" "$STATUS" 409

client GET /api/v2/servers
expect_eq "list has one server" "$(jget '.items | length')" 1
client GET '/api/v2/servers?model=sdxl&group=a&tag=fast&status=online'
expect_eq "filters that match keep it" "$(jget '.items[0].id')" gpu-1
client GET '/api/v2/servers?model=other'
expect_eq "model filter excludes" "$(jget '.items | length')" 0

admin PUT /api/v2/servers/gpu-1/maintenance '{"enabled":true}'
expect_eq "maintenance on" "$(jget .status)" maintenance
admin PUT /api/v2/servers/gpu-1/maintenance '{"enabled":false}'
expect_eq "maintenance off" "$(jget .status)" online

admin DELETE /api/v2/servers/gpu-1
expect_eq "delete answers 204" "$STATUS" 204
client GET /api/v2/servers/gpu-1
expect_eq "deleted server is 404" "$STATUS" 404
check "every state file parses" all_state_parses
finish
