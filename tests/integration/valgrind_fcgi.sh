#!/usr/bin/env bash
# The FastCGI program itself under valgrind (memcheck), serving real requests
# through lighttpd: servers, tasks with a Cog mock and its webhooks, callbacks,
# cancel, retry, listings, statistics, errors. Every process must end with no
# memory error and nothing definitely or indirectly lost.
. "$(dirname "$0")/../lib.sh"
command -v valgrind > /dev/null || { echo "# valgrind missing"; not_ok "valgrind installed"; finish; exit 1; }
# A sanitizer build cannot run under valgrind; that build checks memory itself.
if ldd "$BUILD/taskgate.fcgi" | grep -q 'libasan\|libubsan'; then
	echo "# SKIP: $BUILD/taskgate.fcgi is a sanitizer build"
	finish
	exit 0
fi

# A wrapper as lighttpd's bin-path: valgrind around the real program.
VG="$WORK/vg"
mkdir -p "$VG"
cat > "$WORK/taskgate-vg" <<WRAP
#!/bin/sh
exec valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \\
	--show-leak-kinds=definite,indirect --log-file="$VG/vg.%p.log" "$BUILD/taskgate.fcgi" "\$@"
WRAP
chmod +x "$WORK/taskgate-vg"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
mkdir -p "$WORK/lighttpd/www"
STATE_DIR="$STATE" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" "$BUILD/taskgate.fcgi" init > /dev/null
sed -e "s|@PORT@|$PORT|" -e "s|@DOCROOT@|$WORK/lighttpd/www|" -e "s|@LOGDIR@|$WORK/lighttpd|g" \
	-e "s|@PROGRAM@|$WORK/taskgate-vg|" -e "s|@RUNDIR@|$WORK/lighttpd|" -e "s|@PROCS@|2|" \
	-e "s|@STATE_DIR@|$STATE|" "$ROOT/apache-conf/lighttpd.conf.in" > "$WORK/lighttpd/lighttpd.conf"
lighttpd -D -f "$WORK/lighttpd/lighttpd.conf" > "$WORK/lighttpd/stderr.log" 2>&1 &
LIGHTTPD=$!
_pids+=($LIGHTTPD)
for i in $(seq 1 300); do curl -sf "$BASE/api/v2/health" > /dev/null && break; sleep 0.1; done
check "taskgate answers under valgrind" curl -sf "$BASE/api/v2/health" -o /dev/null

start_mock vg --protocol cog --slots 2 --delay-ms 100
register_mock vg vg1 '"capabilities":{"maxConcurrent":2},"callbackToken":"0123456789abcdef0123"'
expect_eq "register" "$STATUS" 201
client POST /api/v2/tasks '{"model":"m","input":{"a":[1,2,{"b":"c"}]},"tags":[]}' -H 'Prefer: wait=20'
expect_eq "a task completes through webhooks" "$(jget .status)" COMPLETED
client POST /api/v2/tasks '{"model":"m","input":{"n":2}}' -H 'Idempotency-Key: vg-1'
id=$(jget .id)
client POST /api/v2/tasks '{"model":"m","input":{"n":2}}' -H 'Idempotency-Key: vg-1'
expect_eq "idempotent replay" "$(jget .id)" "$id"
client DELETE "/api/v2/tasks/$id"
client POST "/api/v2/tasks/$id/retry" ''
client GET '/api/v2/tasks?limit=5'
expect_eq "list" "$STATUS" 200
anon POST "/api/v2/tasks/$id/callback?attempt=1&token=wrong" '{"status":"succeeded"}'
expect_eq "a forged callback is refused" "$STATUS" 401
admin PUT /api/v2/servers/vg1/maintenance '{"enabled":true}'
admin GET /api/v2/loadbalancer/status
client GET /api/v2/stats/tasks
client GET /metrics
admin GET /status
client POST /api/v2/tasks '{"model":' ; expect_eq "bad JSON" "$STATUS" 400
client POST /api/v2/tasks '{"model":"m"}' ; expect_eq "missing input" "$STATUS" 400
anon GET /api/v2/nowhere ; expect_eq "unknown route" "$STATUS" 404
admin DELETE /api/v2/servers/vg1 '' -G --data-urlencode force=1
sleep 1

# Stop lighttpd; its FastCGI children get SIGTERM and valgrind writes its reports.
kill "$LIGHTTPD"
for i in $(seq 1 200); do pgrep -f -- "--log-file=$VG" > /dev/null || break; sleep 0.1; done
n=$(ls "$VG" | wc -l)
done_n=$(grep -l "ERROR SUMMARY:" "$VG"/*.log 2>/dev/null | wc -l)
check "valgrind reports were written ($n)" test "$n" -ge 1
# A report without its summary would mean a process killed before valgrind's check.
expect_eq "every process ended with valgrind's summary" "$done_n" "$n"
bad=$(grep -l -E "Invalid|uninitialised|definitely lost: [1-9]|indirectly lost: [1-9]|ERROR SUMMARY: [1-9]" "$VG"/*.log 2>/dev/null)
if [ -n "$bad" ]; then
	head -40 $bad | sed 's/^/# /'
	not_ok "no memory errors or leaks in the FastCGI program"
else
	ok "no memory errors or leaks in the FastCGI program"
fi
finish
