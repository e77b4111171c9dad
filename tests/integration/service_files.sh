#!/usr/bin/env bash
# The files for running taskgate as a system service, as `make install` puts them
# and as the README's lighttpd steps fill them in:
# (a) share/taskgate/ has lighttpd-taskgate.conf.in and taskgate@.service.in;
# (b) the lighttpd snippet, included by a main configuration laid out like Debian's
#     (server.modules, port and document root there; conf-enabled/*.conf included),
#     passes lighttpd's own check and serves taskgate: health, a task, a 404;
# (c) the systemd unit passes systemd-analyze verify, and its ExecStart line, run
#     as written (one round instead of an hour), does its job.
# Only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

dest=$WORK/dest
make -s -C "$ROOT" install DESTDIR="$dest" PREFIX=/usr/local > "$WORK/install.log" 2>&1
expect_eq "(a) make install succeeds" "$?" 0
lib=$dest/usr/local/lib/taskgate
share=$dest/usr/local/share/taskgate
for f in lighttpd-taskgate.conf.in taskgate@.service.in; do
	expect_eq "(a) share/taskgate/$f is installed 0644" "$(stat -c %a "$share/$f" 2> /dev/null)" 644
done

# ---------------------------------------------------------------- (b)
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
STATE_DIR="$STATE" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" \
	"$lib/cgi-bin/taskgate.fcgi" init > /dev/null
etc=$WORK/etc/lighttpd
mkdir -p "$etc/conf-available" "$etc/conf-enabled" "$WORK/www" "$WORK/run"
# The README's sed line, and the socket folder moved to this test's own.
sed -e "s|@CGIBIN@|$lib/cgi-bin|" -e "s|@STATE_DIR@|$STATE|" -e 's|@PROCS@|2|' \
	-e "s|/run/lighttpd/|$WORK/run/|" "$share/lighttpd-taskgate.conf.in" > "$etc/conf-available/50-taskgate.conf"
ln -s ../conf-available/50-taskgate.conf "$etc/conf-enabled/50-taskgate.conf"
check "(b) the snippet has no @VAR@ left" bash -c '! grep -q "@[A-Z_]*@" "$1"' _ "$etc/conf-available/50-taskgate.conf"
cat > "$etc/lighttpd.conf" <<EOF
server.modules = ( "mod_access", "mod_alias", "mod_redirect" )
server.document-root = "$WORK/www"
server.errorlog = "$WORK/run/error.log"
server.pid-file = "$WORK/run/lighttpd.pid"
server.bind = "127.0.0.1"
server.port = $PORT
include "$etc/conf-enabled/*.conf"
EOF
check "(b) lighttpd -tt accepts it" lighttpd -tt -f "$etc/lighttpd.conf"
lighttpd -D -f "$etc/lighttpd.conf" > "$WORK/run/stderr.log" 2>&1 &
_pids+=($!)
check "(b) it serves taskgate's health" wait_for curl -sf "$BASE/api/v2/health"
client POST /api/v2/tasks '{"model":"m","input":{}}'
expect_eq "(b) a task is accepted" "$STATUS" 202
client GET /api/v2/nowhere
expect_eq "(b) an unknown path is taskgate's 404" "$STATUS $(jget .status)" "404 404"

# ---------------------------------------------------------------- (c)
unit=$WORK/taskgate@.service
sed -e "s|@CRONDIR@|$lib/cron|" -e "s|@STATE_DIR@|$STATE|" -e "s|@USER@|$(id -un)|" \
	"$share/taskgate@.service.in" > "$unit"
check "(c) the unit has no @VAR@ left" bash -c '! grep -q "@[A-Z_]*@" "$1"' _ "$unit"
if command -v systemd-analyze > /dev/null; then
	cp "$unit" "$WORK/taskgate@sweep.service"
	check "(c) systemd-analyze verify accepts it" systemd-analyze verify "$WORK/taskgate@sweep.service"
else
	echo "# SKIP systemd-analyze verify: systemd-analyze is not installed"
fi
for job in sweep health rollup; do
	cmd=$(sed -n 's/^ExecStart=//p' "$unit" | sed "s/%i/$job/; s/--for 3600/--for 0/")
	env=$(sed -n 's/^Environment=//p' "$unit")
	env "$env" $cmd > "$WORK/$job.out" 2>&1
	rc=$?
	check "(c) taskgate@$job's ExecStart runs (exit $rc: OK or WARNING)" test "$rc" -le 1
done
check "every JSON file of the state tree parses" all_state_parses
finish
