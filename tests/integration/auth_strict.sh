#!/usr/bin/env bash
# Credentials and bodies a browser could be made to send, through the front end.
#  (a) HTTP Basic (the token as password) opens /status and nothing else: every
#      API route answers it 401 and changes nothing, so a page that once opened
#      /status cannot make the browser register a server or rebalance
#  (b) a simulated cross-site form post (Origin of another site, a form body,
#      the Basic credentials the browser keeps) gets 401, and with a Bearer token a
#      form or text/plain body, or a body with no Content-Type, gets 415
#  (c) Bearer is parsed strictly: one token68 word after the scheme, nothing after
#  (d) GET /api/v2/tasks/:id/retry works with Bearer only
#  (e) /api/v2/health says whether the Authorization header reached taskgate
# Only 127.0.0.1 is used; every request is bounded by curl -m.
. "$(dirname "$0")/../lib.sh"

code() { curl -s -m 30 -o "$WORK/out" -w '%{http_code}' "$@"; }
servers_now() { admin GET /api/v2/servers && jget '.items | length'; }

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
start_mock m --protocol cog --delay-ms 20 || not_ok "mock m starts"
check "register m1 with the Bearer admin token" register_mock m m1 '"capabilities":{"supportedModels":["m"]}'
n0=$(servers_now)
reg='{"id":"evil","protocol":"cog","endpoints":{"predict":"http://127.0.0.1:9/predictions","health":"http://127.0.0.1:9/health-check"}}'

# ---------------------------------------------------------------- (a) Basic
expect_eq "(a) /status with the admin token as Basic password: 200" \
	"$(code -u "operator:$ADMIN" "$BASE/status")" 200
expect_eq "(a) POST /api/v2/servers with Basic and a JSON body: 401" \
	"$(code -u "operator:$ADMIN" -H 'Content-Type: application/json' --data-binary "$reg" "$BASE/api/v2/servers")" 401
check "(a) ... the problem says Basic is for the status page" grep -q 'Basic is for the status page' "$WORK/out"
expect_eq "(a) PUT /api/v2/loadbalancer/config with Basic: 401" \
	"$(code -u "operator:$ADMIN" -X PUT -H 'Content-Type: application/json' --data-binary '{"algorithm":"p2c"}' "$BASE/api/v2/loadbalancer/config")" 401
expect_eq "(a) GET /api/v2/servers with Basic: 401" "$(code -u "x:$ADMIN" "$BASE/api/v2/servers")" 401
expect_eq "(a) GET /api/v2/tasks with the client token as Basic: 401" "$(code -u "x:$CLIENT" "$BASE/api/v2/tasks")" 401
expect_eq "(a) POST /api/v2/tasks with Basic: 401" \
	"$(code -u "x:$CLIENT" -H 'Content-Type: application/json' --data-binary '{"model":"m","input":{}}' "$BASE/api/v2/tasks")" 401
client GET /api/v2/loadbalancer/status
expect_eq "(a) the algorithm is unchanged" "$(jget .algorithm)" round-robin
expect_eq "(a) no server was registered" "$(servers_now)" "$n0"

# ---------------------------------------------------------------- (b) cross-site forms
expect_eq "(b) a cross-site form post with the browser's Basic credentials: 401" \
	"$(code -u "operator:$ADMIN" -H 'Origin: https://evil.example' -H 'Content-Type: application/x-www-form-urlencoded' \
		--data-urlencode "$reg" "$BASE/api/v2/servers")" 401
expect_eq "(b) ... and as text/plain (a CORS-simple type): 401" \
	"$(code -u "operator:$ADMIN" -H 'Origin: https://evil.example' -H 'Content-Type: text/plain' \
		--data-binary "$reg" "$BASE/api/v2/servers")" 401
expect_eq "(b) a form body with a Bearer token: 415" \
	"$(code -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/x-www-form-urlencoded' \
		--data-binary "$reg" "$BASE/api/v2/servers")" 415
expect_eq "(b) a text/plain body with a Bearer token: 415" \
	"$(code -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain' --data-binary "$reg" "$BASE/api/v2/servers")" 415
expect_eq "(b) a body with no Content-Type at all: 415" \
	"$(code -H "Authorization: Bearer $ADMIN" -H 'Content-Type:' --data-binary "$reg" "$BASE/api/v2/servers")" 415
expect_eq "(b) still no server registered" "$(servers_now)" "$n0"
expect_eq "(b) an empty body with no type (curl -d ''): accepted where a body is optional" \
	"$(code -H "Authorization: Bearer $ADMIN" -X POST -d '' "$BASE/api/v2/servers/m1/heartbeat")" 200

# ---------------------------------------------------------------- (c) strict Bearer
expect_eq "(c) 'Bearer <token>': 200" "$(code -H "Authorization: Bearer $CLIENT" "$BASE/api/v2/tasks")" 200
expect_eq "(c) 'bearer <token>' (the scheme is case-insensitive): 200" "$(code -H "Authorization: bearer $CLIENT" "$BASE/api/v2/tasks")" 200
expect_eq "(c) 'Bearer <token> ' (trailing space): 200" "$(code -H "Authorization: Bearer $CLIENT " "$BASE/api/v2/tasks")" 200
expect_eq "(c) 'Bearer <token> trailing-junk': 401" "$(code -H "Authorization: Bearer $CLIENT trailing-junk" "$BASE/api/v2/tasks")" 401
expect_eq "(c) 'Bearer <token>,x': 401" "$(code -H "Authorization: Bearer $CLIENT,x" "$BASE/api/v2/tasks")" 401
expect_eq "(c) 'Bearer' alone: 401" "$(code -H "Authorization: Bearer" "$BASE/api/v2/tasks")" 401
expect_eq "(c) 'Bearer<token>' with no space: 401" "$(code -H "Authorization: Bearer$CLIENT" "$BASE/api/v2/tasks")" 401
expect_eq "(c) 'Token <token>': 401" "$(code -H "Authorization: Token $CLIENT" "$BASE/api/v2/tasks")" 401
expect_eq "(c) a cookie carrying the token is no credential: 401" "$(code -H "Cookie: token=$CLIENT; Authorization=Bearer%20$CLIENT" "$BASE/api/v2/tasks")" 401
expect_eq "(c) a wrong token: 403" "$(code -H "Authorization: Bearer x$CLIENT" "$BASE/api/v2/tasks")" 403

# ---------------------------------------------------------------- (d) GET retry
client POST /api/v2/tasks '{"model":"nobody-serves-this","input":{}}'
tid=$(jget .id)
client DELETE "/api/v2/tasks/$tid"
expect_eq "(d) a queued task, cancelled" "$(task_field "$tid" .status)" CANCELLED
expect_eq "(d) GET .../retry with Basic: 401" "$(code -u "x:$ADMIN" "$BASE/api/v2/tasks/$tid/retry")" 401
expect_eq "(d) ... the task did not move" "$(task_field "$tid" .status)" CANCELLED
expect_eq "(d) GET .../retry with Bearer: 202" "$(code -H "Authorization: Bearer $CLIENT" "$BASE/api/v2/tasks/$tid/retry")" 202
expect_eq "(d) ... and the task waits in the queue again" "$(task_field "$tid" .status)" QUEUED
client DELETE "/api/v2/tasks/$tid"
# ------------------------------------------- (e) does the header reach taskgate
# /api/v2/health says, per request; "stripped" (suEXEC, apache_suexec.sh) never here.
anon GET /api/v2/health
expect_eq "(e) health without a header: authorization none" "$(jget .authorization)" none
expect_eq "(e) ... and no warning" "$(jget '.warnings | length')" 0
client GET /api/v2/health
expect_eq "(e) health with a Bearer token: received" "$(jget .authorization)" received
anon GET /api/v2/health -u "x:$ADMIN"
expect_eq "(e) health with HTTP Basic: received" "$(jget .authorization)" received
anon GET /api/v2/tasks
check "(e) a 401 without a header does not blame the web server" \
	bash -c 'printf "%s" "$1" | jq -e "(.detail | test(\"removed\") | not)" > /dev/null' _ "$BODY"
finish
