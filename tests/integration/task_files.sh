#!/usr/bin/env bash
# Outputs of any size and file outputs, through the front end:
# (a) a 300 KB JSON output in a webhook completes; past outputInlineBytes it is
#     kept as the task's file output.json, which result.output names;
# (b) a webhook larger than callbackMaxBytes is answered 413 and ends the attempt
#     FAILED at once with the reason, without a retry or a mark on the server;
# (c) a data URI in an output is decoded into a file, served with its type,
#     length, ETag, byte ranges and 304;
# (d) the upload route (Cog's --upload-url): only the server's own URL, only for
#     the attempt it runs, names checked; the uploaded file replaces the upload URL
#     in the output;
# (e) the files route needs a client token; retention removes the files;
# (f) a synchronous http-json answer's data URI becomes a file too;
# (g) Cog with --upload-url: its file output reaches the client.
# Every loop is bounded in count and time; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

start_taskgate 2 || { not_ok "lighttpd with taskgate starts"; finish; exit 1; }
ok "lighttpd with taskgate starts"
start_mock held --protocol cog --slots 8 || not_ok "mock held starts"
check "mock held keeps its predictions running" mock_control held '{"hold":true}'
check "register held" register_mock held held '"capabilities":{"maxConcurrent":8}'

# submit: a task the mock holds; sets TID and HOOK (its webhook URL, with the secret).
submit() {
	client POST /api/v2/tasks '{"model":"m","input":{"n":1}}'
	TID=$(jget .id)
	local n
	for n in $(seq 1 100); do
		HOOK=$(mock held /__requests | jq -r --arg t "$TID" \
			'[.[] | select(.method == "PUT" and (.path | contains($t))) | .body | fromjson | .webhook][0] // empty')
		[ -n "$HOOK" ] && return 0
		sleep 0.1
	done
	return 1
}
# hook FILE: posts FILE to the webhook as Cog does; sets STATUS and BODY.
hook() {
	STATUS=$(curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "@$1" "$HOOK")
	BODY=$(cat "$WORK/body")
}
# fetch URL [curl args]: GET with the client token into $WORK/got; sets STATUS.
fetch() {
	local url=$1
	shift
	STATUS=$(curl -s -m 60 -o "$WORK/got" -D "$WORK/got.h" -w '%{http_code}' \
		-H "Authorization: Bearer $CLIENT" "$@" "$url")
}
header() { tr -d '\r' < "$WORK/got.h" | awk -v k="$1" 'tolower($1) == tolower(k) ":" { $1 = ""; sub(/^ /, ""); print }'; }

# ---------------------------------------------------------------- (a)
check "(a) a held task is running" submit
python3 - "$WORK/big.json" <<'EOF'
import json, sys
out = {"text": "x" * 300000, "tokens": list(range(2000))}
json.dump({"id": "p", "status": "succeeded", "input": {"n": 1}, "output": out,
           "logs": "l" * 20000, "metrics": {"predict_time": 1.5}}, open(sys.argv[1], "w"))
EOF
hook "$WORK/big.json"
expect_eq "(a) a 300 KB webhook is accepted" "$STATUS" 200
client GET "/api/v2/tasks/$TID"
expect_eq "(a) ... the task completed" "$(jget .status)" COMPLETED
url=$(jget .result.output)
expect_eq "(a) ... result.output names the file output.json" "$url" "$BASE/api/v2/tasks/$TID/files/output.json"
expect_eq "(a) ... the metrics are kept" "$(jget .result.metrics.predict_time)" 1.5
expect_eq "(a) ... and a tail of the logs" "$(jget '.result.logs | length')" 4096
fetch "$url"
expect_eq "(a) the file is served" "$STATUS" 200
check "(a) ... as the output the backend sent" \
	test "$(jq -cS .output "$WORK/big.json" | sha256sum)" = "$(jq -cS . "$WORK/got" | sha256sum)"
expect_eq "(a) ... as JSON" "$(header Content-Type)" application/json

check "(a) a small output stays inline" submit
printf '{"status":"succeeded","output":{"answer":42}}' > "$WORK/small.json"
hook "$WORK/small.json"
expect_eq "(a) ... accepted" "$STATUS" 200
client GET "/api/v2/tasks/$TID"
expect_eq "(a) ... in result.output" "$(jc .result.output)" '{"answer":42}'

# ---------------------------------------------------------------- (b)
check "(b) a held task is running" submit
big_tid=$TID
python3 -c 'import json,sys; json.dump({"status":"succeeded","output":"y"*(9<<20)}, open(sys.argv[1],"w"))' "$WORK/huge.json"
hook "$WORK/huge.json"
expect_eq "(b) a 9 MiB webhook is refused 413" "$STATUS" 413
check "(b) ... as problem+json naming callbackMaxBytes" jqe '.status == 413 and (.detail | contains("callbackMaxBytes"))' <<< "$BODY"
client GET "/api/v2/tasks/$big_tid"
expect_eq "(b) ... the task FAILED at once" "$(jget .status)" FAILED
check "(b) ... with the reason" jqe '.error | test("result of [0-9]+ bytes exceeds callbackMaxBytes")' <<< "$BODY"
expect_eq "(b) ... after one attempt (no retry)" "$(jget '.history | length')" 1
client GET /api/v2/servers/held
expect_eq "(b) the server is still online" "$(jget .status)" online
expect_eq "(b) ... with no failure counted" "$(jget .consecutiveFailures // 0)" 0

# ---------------------------------------------------------------- (c)
check "(c) a held task is running" submit
head -c 3000000 /dev/urandom > "$WORK/image.png"
python3 - "$WORK/image.png" "$WORK/datauri.json" <<'EOF'
import base64, json, sys
data = base64.b64encode(open(sys.argv[1], "rb").read()).decode()
json.dump({"status": "succeeded", "output": ["data:image/png;base64," + data, "caption"]},
          open(sys.argv[2], "w"))
EOF
hook "$WORK/datauri.json"
expect_eq "(c) a 4 MB webhook with a data URI is accepted" "$STATUS" 200
client GET "/api/v2/tasks/$TID"
url=$(jget '.result.output[0]')
expect_eq "(c) the data URI became a file's URL" "$url" "$BASE/api/v2/tasks/$TID/files/output-1.png"
expect_eq "(c) ... and the rest of the output stays" "$(jget '.result.output[1]')" caption
fetch "$url"
expect_eq "(c) the file is served" "$STATUS" 200
check "(c) ... with the bytes that were encoded (sha256)" \
	test "$(sha256sum < "$WORK/image.png")" = "$(sha256sum < "$WORK/got")"
expect_eq "(c) ... as image/png" "$(header Content-Type)" image/png
# Apache's mod_cgi sends a long answer of a CGI program on as chunked, without
# the length the program gave; every other front end passes it on.
length_or_chunked() {
	[ "$(header Content-Length)" = 3000000 ] ||
		{ [ "${FRONTEND:-lighttpd}" = apache-cgi ] && [ "$(header Transfer-Encoding)" = chunked ]; }
}
check "(c) ... with its length" length_or_chunked
etag=$(header ETag)
check "(c) ... and an ETag" test -n "$etag"
fetch "$url" -H "Range: bytes=100-199"
expect_eq "(c) a range is 206" "$STATUS" 206
expect_eq "(c) ... with its Content-Range" "$(header Content-Range)" "bytes 100-199/3000000"
check "(c) ... and those bytes" cmp -s "$WORK/got" <(tail -c +101 "$WORK/image.png" | head -c 100)
fetch "$url" -H "Range: bytes=-10"
check "(c) a suffix range gives the last bytes" cmp -s "$WORK/got" <(tail -c 10 "$WORK/image.png")
fetch "$url" -H "Range: bytes=3000000-"
expect_eq "(c) a range past the end is 416" "$STATUS" 416
expect_eq "(c) ... naming the size" "$(header Content-Range)" "bytes */3000000"
fetch "$url" -H "If-None-Match: $etag"
expect_eq "(c) If-None-Match with the ETag is 304" "$STATUS" 304
fetch "$url" -I
expect_eq "(c) HEAD is 200" "$STATUS" 200
# (mod_cgi drops the length of a HEAD answer as well, and has no body to chunk.)
head_length() { [ "$(header Content-Length)" = 3000000 ] || [ "${FRONTEND:-lighttpd}" = apache-cgi ]; }
check "(c) ... with the GET's length" head_length
fetch "$BASE/api/v2/tasks/$TID/files/nothing.png"
expect_eq "(c) a file the task does not have is 404" "$STATUS" 404
fetch "$BASE/api/v2/tasks/$TID/files/..%2Fconfig.json"
expect_eq "(c) a name that is not a file name is 404" "$STATUS" 404
STATUS=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$url")
expect_eq "(e) the files route needs a token" "$STATUS" 401

# ---------------------------------------------------------------- (d)
check "(d) a held task is running" submit
client GET /api/v2/servers/held
expect_eq "(d) a client does not see the upload URL" "$(jget '.uploadUrl // "none"')" none
admin GET /api/v2/servers/held
up=$(jget .uploadUrl)
check "(d) the operator does" test "${up#"$BASE/api/v2/uploads/held/"}" != "$up"
attempt=$(task_field "$TID" .attempts)
put() { # put URL PREDICTION FILE
	STATUS=$(curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -X PUT -H 'Content-Type: image/png' \
		${2:+-H "X-Prediction-ID: $2"} --data-binary "@$3" "$1")
	BODY=$(cat "$WORK/body")
}
put "${up}out.png" "$TID-$attempt" "$WORK/image.png"
expect_eq "(d) the running attempt's upload is 201" "$STATUS" 201
put "${up%/*/}/0000000000000000000000000000000/out.png" "$TID-$attempt" "$WORK/image.png"
expect_eq "(d) another secret is 401" "$STATUS" 401
put "${up}out.png" "" "$WORK/image.png"
expect_eq "(d) no X-Prediction-ID is 400" "$STATUS" 400
expect_eq "(d) ... naming it" "$(jget .field)" X-Prediction-ID
put "${up}out.png" "$TID-$((attempt + 1))" "$WORK/image.png"
expect_eq "(d) an attempt that is not running is 409" "$STATUS" 409
put "${up}.hidden" "$TID-$attempt" "$WORK/image.png"
expect_eq "(d) a name starting with '.' is 400" "$STATUS" 400
printf '{"status":"succeeded","output":"%sout.png"}' "$up" > "$WORK/uploaded.json"
hook "$WORK/uploaded.json"
expect_eq "(d) the webhook naming the upload is accepted" "$STATUS" 200
url=$(task_field "$TID" .result.output)
expect_eq "(d) ... its output is the task's file, not the upload URL" "$url" "$BASE/api/v2/tasks/$TID/files/out.png"
fetch "$url"
check "(d) ... with the uploaded bytes (sha256)" \
	test "$(sha256sum < "$WORK/image.png")" = "$(sha256sum < "$WORK/got")"
put "${up}late.png" "$TID-$attempt" "$WORK/image.png"
expect_eq "(d) an upload after the attempt ended is 409" "$STATUS" 409

# ---------------------------------------------------------------- (e)
files_dir=$(find "$STATE/files" -mindepth 2 -maxdepth 2 -name "$TID")
check "(e) the task's files are in the tree" test -f "$files_dir/out.png"
# Retention as the sweep sees it: the task finished nine days ago (the way
# sweep.sh ages one: its times and its created/ entry).
long_ago=$(( $(date +%s%3N) - 9 * 86400 * 1000 ))
edit_json "$(task_file "$TID")" ".createdAt=$long_ago | .completedAt=$long_ago"
hour=$(date -u -d "@$((long_ago / 1000))" +%Y%m%d%H)
minute=$(date -u -d "@$((long_ago / 1000))" +%M)
mkdir -p "$STATE/created/$hour/$minute"
mv "$STATE"/created/*/*/*"-$TID" "$STATE/created/$hour/$minute/$(printf '%013d' "$long_ago")-$TID"
STATE_DIR="$STATE" "$BUILD/cron/taskgate-sweep" --quiet > "$WORK/sweep.log" 2>&1
client GET "/api/v2/tasks/$TID"
expect_eq "(e) retention removed the task" "$STATUS" 404
check "(e) ... and its files" test ! -e "$files_dir"
# ---------------------------------------------------------------- (g)
# The whole Cog path: a Cog (the mock, as Cog 0.9.9) started with the upload URL
# taskgate gave it PUTs its 3 MB image output there, then names it in its
# completed webhook; the client gets the image through the files route.
start_mock cog --protocol cog --slots 2 || not_ok "(g) mock cog starts"
check "(g) register cog" register_mock cog cog
admin GET /api/v2/servers/cog
cog_up=$(jget .uploadUrl)
check "(g) Cog gets its --upload-url and a 3 MB image output" \
	mock_control cog "{\"uploadUrl\":\"$cog_up\",\"outputFiles\":[{\"name\":\"out.png\",\"bytes\":3145728}]}"
admin PUT /api/v2/servers/held/maintenance '{"enabled":true}'
client POST /api/v2/tasks '{"model":"m","input":{"prompt":"a lighthouse"}}'
gid=$(jget .id)
check "(g) the task completes" wait_long is_status "$gid" COMPLETED
client GET "/api/v2/tasks/$gid"
url=$(jget .result.output)
expect_eq "(g) result.output is the task's file" "$url" "$BASE/api/v2/tasks/$gid/files/out.png"
expect_eq "(g) Cog's upload was taken" "$(mock cog /__stats | jq .uploadsOk)" 1
check "(g) ... with X-Prediction-ID <task>-<attempt>" \
	jqe --arg p "$gid-1" 'any(.[]; .predictionId == $p and .status == 201)' <<< "$(mock cog /__uploads)"
fetch "$url"
curl -s -m 30 -o "$WORK/orig.png" "http://127.0.0.1:$MOCK_PORT_cog/__files/$gid-1/out.png"
check "(g) the client gets the bytes the model wrote (sha256)" \
	test "$(sha256sum < "$WORK/orig.png")" = "$(sha256sum < "$WORK/got")"
expect_eq "(g) ... as image/png" "$(header Content-Type)" image/png
admin PUT /api/v2/servers/cog/maintenance '{"enabled":true}'

# ---------------------------------------------------------------- (f)
# A synchronous http-json answer goes through the same intake: the mock echoes
# its input, so a data URI in the input comes back in the output.
start_mock sync --protocol http-json --slots 2 || not_ok "(f) mock sync starts"
check "(f) register sync" register_mock sync sync
client GET /api/v2/servers/held
expect_eq "(f) held and cog are in maintenance, so sync takes the task" "$(jget .status)" maintenance
head -c 2000 /dev/urandom > "$WORK/small.wav"
b64=$(base64 -w0 < "$WORK/small.wav")
client POST /api/v2/tasks "{\"model\":\"echo\",\"input\":{\"audio\":\"data:audio/wav;base64,$b64\"}}" -H 'Prefer: wait=10'
expect_eq "(f) the synchronous task completed" "$(jget .status)" COMPLETED
url=$(jget .result.output.echo.audio)
check "(f) ... its data URI became a file's URL" test "${url#"$BASE/api/v2/tasks/"}" != "$url"
fetch "$url"
check "(f) ... served with the bytes (sha256)" \
	test "$(sha256sum < "$WORK/small.wav")" = "$(sha256sum < "$WORK/got")"
expect_eq "(f) ... as audio/wav" "$(header Content-Type)" audio/wav
check "every JSON file of the state tree parses" all_state_parses
finish
