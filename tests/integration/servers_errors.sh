#!/usr/bin/env bash
# Every error case of the server routes, through lighttpd: 404/405/401/403/400
# (with "field")/413/415, invalid ids in the path, unknown servers, heartbeat
# auth. None of the bad requests may change the state tree, and nothing ever
# answers 500. Then the good heartbeats, and REDIRECT_HTTP_AUTHORIZATION through
# the binary run as plain CGI.
. "$(dirname "$0")/../lib.sh"

H="$WORK/headers"
LOG="$WORK/statuses"
: > "$LOG"

# req TOKEN METHOD PATH [BODY [CONTENT_TYPE]]: sets STATUS and BODY, headers in $H.
# A BODY starting with @ names a file. Every status is logged to $LOG.
req() {
	local token=$1 method=$2 path=$3 args=()
	[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
	[ $# -ge 4 ] && args+=(--data-binary "$4" -H "Content-Type: ${5:-application/json}")
	STATUS=$(curl -s -m 30 --path-as-is -o "$WORK/body" -D "$H" -w '%{http_code}' \
		-X "$method" "${args[@]}" "$BASE$path")
	BODY=$(cat "$WORK/body")
	echo "$STATUS $method ${path:0:80}" >> "$LOG"
}

# hdr NAME: the value of a response header of the last req (CR stripped).
hdr() {
	tr -d '\r' < "$H" | sed -n "s/^$1:[[:space:]]*//Ip" | tail -n 1
}

is_problem() {
	[ "$(hdr Content-Type)" = application/problem+json ] &&
		printf '%s' "$BODY" | jq -e --argjson s "$STATUS" \
			'.status == $s and (.title | type) == "string" and (.detail | length) > 0' > /dev/null
}

# expect_problem DESC CODE [FIELD]: status, problem+json body, and "field" if given.
expect_problem() {
	local what=$1 code=$2
	expect_eq "$what: status" "$STATUS" "$code"
	check "$what: problem+json" is_problem
	if [ $# -ge 3 ]; then
		expect_eq "$what: field" "$(printf '%s' "$BODY" | jq -r 'if has("field") then .field else "(none)" end' 2> /dev/null)" "$3"
	fi
}

# snapshot: every file of the state tree (dot files included) but run/ (health
# probe) and locks/ (stable lock files an update may create), with its hash.
snapshot() {
	(cd "$STATE" && find . \( -path ./run -o -path ./locks \) -prune -o -type f -print0 |
		sort -z | xargs -0 -r sha256sum)
}

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"

CB1=callback-secret-one-0123456789
CB2=callback-secret-two-0123456789
base='{"id":"bad-1","name":"bad","protocol":"http-json","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h"},"capabilities":{"maxConcurrent":2,"supportedModels":["sdxl"]},"weight":1,"groups":["a"],"tags":["t"]}'
check "the base registration is valid JSON" bash -c 'jq -e . > /dev/null <<< "$1"' _ "$base"

reg() { # reg ID CALLBACK_TOKEN
	req "$ADMIN" POST /api/v2/servers "$(jq -c --arg id "$1" --arg cb "$2" \
		'.id = $id | .callbackToken = $cb' <<< "$base")"
}
reg srv-1 "$CB1"
expect_eq "register srv-1 (with callbackToken)" "$STATUS" 201
expect_eq "srv-1 reports a callback token" "$(jget .hasCallbackToken)" true
reg srv-2 "$CB2"
expect_eq "register srv-2 (another callbackToken)" "$STATUS" 201

before=$(snapshot)
check "snapshot lists the two servers" grep -q 'servers/srv-2.json' <<< "$before"

# ---- routing: 404 and 405 ----
req "$ADMIN" GET /api/v2/nope
expect_problem "unknown route" 404
req "" GET /api/v2/servers/srv-1/nope
expect_problem "unknown sub-route, no token" 404
req "$ADMIN" GET /index.html
expect_problem "path outside /api/v2" 404
req "$ADMIN" GET /api/v2/servers/
expect_problem "trailing slash is not a route" 404

req "$ADMIN" PATCH /api/v2/servers/srv-1
expect_problem "PATCH on a server" 405
expect_eq "405 Allow lists GET, DELETE" "$(hdr Allow)" "GET, DELETE"
req "$ADMIN" DELETE /api/v2/servers
expect_problem "DELETE on the collection" 405
expect_eq "405 Allow lists POST, GET" "$(hdr Allow)" "POST, GET"
req "$ADMIN" GET /api/v2/servers/srv-1/maintenance
expect_problem "GET on maintenance" 405
expect_eq "405 Allow is PUT" "$(hdr Allow)" PUT
req "$ADMIN" GET /api/v2/servers/srv-1/heartbeat
expect_eq "405 on heartbeat GET, Allow is POST" "$STATUS $(hdr Allow)" "405 POST"
req "" PUT /api/v2/health '{}'
expect_problem "PUT on health" 405
expect_eq "405 Allow is GET" "$(hdr Allow)" GET

# ---- authentication ----
req "" GET /api/v2/servers
expect_problem "list without a token" 401
check "401 has WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$H"
req "" POST /api/v2/servers "$base"
expect_problem "register without a token" 401
check "401 (register) has WWW-Authenticate" grep -qi '^WWW-Authenticate: Bearer' "$H"
req "" DELETE /api/v2/servers/srv-1
expect_problem "delete without a token" 401
STATUS=$(curl -s -m 30 -o "$WORK/body" -D "$H" -w '%{http_code}' -H 'Authorization: Token abc' "$BASE/api/v2/servers")
BODY=$(cat "$WORK/body"); echo "$STATUS GET (Token scheme)" >> "$LOG"
expect_problem "an Authorization that is not Bearer" 401
STATUS=$(curl -s -m 30 -o "$WORK/body" -D "$H" -w '%{http_code}' -H 'Authorization: Bearer ' "$BASE/api/v2/servers")
BODY=$(cat "$WORK/body"); echo "$STATUS GET (empty Bearer)" >> "$LOG"
expect_problem "an empty Bearer token" 401

req wrong-token-0123456789 GET /api/v2/servers
expect_problem "list with a wrong token" 403
req wrong-token-0123456789 GET /api/v2/servers/srv-1
expect_problem "get with a wrong token" 403
req wrong-token-0123456789 POST /api/v2/servers "$base"
expect_problem "register with a wrong token" 403
req "$CB1" GET /api/v2/servers
expect_problem "a callback token is not a client token" 403

req "$CLIENT" POST /api/v2/servers "$base"
expect_problem "client token on register" 403
req "$CLIENT" PUT /api/v2/servers/srv-1/maintenance '{"enabled":true}'
expect_problem "client token on maintenance" 403
req "$CLIENT" DELETE /api/v2/servers/srv-1
expect_problem "client token on delete" 403
req "$CLIENT" DELETE '/api/v2/servers/srv-1?force=1'
expect_problem "client token on forced delete" 403
req "$CLIENT" GET /api/v2/servers/srv-1
expect_eq "the client token still reads srv-1" "$STATUS" 200
# (nothing answers srv-1's health endpoint: out of maintenance it is starting)
expect_eq "srv-1 is not in maintenance after the refused calls" "$(jget .status)" starting

# ---- bodies: JSON, object, media type, size ----
req "$ADMIN" POST /api/v2/servers '{"id":"bad-1",'
expect_problem "truncated JSON" 400 "/"
check "bad JSON detail says it is not valid JSON" grep -q 'not valid JSON' <<< "$(jget .detail)"
req "$ADMIN" POST /api/v2/servers '{"id":"bad-1",}'
expect_problem "JSON with a trailing comma" 400 "/"
check "trailing comma detail names a parse error" grep -qi 'parse error\|invalid' <<< "$(jget .detail)"
req "$ADMIN" POST /api/v2/servers "{'id':'bad-1'}"
expect_problem "single-quoted pseudo JSON" 400 "/"
req "$ADMIN" POST /api/v2/servers "$(printf '{"id":"bad-1","name":"\xff\xfe"}')"
expect_problem "invalid UTF-8 in a string" 400
for body in '[]' '"server"' '42' 'null' 'true' '[{"id":"bad-1"}]'; do
	req "$ADMIN" POST /api/v2/servers "$body"
	expect_problem "non-object body $body" 400 "/"
	check "non-object detail says it must be an object ($body)" grep -q 'must be a JSON object' <<< "$(jget .detail)"
done
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance '[true]'
expect_problem "maintenance with an array body" 400 "/"
req "$ADMIN" POST /api/v2/servers ''
expect_problem "register with an empty body" 400 "/"

req "$ADMIN" POST /api/v2/servers "$base" text/plain
expect_problem "Content-Type text/plain" 415
req "$ADMIN" POST /api/v2/servers "$base" application/x-www-form-urlencoded
expect_problem "Content-Type form-urlencoded" 415
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance '{"enabled":true}' text/xml
expect_problem "maintenance with Content-Type text/xml" 415
req "$ADMIN" POST /api/v2/servers/srv-1/heartbeat '{}' text/plain
expect_problem "heartbeat with Content-Type text/plain" 415

big_body() { # big_body BYTES FILE: a JSON object of about BYTES bytes
	{ printf '{"id":"bad-1","name":"'; head -c "$1" /dev/zero | tr '\0' 'a'; printf '"}'; } > "$2"
}
big_body $((200 * 1024)) "$WORK/big200"
req "$ADMIN" POST /api/v2/servers "@$WORK/big200"
expect_problem "200 KiB body" 413
big_body $((110 * 1024)) "$WORK/big110"
req "$ADMIN" POST /api/v2/servers "@$WORK/big110"
expect_problem "110 KiB body (above maxBodyBytes, below lighttpd's cap)" 413
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance "@$WORK/big110"
expect_problem "110 KiB maintenance body" 413

# ---- registration fields: each invalid one is 400 naming it ----
# bad DESC JQ_EDIT FIELD: the base registration (with an id of its own, unless the
# edit sets one) edited by JQ_EDIT must be refused with 400 naming FIELD. One that
# is wrongly accepted is reported and removed, so it does not hide later cases.
n_bad=0
bad() {
	local body id
	n_bad=$((n_bad + 1))
	body=$(jq -c --arg id "bad-$n_bad" ".id = \$id | $2" <<< "$base") || { not_ok "$1: jq edit"; return; }
	req "$ADMIN" POST /api/v2/servers "$body"
	expect_problem "$1" 400 "/${3//.//}"
	if [ "${STATUS:0:1}" = 2 ]; then
		id=$(jget .id)
		not_ok "$1: the refused registration was stored as '$id'"
		req "$ADMIN" DELETE "/api/v2/servers/$id?force=1"
	fi
}
bad "id with a slash" '.id = "../etc"' id
bad "id of 100 characters" '.id = ("a" * 100)' id
bad "empty id" '.id = ""' id
bad "id starting with -" '.id = "-x"' id
bad "id that is a number" '.id = 42' id
bad "empty name" '.name = ""' name
bad "name of 200 characters" '.name = ("n" * 200)' name
bad "name that is a number" '.name = 7' name
bad "unknown protocol" '.protocol = "grpc"' protocol
bad "protocol that is not a string" '.protocol = ["cog"]' protocol
bad "no endpoints" 'del(.endpoints)' endpoints
bad "endpoints as a string" '.endpoints = "http://127.0.0.1:9/p"' endpoints
bad "no endpoints.predict" 'del(.endpoints.predict)' endpoints.predict
bad "endpoints.predict ftp://" '.endpoints.predict = "ftp://127.0.0.1/p"' endpoints.predict
bad "endpoints.predict file://" '.endpoints.predict = "file:///etc/passwd"' endpoints.predict
bad "endpoints.predict gopher://" '.endpoints.predict = "gopher://127.0.0.1/"' endpoints.predict
bad "endpoints.predict not a URL" '.endpoints.predict = "not a url"' endpoints.predict
bad "endpoints.predict without host" '.endpoints.predict = "http:///p"' endpoints.predict
bad "endpoints.predict http:/p" '.endpoints.predict = "http:/p"' endpoints.predict
bad "endpoints.predict with an empty host" '.endpoints.predict = "http://:80/p"' endpoints.predict
bad "endpoints.predict with white space" '.endpoints.predict = "http://127.0.0.1:9/a b"' endpoints.predict
bad "endpoints.predict a number" '.endpoints.predict = 5' endpoints.predict
bad "endpoints.predict of 3000 characters" '.endpoints.predict = ("http://127.0.0.1/" + "p" * 3000)' endpoints.predict
bad "no endpoints.health" 'del(.endpoints.health)' endpoints.health
bad "endpoints.health file://" '.endpoints.health = "file:///tmp/x"' endpoints.health
bad "endpoints.metrics ftp://" '.endpoints.metrics = "ftp://127.0.0.1/m"' endpoints.metrics
bad "capabilities as an array" '.capabilities = []' capabilities
bad "capabilities.maxConcurrent 0" '.capabilities.maxConcurrent = 0' capabilities.maxConcurrent
bad "capabilities.maxConcurrent \"2\"" '.capabilities.maxConcurrent = "2"' capabilities.maxConcurrent
bad "capabilities.maxConcurrent -1" '.capabilities.maxConcurrent = -1' capabilities.maxConcurrent
bad "capabilities.maxConcurrent 1.5" '.capabilities.maxConcurrent = 1.5' capabilities.maxConcurrent
bad "capabilities.maxConcurrent 10001" '.capabilities.maxConcurrent = 10001' capabilities.maxConcurrent
bad "capabilities.maxConcurrent 1e30" '.capabilities.maxConcurrent = 1e30' capabilities.maxConcurrent
bad "capabilities.supportedModels a string" '.capabilities.supportedModels = "sdxl"' capabilities.supportedModels
bad "capabilities.supportedModels an object" '.capabilities.supportedModels = {"a":1}' capabilities.supportedModels
bad "capabilities.supportedModels [1]" '.capabilities.supportedModels = [1]' capabilities.supportedModels
bad "capabilities.supportedModels [\"\"]" '.capabilities.supportedModels = [""]' capabilities.supportedModels
bad "capabilities.async \"yes\"" '.capabilities.async = "yes"' capabilities.async
bad "capabilities.callback 1" '.capabilities.callback = 1' capabilities.callback
bad "weight 0" '.weight = 0' weight
bad "weight 1001" '.weight = 1001' weight
bad "weight \"1\"" '.weight = "1"' weight
bad "priority 5000" '.priority = 5000' priority
bad "groups a string" '.groups = "a"' groups
bad "groups [1]" '.groups = ["a", 1]' groups
bad "groups [null]" '.groups = [null]' groups
bad "groups [\"\"]" '.groups = [""]' groups
bad "groups with 65 entries" '.groups = [range(65) | "g\(.)"]' groups
bad "groups element of 65 characters" '.groups = ["g" * 65]' groups
bad "groups element with a control character" '.groups = ["a\u0001b"]' groups
bad "tags [{}]" '.tags = [{}]' tags
bad "callbackToken too short" '.callbackToken = "short"' callbackToken
bad "callbackToken of 15 characters" '.callbackToken = ("c" * 15)' callbackToken
bad "callbackToken of 300 characters" '.callbackToken = ("c" * 300)' callbackToken
bad "callbackToken a number" '.callbackToken = 1234567890123456789' callbackToken
req "$CLIENT" GET /api/v2/servers
expect_eq "no refused registration was stored" "$(jget '[.items[].id] | join(",")')" "srv-1,srv-2"

req "$CLIENT" GET '/api/v2/servers?status=bogus'
expect_problem "list with an unknown status filter" 400 status

# ---- ids in the path ----
long=$(printf 'a%.0s' $(seq 100))
# Apache refuses an encoded slash (%2F) with its own HTML 404 before any .htaccess or
# program sees the request; only the server configuration can change that
# (AllowEncodedSlashes, which the VPS virtual host sets), not a shared-hosting customer.
# Under apache-cgi (the .htaccess setup) the status is all that can be checked there.
expect_id_404() { # DESC ID
	if [ "${FRONTEND:-lighttpd}" = apache-cgi ] && [[ ${2,,} == *%2f* ]]; then
		expect_eq "$1: status (Apache's own 404)" "$STATUS" 404
	else
		expect_problem "$1" 404
	fi
}
for id in '..%2F..%2Fetc' '..%2f..%2fconfig' '%2e%2e' "$long" 'srv-1%2F..%2Fsrv-2' '.srv-1' 'srv-1.json'; do
	req "$ADMIN" GET "/api/v2/servers/$id"
	expect_id_404 "GET invalid id ${id:0:24}" "$id"
	req "$ADMIN" PUT "/api/v2/servers/$id/maintenance" '{"enabled":true}'
	expect_id_404 "maintenance invalid id ${id:0:24}" "$id"
	req "$ADMIN" POST "/api/v2/servers/$id/heartbeat" ''
	expect_id_404 "heartbeat invalid id ${id:0:24}" "$id"
	req "$ADMIN" DELETE "/api/v2/servers/$id?force=1"
	expect_id_404 "DELETE invalid id ${id:0:24}" "$id"
done
check "nothing appeared next to the state tree" test ! -e "$STATE/../etc"
check "config.json is still there" test -s "$STATE/config.json"

# ---- unknown servers ----
req "$ADMIN" GET /api/v2/servers/ghost-1
expect_problem "GET unknown server" 404
req "$ADMIN" PUT /api/v2/servers/ghost-1/maintenance '{"enabled":true}'
expect_problem "maintenance of an unknown server" 404
req "$ADMIN" DELETE /api/v2/servers/ghost-1
expect_problem "DELETE unknown server" 404
req "$ADMIN" DELETE '/api/v2/servers/ghost-1?force=1'
expect_problem "forced DELETE of an unknown server" 404
req "$ADMIN" POST /api/v2/servers/ghost-1/heartbeat ''
expect_problem "heartbeat of an unknown server" 404
req "$CB1" POST /api/v2/servers/ghost-1/heartbeat ''
expect_problem "heartbeat of an unknown server with a callback token" 404
check "no ghost-1 file was created" test ! -e "$STATE/servers/ghost-1.json"

# ---- maintenance bodies ----
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance '{}'
expect_problem "maintenance without enabled" 400 /enabled
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance '{"enable":true}'
expect_problem "maintenance with a misspelt enabled" 400 /enable
check "... suggesting enabled" jqe '.detail | test("did you mean .enabled.")' <<< "$BODY"
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance '{"enabled":"true"}'
expect_problem "maintenance with enabled \"true\"" 400 /enabled
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance '{"enabled":1}'
expect_problem "maintenance with enabled 1" 400 /enabled
req "$ADMIN" PUT /api/v2/servers/srv-1/maintenance ''
expect_problem "maintenance with an empty body" 400 "/"

# ---- heartbeat auth (refusals) ----
req "" POST /api/v2/servers/srv-1/heartbeat ''
expect_problem "heartbeat without a token" 401
check "heartbeat 401 has WWW-Authenticate" grep -qi '^WWW-Authenticate: Bearer' "$H"
req "$CB2" POST /api/v2/servers/srv-1/heartbeat ''
expect_problem "heartbeat with another server's callback token" 403
req "$CLIENT" POST /api/v2/servers/srv-1/heartbeat ''
expect_problem "heartbeat with the client token" 403
req wrong-token-0123456789 POST /api/v2/servers/srv-1/heartbeat ''
expect_problem "heartbeat with an unknown token" 403
req "$ADMIN" POST /api/v2/servers/srv-1/heartbeat '[1]'
expect_problem "heartbeat with a non-object body" 400 "/"
req "$ADMIN" POST /api/v2/servers/srv-1/heartbeat '{"load":'
expect_problem "heartbeat with bad JSON" 400 "/"

# ---- nothing above changed the tree ----
after=$(snapshot)
if [ "$before" == "$after" ]; then
	ok "the bad requests left the state tree unchanged"
else
	not_ok "the bad requests left the state tree unchanged"
	diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -20
fi
check "nothing was quarantined" test -z "$(ls -A "$STATE/corrupt")"
check "every state file parses (after the bad requests)" all_state_parses

# ---- heartbeats that are allowed ----
req "$CLIENT" GET /api/v2/servers/srv-1
hb0=$(jget .lastHeartbeat)
sleep 0.05
req "$ADMIN" POST /api/v2/servers/srv-1/heartbeat ''
expect_eq "heartbeat with the admin token is 200" "$STATUS" 200
hb1=$(jget .lastHeartbeat)
check "the admin heartbeat moved lastHeartbeat ($hb0 -> $hb1)" test "$hb1" -gt "$hb0"
req "$CLIENT" GET /api/v2/servers/srv-1
expect_eq "GET shows the new lastHeartbeat" "$(jget .lastHeartbeat)" "$hb1"
sleep 0.05
req "$CB1" POST /api/v2/servers/srv-1/heartbeat '{"note":"alive"}'
expect_eq "heartbeat with srv-1's callbackToken is 200" "$STATUS" 200
hb2=$(jget .lastHeartbeat)
check "the callback heartbeat moved lastHeartbeat ($hb1 -> $hb2)" test "$hb2" -gt "$hb1"
expect_eq "the stored document has it" "$(jq -r .lastHeartbeat "$STATE/servers/srv-1.json")" "$hb2"
check "the stored document keeps only the hash of the callback token" \
	bash -c "! grep -q '$CB1' '$STATE/servers/srv-1.json' && grep -q '\"callbackTokenHash\":\"sha256:' '$STATE/servers/srv-1.json'"
req "$CB2" POST /api/v2/servers/srv-2/heartbeat ''
expect_eq "srv-2's own callbackToken works for srv-2" "$STATUS" 200

# ---- REDIRECT_HTTP_AUTHORIZATION: the binary as plain CGI ----
# cgi METHOD URI AUTH [BODY]: runs taskgate.fcgi once; sets STATUS (from "Status:").
cgi() {
	local body=${4-} envs=()
	[ -n "$3" ] && envs+=("REDIRECT_HTTP_AUTHORIZATION=$3")
	[ -n "$body" ] && envs+=(CONTENT_TYPE=application/json)
	env -i PATH="$PATH" GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD="$1" REQUEST_URI="$2" \
		SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 STATE_DIR="$STATE" \
		CONTENT_LENGTH="${#body}" "${envs[@]}" \
		timeout 10 "$BUILD/taskgate.fcgi" <<< "$body" > "$WORK/cgi.out" 2> "$WORK/cgi.err"
	STATUS=$(sed -n 's/^Status: \([0-9]*\).*/\1/p' "$WORK/cgi.out" | head -n 1 | tr -d '\r')
	BODY=$(sed '1,/^\r\{0,1\}$/d' "$WORK/cgi.out")
	echo "$STATUS CGI $1 $2" >> "$LOG"
}
cgi GET /api/v2/servers "Bearer $CLIENT"
expect_eq "CGI: REDIRECT_HTTP_AUTHORIZATION client token lists servers" "$STATUS" 200
expect_eq "CGI: the list has both servers" "$(jget .count)" 2
cgi GET /api/v2/servers "Bearer wrong-token-0123456789"
expect_eq "CGI: REDIRECT_HTTP_AUTHORIZATION with a wrong token is 403" "$STATUS" 403
cgi GET /api/v2/servers ""
expect_eq "CGI: no Authorization at all is 401" "$STATUS" 401
check "CGI: the 401 has WWW-Authenticate" grep -qi '^WWW-Authenticate: Bearer' "$WORK/cgi.out"
cgi POST /api/v2/servers/srv-1/heartbeat "Bearer $ADMIN" ''
expect_eq "CGI: heartbeat with the admin token via REDIRECT_HTTP_AUTHORIZATION" "$STATUS" 200
cgi POST /api/v2/servers/srv-1/heartbeat "Bearer $CB1" '{}'
expect_eq "CGI: heartbeat with the callback token via REDIRECT_HTTP_AUTHORIZATION" "$STATUS" 200
cgi PUT /api/v2/servers/srv-2/maintenance "Bearer $ADMIN" '{"enabled":true}'
expect_eq "CGI: admin write via REDIRECT_HTTP_AUTHORIZATION" "$STATUS" 200
expect_eq "CGI: the write is visible through lighttpd" \
	"$(req "$CLIENT" GET /api/v2/servers/srv-2; jget .status)" maintenance
cgi PUT /api/v2/servers/srv-2/maintenance "Bearer $CLIENT" '{"enabled":false}'
expect_eq "CGI: client token via REDIRECT_HTTP_AUTHORIZATION on an admin route is 403" "$STATUS" 403

# ---- never a 500 ----
n_req=$(wc -l < "$LOG")
fives=$(grep -c '^5' "$LOG" || true)
expect_eq "no 5xx among the $n_req answers" "$fives" 0
grep '^5' "$LOG" | head -5 | sed 's/^/# /'
check "every answer had a status" bash -c "! grep -q '^000\|^ ' '$LOG'"
check "every state file parses (at the end)" all_state_parses
echo "# statuses seen: $(cut -d' ' -f1 "$LOG" | sort | uniq -c | tr -s ' \n' ' ')"
finish
