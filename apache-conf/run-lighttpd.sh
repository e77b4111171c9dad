#!/bin/sh
# Starts taskgate under lighttpd on 127.0.0.1:$PORT with the state tree at
# $STATE_DIR, plus (unless DEMO=0) the demo inference server. Stays in the
# foreground; Ctrl-C or SIGTERM stops everything it started.
# Environment: PORT, STATE_DIR, BUILD, DEMO, ADMIN_TOKEN, CLIENT_TOKEN, PROCS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PORT=${PORT:-8080}
BUILD=${BUILD:-$here/../build}
STATE_DIR=${STATE_DIR:-$here/../state}
PROCS=${PROCS:-2}
DEMO=${DEMO:-1}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
rundir="$STATE_DIR/run/lighttpd"
mkdir -p "$rundir/www"

STATE_DIR="$STATE_DIR" PUBLIC_URL="http://127.0.0.1:$PORT" "$BUILD/taskgate.fcgi" init

sed -e "s|@PORT@|$PORT|" -e "s|@DOCROOT@|$rundir/www|" -e "s|@LOGDIR@|$rundir|g" \
    -e "s|@PROGRAM@|$BUILD/taskgate.fcgi|" -e "s|@RUNDIR@|$rundir|" -e "s|@PROCS@|$PROCS|" \
    -e "s|@STATE_DIR@|$STATE_DIR|" "$here/lighttpd.conf.in" > "$rundir/lighttpd.conf"

pids=""
cleanup() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	[ -s "$rundir/lighttpd.pid" ] && kill "$(cat "$rundir/lighttpd.pid" 2>/dev/null)" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "taskgate stopped"
}
trap cleanup INT TERM EXIT

: > "$rundir/error.log"
lighttpd -D -f "$rundir/lighttpd.conf" &
pids="$pids $!"
tail -n +1 -F "$rundir/error.log" 2>/dev/null &
pids="$pids $!"

if [ "$DEMO" != 0 ] && [ -x "$BUILD/tests/mock_backend" ]; then
	"$BUILD/tests/mock_backend" --protocol cog --port "$((PORT + 1))" --slots 2 \
		--delay-ms 500 --name demo --max-seconds 86400 > "$rundir/demo.log" 2>&1 &
	pids="$pids $!"
	echo "demo Cog server on http://127.0.0.1:$((PORT + 1)) (register it: see README)"
fi

for cron in "$BUILD"/cron/taskgate-*; do
	[ -x "$cron" ] || continue
	( while :; do STATE_DIR="$STATE_DIR" "$cron" --quiet || true; sleep 5; done ) &
	pids="$pids $!"
done

echo "taskgate listening on http://127.0.0.1:$PORT (state: $STATE_DIR)"
echo "tokens are in the output of the first 'init' above, or set ADMIN_TOKEN/CLIENT_TOKEN"
wait
