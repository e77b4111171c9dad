#!/usr/bin/env bash
# Secrets never reach a log: a Cog (the mock, as Cog 0.9.9) sends its completed
# webhook to a callback URL whose query string carries the attempt's token, and PUTs
# its file output to the upload URL, whose path carries the server's secret. With
# taskgate's own request log on ("logRequests": true):
# (a) taskgate's log lines show those requests, the upload's secret segment as "-";
# (b) no log the front end writes for taskgate holds the token or the secret: the
#     error log (where taskgate's lines go) and, under apache-fcgid, the access log
#     of apache-conf/taskgate-vhost.conf.in, which logs the path without the query
#     string and masks the upload secret; lighttpd keeps no access log;
# (c) a wrong method on an upload URL (405), and the bare upload URL (404), are
#     masked too.
# Under apache-cgi the access log is the shared host's own (combined format, query
# strings included), which an .htaccess cannot change; the README says so and the
# check is skipped there. Every loop is bounded; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

start_taskgate 2 || { not_ok "taskgate starts"; finish; exit 1; }
ok "taskgate starts behind ${FRONTEND:-lighttpd}"
check "taskgate logs its requests" set_config '.logRequests = true'
start_mock cog --protocol cog --slots 2 || not_ok "mock cog starts"
check "register cog" register_mock cog cog
admin GET /api/v2/servers/cog
up=$(jget .uploadUrl)
secret=$(sed -E 's|.*/api/v2/uploads/[^/]+/([^/]+)/.*|\1|' <<< "$up")
check "the upload URL carries a secret" test "${#secret}" -ge 16 -a "$secret" != "$up"
check "Cog gets its --upload-url and an image output" \
	mock_control cog "{\"uploadUrl\":\"$up\",\"outputFiles\":[{\"name\":\"out.png\",\"bytes\":4096}]}"

client POST /api/v2/tasks '{"model":"m","input":{"prompt":"a lighthouse"}}'
tid=$(jget .id)
check "the task completes" wait_long is_status "$tid" COMPLETED
hook=$(mock cog /__requests | jq -r --arg t "$tid" \
	'[.[] | select(.path | startswith("/predictions")) | .body | fromjson?
	  | select((.id // "") | startswith($t)) | .webhook][0] // empty')
token=$(sed -nE 's|.*[?&]token=([^&]+).*|\1|p' <<< "$hook")
check "the webhook URL Cog was given carries a token" test "${#token}" -ge 16
expect_eq "Cog's upload was taken" "$(mock cog /__stats | jq .uploadsOk)" 1
# (c) a GET on the upload URL: 405
STATUS=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "${up}out.png")
expect_eq "(c) a GET on an upload URL is 405" "$STATUS" 405
STATUS=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$up")
expect_eq "(c) a GET on the bare upload URL is 404" "$STATUS" 404
# One more request, so the lines above are written before the logs are read.
anon GET /api/v2/health

case ${FRONTEND:-lighttpd} in
lighttpd) logs=("$WORK/lighttpd") ;;
*) logs=("$WORK/apache/logs") ;;
esac
# taskgate's own lines: in the error log, whichever front end.
own=$(grep -rh "PUT /api/v2/uploads/cog/\|POST /api/v2/tasks/$tid/callback\|GET /api/v2/uploads/cog/" "${logs[@]}" \
	--include='error*.log' --include='*stderr*.log' 2>/dev/null)
check "(a) taskgate's log shows the upload, its secret as -" grep -qF "PUT /api/v2/uploads/cog/-/out.png 201" <<< "$own"
check "(a) ... and the callback, without its query string" grep -qE "POST /api/v2/tasks/$tid/callback 200" <<< "$own"
check "(c) ... and the 405, masked" grep -qF "GET /api/v2/uploads/cog/-/out.png 405" <<< "$own"
check "(c) ... and the 404, masked" grep -qF "GET /api/v2/uploads/cog/-/ 404" <<< "$own"
leaks() { grep -rlF -e "$token" -e "$secret" "${logs[@]}" "$@" 2>/dev/null; }
if [ "${FRONTEND:-lighttpd}" = apache-cgi ]; then
	expect_eq "(b) no error log holds the token or the secret" "$(leaks --include='error*.log')" ""
	echo "# skip (b) access log: under apache-cgi it is the shared host's (combined format)"
else
	expect_eq "(b) no log holds the token or the secret" "$(leaks)" ""
fi
if [ "${FRONTEND:-lighttpd}" = apache-fcgid ]; then
	acc=$WORK/apache/logs/taskgate-access.log
	check "(b) the vhost's access log has the upload, masked" grep -qF '"PUT /api/v2/uploads/cog/-/out.png HTTP/1.1" 201' "$acc"
	check "(b) ... and the 405, masked" grep -qF '"GET /api/v2/uploads/cog/-/out.png HTTP/1.1" 405' "$acc"
	check "(b) ... and the 404, masked" grep -qF '"GET /api/v2/uploads/cog/-/ HTTP/1.1" 404' "$acc"
	check "(b) ... and the callback, without its query string" \
		grep -qF "\"POST /api/v2/tasks/$tid/callback HTTP/1.1\" 200" "$acc"
	check "(b) ... and other requests as they were" grep -qF '"GET /api/v2/health HTTP/1.1" 200' "$acc"
fi
finish
