#!/usr/bin/env bash
# GET /api/v2/openapi.json through lighttpd: a valid OpenAPI 3.1 document that
# describes every route of cgi-bin/routes.c (method + path, ":id" -> "{id}"), with
# the auth each route needs, and whose schemas match what the server answers.
. "$(dirname "$0")/../lib.sh"

ROUTES_C="$ROOT/cgi-bin/routes.c"

# jqe ARGS...: jq -e, quietly (for check)

# "METHOD PATTERN FLAGS" for each entry of app_routes[], PATTERN in OpenAPI form.
table_routes() {
	sed -n '/app_routes\[\][[:space:]]*=/,/^};/p' "$ROUTES_C" |
		sed -n 's/^[[:space:]]*{[[:space:]]*"\([A-Z]*\)"[[:space:]]*,[[:space:]]*"\([^"]*\)"[[:space:]]*,[^,]*,\([^}]*\)}.*/\1 \2 \3/p' |
		awk '{ m = $1; p = $2; $1 = ""; $2 = ""; gsub(/[ \t]/, ""); print m, p, $0 }' |
		sed 's/:\([A-Za-z_][A-Za-z0-9_]*\)/{\1}/g'
}

# missing_routes DOC_FILE: prints each table route the document lacks; fails if any.
missing_routes() {
	local doc=$1 m p f bad=0
	while read -r m p f; do
		if ! jq -e --arg p "$p" --arg m "${m,,}" '.paths[$p][$m] | type == "object"' \
			"$doc" > /dev/null 2>&1; then
			echo "# missing from the document: $m $p"
			bad=1
		fi
	done < "$WORK/routes.txt"
	return $bad
}

# extra_routes DOC_FILE: documented /api/v2 operations the table does not have.
extra_routes() {
	local doc=$1 m p bad=0
	while read -r m p; do
		if ! awk -v m="${m^^}" -v p="$p" '$1 == m && $2 == p { f = 1 } END { exit !f }' \
			"$WORK/routes.txt"; then
			echo "# documented but not in routes.c: ${m^^} $p"
			bad=1
		fi
	done < <(jq -r '.paths | to_entries[] | .key as $p | .value | keys[]
		| select(IN("get","put","post","delete","patch","head","options","trace"))
		| "\(.) \($p)"' "$doc")
	return $bad
}

# auth_matches DOC_FILE: each operation's declared auth agrees with the route flags.
auth_matches() {
	local doc=$1 m p f want got sec bad=0
	while read -r m p f; do
		got=$(jq -r --arg p "$p" --arg m "${m,,}" '.paths[$p][$m]["x-taskgate-auth"] // "none"' "$doc")
		sec=$(jq -c --arg p "$p" --arg m "${m,,}" '.paths[$p][$m].security // "inherited"' "$doc")
		case $f in
		*R_ADMIN*) want=admin ;;
		*R_CLIENT*) want=client ;;
		*R_SELF_AUTH*) want=self ;;
		*) want=public ;;
		esac
		case $want in
		public) [ "$got" = public ] && [ "$sec" = '[]' ] ;;
		admin) [ "$got" = admin ] && [ "$sec" = '[{"adminToken":[]}]' ] ;;
		client) [ "$got" = client ] &&
			jq -e 'map(keys[0]) | sort == ["adminToken","clientToken"]' <<< "$sec" > /dev/null ;;
		self) [ "$got" != public ] && [ "$got" != none ] && [ "$sec" != '[]' ] &&
			[ "$sec" != inherited ] ;;
		esac || { echo "# $m $p: flags $f but x-taskgate-auth=$got security=$sec"; bad=1; }
	done < "$WORK/routes.txt"
	return $bad
}

# errors_documented DOC_FILE: protected routes document 401/403, JSON body routes
# 400/413/415, streamed bodies 400/413, routes with an id 404.
errors_documented() {
	local doc=$1 m p f code bad=0
	while read -r m p f; do
		local need=()
		case $f in *R_ADMIN* | *R_CLIENT* | *R_SELF_AUTH*) need+=(401 403) ;; esac
		case $f in *R_JSON_BODY* | *R_OPT_BODY*) need+=(400 413 415) ;; *R_STREAM_BODY*) need+=(400 413) ;; esac
		case $p in *'{'*) need+=(404) ;; esac
		for code in "${need[@]}"; do
			jq -e --arg p "$p" --arg m "${m,,}" --arg c "$code" \
				'.paths[$p][$m].responses[$c] != null' "$doc" > /dev/null ||
				{ echo "# $m $p does not document $code"; bad=1; }
		done
		case $f in *R_JSON_BODY*)
			jq -e --arg p "$p" --arg m "${m,,}" \
				'.paths[$p][$m].requestBody.content["application/json"].schema != null' \
				"$doc" > /dev/null || { echo "# $m $p has no JSON requestBody"; bad=1; } ;;
		esac
	done < "$WORK/routes.txt"
	return $bad
}

# refs_resolve DOC_FILE: every local "$ref" points at something in the document.
refs_resolve() {
	local doc=$1 bad
	bad=$(jq -r '. as $d | [.. | objects | select(has("$ref")) | ."$ref"] | unique[] as $r
		| if ($r | startswith("#/")) and
			($d | getpath($r[2:] | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~")))) != null
		  then empty else $r end' "$doc")
	[ -z "$bad" ] || { echo "# unresolved refs: $bad"; return 1; }
}

# keys_match DOC_FILE SCHEMA JSON: the answer has every required key of the schema
# and no key the schema does not list (top level).
keys_match() {
	local doc=$1 schema=$2 json=$3 out
	out=$(jq -rn --slurpfile d "$doc" --argjson v "$json" --arg s "$schema" '
		$d[0].components.schemas[$s] as $sc
		| (($sc.required // []) - ($v | keys)) as $missing
		| (($v | keys) - ($sc.properties | keys)) as $extra
		| if ($missing | length) + ($extra | length) == 0 then empty
		  else "missing \($missing) undocumented \($extra)" end')
	[ -z "$out" ] || { echo "# $schema vs answer: $out"; return 1; }
}

table_routes > "$WORK/routes.txt"
n_routes=$(wc -l < "$WORK/routes.txt")
check "routes.c table parsed ($n_routes routes)" test "$n_routes" -ge 8
check "route parsing converted :id to {id}" grep -q '^GET /api/v2/servers/{id} R_CLIENT$' "$WORK/routes.txt"
check "route parsing kept no ':' captures" bash -c "! grep -q ':' '$WORK/routes.txt'"
check "route count equals the table's entry lines" test "$n_routes" -eq \
	"$(sed -n '/app_routes\[\][[:space:]]*=/,/^};/p' "$ROUTES_C" | grep -c '^[[:space:]]*{[[:space:]]*"')"

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"

DOC="$WORK/openapi.json"
code=$(curl -s -m 30 -o "$DOC" -D "$WORK/openapi.headers" -w '%{http_code}' "$BASE/api/v2/openapi.json")
expect_eq "GET /api/v2/openapi.json without a token is 200" "$code" 200
check "served as application/json" grep -qi '^Content-Type: application/json' "$WORK/openapi.headers"
check "the document is valid JSON" jqe 'type == "object"' "$DOC"
check "openapi is 3.1.x" jqe '.openapi | type == "string" and test("^3\\.1\\.[0-9]+$")' "$DOC"
check "info has title and version" jqe '(.info.title | type) == "string" and (.info.version | type) == "string"' "$DOC"
check "served document is the repository's cgi-bin/openapi.json" \
	cmp -s <(jq -S . "$DOC") <(jq -S . "$ROOT/cgi-bin/openapi.json")

check "every route of routes.c is documented with its method" missing_routes "$DOC"
check "every documented operation exists in routes.c" extra_routes "$DOC"
check "documented auth matches each route's flags" auth_matches "$DOC"
check "protected routes document 401/403, body routes 400/413/415, id routes 404" errors_documented "$DOC"
check "every \$ref resolves" refs_resolve "$DOC"

for s in Server ServerRegistration ServerList Health Problem; do
	check "components.schemas.$s exists" jqe --arg s "$s" '.components.schemas[$s].type == "object"' "$DOC"
done
check "Problem documents 'field'" jqe '.components.schemas.Problem.properties.field.type == "string"' "$DOC"
check "security schemes: admin and client bearer tokens" jqe '
	.components.securitySchemes.adminToken.scheme == "bearer" and
	.components.securitySchemes.clientToken.scheme == "bearer"' "$DOC"
check "503 documents Retry-After" jqe '.components.responses.Busy.headers["Retry-After"] != null' "$DOC"
check "405 documents Allow" jqe '.components.responses.MethodNotAllowed.headers.Allow != null' "$DOC"
check "401 documents WWW-Authenticate" jqe '.components.responses.Unauthorized.headers["WWW-Authenticate"] != null' "$DOC"
check "registration fields are the seed's camelCase" jqe '
	.components.schemas.ServerRegistration.properties
	| has("callbackToken") and has("endpoints") and
	  (.capabilities["$ref"] == "#/components/schemas/Capabilities")' "$DOC"
check "capabilities documents maxConcurrent and supportedModels" jqe '
	.components.schemas.Capabilities.properties | has("maxConcurrent") and has("supportedModels")' "$DOC"

# Negative controls: the route check must fail when a route is missing, whichever.
while read -r m p f; do
	jq --arg p "$p" --arg m "${m,,}" 'del(.paths[$p][$m])' "$DOC" > "$WORK/doctored.json"
	if missing_routes "$WORK/doctored.json" > /dev/null; then
		not_ok "route check fails when $m $p is missing"
	else
		ok "route check fails when $m $p is missing"
	fi
done < "$WORK/routes.txt"
jq '.paths["/api/v2/servers/{id}"].get."x-taskgate-auth" = "public" | .paths["/api/v2/servers/{id}"].get.security = []' \
	"$DOC" > "$WORK/doctored.json"
if auth_matches "$WORK/doctored.json" > /dev/null; then
	not_ok "auth check fails when a client route is documented as public"
else
	ok "auth check fails when a client route is documented as public"
fi
jq '.paths["/api/v2/servers/{id}"].get.responses["200"].content["application/json"].schema["$ref"] = "#/components/schemas/Nope"' \
	"$DOC" > "$WORK/doctored.json"
if refs_resolve "$WORK/doctored.json" > /dev/null; then
	not_ok "\$ref check fails on a dangling reference"
else
	ok "\$ref check fails on a dangling reference"
fi

# The schemas describe what taskgate answers (top-level keys, both ways).
anon GET /api/v2/health
check "Health schema matches GET /api/v2/health" keys_match "$DOC" Health "$BODY"
reg='{"id":"doc-1","name":"doc","protocol":"http-json","endpoints":{"predict":"http://127.0.0.1:9/p","health":"http://127.0.0.1:9/h","metrics":"http://127.0.0.1:9/m"},"capabilities":{"maxConcurrent":2,"supportedModels":["m"],"async":false,"callback":false},"weight":2,"priority":1,"groups":["g"],"tags":["t"],"callbackToken":"0123456789abcdef0123"}'
admin POST /api/v2/servers "$reg"
expect_eq "register for the schema check is 201" "$STATUS" 201
check "Server schema matches the 201 answer" keys_match "$DOC" Server "$BODY"
check "Server.endpoints schema matches" keys_match "$DOC" Endpoints "$(printf '%s' "$BODY" | jq -c .endpoints)"
check "Server.capabilities schema matches" keys_match "$DOC" Capabilities "$(printf '%s' "$BODY" | jq -c .capabilities)"
check "ServerRegistration lists every key the example registration sends" \
	keys_match "$DOC" ServerRegistration "$reg"
check "the answer holds no secret" bash -c "! grep -q 0123456789abcdef0123 '$WORK/body'"
client GET /api/v2/servers
check "ServerList schema matches GET /api/v2/servers" keys_match "$DOC" ServerList "$BODY"
client GET /api/v2/servers/nope
check "Problem schema matches a 404 answer" keys_match "$DOC" Problem "$BODY"
admin POST /api/v2/servers '{"endpoints":{"predict":"ftp://x/","health":"http://x/"}}'
check "Problem schema matches a 400 answer with field" keys_match "$DOC" Problem "$BODY"
expect_eq "400 answer names the field" "$(jget .field)" /endpoints/predict
check "documented status enum covers the answer" jqe --arg s "$(client GET /api/v2/servers/doc-1; jget .status)" \
	'.components.schemas.ServerStatus.enum | index($s) != null' "$DOC"

# A full OpenAPI validation when the validator happens to be installed.
if python3 -c 'import openapi_spec_validator' 2> /dev/null; then
	check "openapi-spec-validator accepts the document" python3 -c '
import json, sys
from openapi_spec_validator import validate
validate(json.load(open(sys.argv[1])))' "$DOC"
else
	ok "openapi-spec-validator accepts the document # SKIP validator not installed"
fi
finish
