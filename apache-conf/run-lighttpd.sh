#!/bin/sh
# Starts taskgate under lighttpd on 127.0.0.1:$PORT with the state tree at
# $STATE_DIR, plus (unless DEMO=0) the demo inference server and the periodic jobs.
# Prints "taskgate ready on http://..." once taskgate answers. Stays in the
# foreground; Ctrl-C, SIGTERM (to it or to the `make run` above it) stops
# everything it started.
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

echo $$ > "$rundir/run.pid" # kill -TERM "$(cat .../run.pid)" stops it all
pids=""
cleanup() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	[ -s "$rundir/lighttpd.pid" ] && kill "$(cat "$rundir/lighttpd.pid" 2>/dev/null)" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -f "$rundir/run.pid"
	echo "taskgate stopped"
}
trap cleanup INT TERM EXIT

: > "$rundir/error.log"
lighttpd -D -f "$rundir/lighttpd.conf" &
lighttpd_pid=$!
pids="$pids $lighttpd_pid"
tail -n +1 -F "$rundir/error.log" 2>/dev/null &
pids="$pids $!"

if [ "$DEMO" != 0 ] && [ -x "$BUILD/tests/mock_backend" ]; then
	"$BUILD/tests/mock_backend" --protocol cog --port "$((PORT + 1))" --slots 2 \
		--delay-ms 500 --name demo --max-seconds 86400 > "$rundir/demo.log" 2>&1 &
	pids="$pids $!"
	echo "demo Cog server on http://127.0.0.1:$((PORT + 1)) (register it: see README)"
fi

# The periodic jobs, every 5 s. A loop stopped by TERM stops the job it is running
# (or its sleep) too, so nothing of it outlives the stop.
for cron in "$BUILD"/cron/taskgate-*; do
	[ -x "$cron" ] || continue
	(
		child=
		trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' TERM
		while :; do
			STATE_DIR="$STATE_DIR" "$cron" --quiet &
			child=$!
			wait "$child" || true
			sleep 5 &
			child=$!
			wait "$child" || true
		done
	) &
	pids="$pids $!"
done

echo "tokens are in the output of the first 'init' above, or set ADMIN_TOKEN/CLIENT_TOKEN"
# Ready when taskgate answers through lighttpd (at most 30 s).
ready=0
for i in $(seq 1 60); do
	if curl -sf -m 2 -o /dev/null "http://127.0.0.1:$PORT/api/v2/health"; then ready=1; break; fi
	kill -0 "$lighttpd_pid" 2>/dev/null || break
	sleep 0.5
done
if [ "$ready" = 0 ]; then
	echo "taskgate did not start: see $rundir/error.log" >&2
	exit 1
fi
echo "taskgate ready on http://127.0.0.1:$PORT (state: $STATE_DIR)"

# Until a signal, lighttpd's end, or the end of whoever started us: `make run`
# stopped by SIGTERM dies without passing the signal on, and this script, left to
# init, would keep the port. Checked each second.
parent=$PPID
while kill -0 "$lighttpd_pid" 2>/dev/null &&
	[ "$(cut -d' ' -f4 /proc/$$/stat 2>/dev/null)" = "$parent" ]; do
	sleep 1
done
