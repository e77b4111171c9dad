# Shared helpers for the integration tests (bash). Each test script sources this,
# starts what it needs, prints TAP lines ("ok - ..." / "not ok - ...") and calls
# finish at the end. Everything listens on 127.0.0.1 only and is stopped on exit.
set -u
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$TESTS_DIR/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
ADMIN=test-admin-token-0123456789
CLIENT=test-client-token-0123456789
WORK=$(mktemp -d /tmp/taskgate-test.XXXXXX)
STATE="$WORK/state"
_pids=()
_fails=0
_checks=0

cleanup() {
	local p
	for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
	[ -s "$WORK/lighttpd/lighttpd.pid" ] && kill "$(cat "$WORK/lighttpd/lighttpd.pid" 2>/dev/null)" 2>/dev/null
	sleep 0.2
	for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${KEEP:-0}" = 1 ] || [ "$_fails" -gt 0 ]; then
		echo "# work folder kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

ok() { _checks=$((_checks + 1)); echo "ok - $*"; }
not_ok() { _checks=$((_checks + 1)); _fails=$((_fails + 1)); echo "not ok - $*"; }

# check "description" command...: ok if the command succeeds
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# expect_eq "description" actual expected
expect_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for "cmd..." up to ~10 s
wait_for() {
	local i
	for i in $(seq 1 100); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# start_taskgate [procs]: init a state tree and start the web server FRONTEND names
# in front of taskgate.fcgi; sets PORT and BASE.
#   FRONTEND=lighttpd      (default) lighttpd's mod_fastcgi, procs processes
#   FRONTEND=apache-fcgid  Apache (event MPM) + mod_fcgid, configured from
#                          apache-conf/taskgate-vhost.conf.in, at most procs processes
#   FRONTEND=apache-cgi    Apache (prefork MPM) without mod_fcgid: the shared-hosting
#                          apache-conf/htaccess falls back to plain CGI (one process per
#                          request; procs does not apply)
# Apache runs as the user running the test. Started as root it must drop to a user
# (User www-data), and then the state tree belongs to www-data: a test that also
# writes the tree as root (cron programs, edit_json) breaks that, so tests/run-all.sh
# runs the Apache passes as www-data from the start.
start_taskgate() {
	local procs=${1:-2}
	PORT=$(free_port)
	BASE="http://127.0.0.1:$PORT"
	STATE_DIR="$STATE" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" \
		"$BUILD/taskgate.fcgi" init > /dev/null || return 1
	case ${FRONTEND:-lighttpd} in
	lighttpd)
		local ld=${LIGHTTPD_DIR:-$WORK/lighttpd} # a test running several sets its own
		mkdir -p "$ld/www"
		sed -e "s|@PORT@|$PORT|" -e "s|@DOCROOT@|$ld/www|" \
			-e "s|@LOGDIR@|$ld|g" -e "s|@PROGRAM@|$BUILD/taskgate.fcgi|" \
			-e "s|@RUNDIR@|$ld|" -e "s|@PROCS@|$procs|" -e "s|@STATE_DIR@|$STATE|" \
			"$ROOT/apache-conf/lighttpd.conf.in" > "$ld/lighttpd.conf"
		lighttpd -D -f "$ld/lighttpd.conf" > "$ld/stderr.log" 2>&1 &
		_pids+=($!)
		;;
	apache-fcgid)
		# A copy, as installed: mod_fcgid starts processes whenever it likes, and a
		# rebuild of build/ during the test must not catch the program half written.
		mkdir -p "$WORK/apache/cgi-bin" &&
			cp "$BUILD/taskgate.fcgi" "$WORK/apache/cgi-bin/" &&
			apache_vhost_site "$WORK/apache" "$procs" "$WORK/apache/cgi-bin" &&
			apache_start "$WORK/apache" fcgid || return 1
		;;
	apache-cgi)
		apache_htaccess_site "$WORK/apache" "$BUILD/taskgate.fcgi" &&
			apache_start "$WORK/apache" cgi || return 1
		;;
	*)
		echo "# unknown FRONTEND '$FRONTEND' (lighttpd, apache-fcgid, apache-cgi)"
		return 1
		;;
	esac
	wait_for curl -sf "$BASE/api/v2/health"
}

# ---- Apache (FRONTEND=apache-fcgid|apache-cgi, tests/integration/install.sh) ----
APACHE_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
APACHE2=${APACHE2:-$(command -v apache2 2> /dev/null || echo /usr/sbin/apache2)}

# apache_fill TEMPLATE OUT VAR=VALUE...: copies TEMPLATE with each @VAR@ replaced.
apache_fill() {
	local in=$1 out=$2 kv args=()
	shift 2
	for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
	sed "${args[@]}" "$in" > "$out"
}

# apache_vhost_site DIR PROCS CGIBIN: DIR/site.conf from taskgate-vhost.conf.in for
# CGIBIN/taskgate.fcgi and $STATE. FCGID_MIN_PROCS, FCGID_IDLE, FCGID_LIFETIME and
# FCGID_MAX_REQUESTS override the process limits (apache_kill.sh sets them low).
apache_vhost_site() {
	local dir=$1 procs=$2 cgibin=$3
	mkdir -p "$dir/www" "$dir/logs"
	apache_fill "$ROOT/apache-conf/taskgate-vhost.conf.in" "$dir/site.conf" \
		VHOST="127.0.0.1:$PORT" SERVER_NAME=127.0.0.1 DOCROOT="$dir/www" \
		CGIBIN="$cgibin" STATE_DIR="$STATE" LOGDIR="$dir/logs" MAX_PROCS="$procs" \
		MIN_PROCS="${FCGID_MIN_PROCS:-$procs}" IDLE_TIMEOUT="${FCGID_IDLE:-300}" \
		LIFETIME="${FCGID_LIFETIME:-3600}" MAX_REQUESTS="${FCGID_MAX_REQUESTS:-10000}"
}

# apache_htaccess_site DIR PROGRAM: the shared-hosting layout under DIR/www (the
# document root): apache-conf/htaccess as .htaccess, taskgate-413.json, and
# taskgate.fcgi made from taskgate-wrapper.sh.in (STATE_DIR=$STATE, exec a copy of
# PROGRAM in DIR/bin, as installed: plain CGI starts it for every request, and a
# rebuild of build/ during the test must not catch it half written).
apache_htaccess_site() {
	local dir=$1
	mkdir -p "$dir/www" "$dir/logs" "$dir/bin"
	cp "$2" "$dir/bin/taskgate.fcgi" || return 1
	local program=$dir/bin/taskgate.fcgi
	cp "$ROOT/apache-conf/htaccess" "$dir/www/.htaccess"
	cp "$ROOT/apache-conf/taskgate-413.json" "$dir/www/"
	apache_fill "$ROOT/apache-conf/taskgate-wrapper.sh.in" "$dir/www/taskgate.fcgi" \
		STATE_DIR="$STATE" PROGRAM="$program"
	chmod 0755 "$dir/www/taskgate.fcgi"
	cat > "$dir/site.conf" <<-EOF
	# The shared host's side: a document root where .htaccess may do what
	# apache-conf/htaccess needs.
	DocumentRoot "$dir/www"
	<Directory "$dir/www">
		Options SymLinksIfOwnerMatch
		AllowOverride FileInfo Options Limit
		Require all granted
	</Directory>
	EOF
}

# apache_start DIR fcgid|cgi: writes DIR/httpd.conf (a complete configuration of
# its own: ServerRoot, PidFile, ErrorLog, Mutex, runtime files, all under DIR),
# which includes DIR/site.conf and any lines in APACHE_SERVER_EXTRA, then runs
# apache2 -DFOREGROUND on 127.0.0.1:$PORT and waits until it answers. fcgid: event
# MPM with mod_fcgid; cgi: prefork MPM with mod_cgi and no mod_fcgid.
apache_start() {
	local dir=$1 kind=$2 m=$APACHE_MODULES mods
	mkdir -p "$dir/run" "$dir/logs" "$dir/fcgid" "$dir/www"
	if [ "$kind" = fcgid ]; then
		mods="mpm_event authz_core mime dir alias rewrite env setenvif headers fcgid"
	else
		mods="mpm_prefork authz_core mime dir alias rewrite env setenvif headers cgi"
	fi
	{
		echo "# generated by tests/lib.sh apache_start ($kind)"
		echo "ServerRoot \"$dir\""
		echo "Listen 127.0.0.1:$PORT"
		echo "ServerName 127.0.0.1"
		echo "PidFile \"$dir/run/httpd.pid\""
		echo "DefaultRuntimeDir \"$dir/run\""
		echo "Mutex file:$dir/run default"
		echo "ErrorLog \"$dir/logs/error.log\""
		echo "LogLevel warn"
		local mod
		for mod in $mods; do echo "LoadModule ${mod}_module $m/mod_$mod.so"; done
		if [ "$(id -u)" = 0 ]; then
			# Apache will not run its children as root.
			echo "User www-data"
			echo "Group www-data"
		fi
		# suEXEC where the host has it installed (apache2-suexec-custom) only when a
		# test asks: mod_fcgid refuses to start as a non-root user while suEXEC is on,
		# and the suite runs Apache as www-data (tests/run-all.sh).
		if [ "${APACHE_SUEXEC:-0}" = 1 ]; then
			echo "LoadModule suexec_module $m/mod_suexec.so"
		else
			echo "Suexec Off"
		fi
		echo "TypesConfig /etc/mime.types"
		echo 'LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" combined'
		echo "CustomLog \"$dir/logs/access.log\" combined"
		echo "DocumentRoot \"$dir/www\""
		echo "<Directory />"
		echo "	AllowOverride None"
		echo "	Require all denied"
		echo "</Directory>"
		echo "<Files \".ht*\">"
		echo "	Require all denied"
		echo "</Files>"
		echo "Timeout 60"
		echo "KeepAlive On"
		if [ "$kind" = fcgid ]; then
			echo "StartServers 1"
			echo "ServerLimit 2"
			echo "ThreadsPerChild 32"
			echo "MaxRequestWorkers 64"
			echo "FcgidIPCDir \"$dir/fcgid\""
			echo "FcgidProcessTableFile \"$dir/fcgid/shm\""
		else
			echo "StartServers 2"
			echo "MinSpareServers 2"
			echo "MaxSpareServers 8"
			echo "MaxRequestWorkers 32"
		fi
		printf '%s\n' "${APACHE_SERVER_EXTRA:-}"
		echo "Include \"$dir/site.conf\""
	} > "$dir/httpd.conf"
	if [ "$(id -u)" = 0 ]; then
		chmod 0755 "$WORK"
		chown -R www-data:www-data "$dir"
		# Under suEXEC taskgate runs as the site's user, who must own the tree.
		chown -R "${APACHE_STATE_OWNER:-www-data}:" "$STATE"
	fi
	"$APACHE2" -t -f "$dir/httpd.conf" > "$dir/logs/configtest.log" 2>&1 ||
		{ sed 's/^/# apache2 -t: /' "$dir/logs/configtest.log"; return 1; }
	APACHE_DIR=$dir
	trap '_apache_stop; cleanup' EXIT
	# A session of its own: the prefork MPM signals its whole process group when it
	# stops, which would otherwise include this test.
	setsid "$APACHE2" -f "$dir/httpd.conf" -DFOREGROUND > "$dir/logs/stderr.log" 2>&1 &
	_pids+=($!)
	APACHE_PID=$!
	wait_for curl -s -o /dev/null "http://127.0.0.1:$PORT/" ||
		{ sed 's/^/# apache: /' "$dir/logs/error.log" "$dir/logs/stderr.log" | tail -20; return 1; }
}

# _apache_stop: stops the Apache of this test and everything it started (mod_fcgid's
# processes, mod_cgid's daemon), by pid, within about 10 s.
_apache_stop() {
	[ -n "${APACHE_PID:-}" ] || return 0
	kill -TERM "$APACHE_PID" 2>/dev/null
	local i
	for i in $(seq 1 100); do
		kill -0 "$APACHE_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$APACHE_PID" 2>/dev/null
	# Anything still running with this test's state tree in its environment is ours.
	local p
	for p in /proc/[0-9]*; do
		grep -qszFx "STATE_DIR=$STATE" "$p/environ" 2>/dev/null && kill -9 "${p#/proc/}" 2>/dev/null
	done
	APACHE_PID=
}

# start_mock NAME ARGS...: starts a mock backend; sets MOCK_PORT_<NAME>.
start_mock() {
	local name=$1
	shift
	echo "$*" > "$WORK/mock-$name.cmd"
	"$BUILD/tests/mock_backend" --port 0 --port-file "$WORK/mock-$name.port" --name "$name" "$@" \
		> "$WORK/mock-$name.log" 2>&1 &
	_pids+=($!)
	wait_for test -s "$WORK/mock-$name.port" || return 1
	printf -v "MOCK_PORT_$name" '%s' "$(cat "$WORK/mock-$name.port")"
}

# api METHOD PATH [BODY] [extra curl args...]: sets STATUS and BODY (response).
api_as() {
	local token=$1 method=$2 path=$3
	shift 3
	local data=()
	if [ $# -gt 0 ]; then
		data=(--data-binary "$1" -H 'Content-Type: application/json')
		shift
	fi
	local auth=()
	[ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
	local resp
	resp=$(curl -s -m 30 -o "$WORK/body" -w '%{http_code}' -X "$method" "${auth[@]}" \
		"${data[@]}" "$@" "$BASE$path")
	STATUS=$resp
	BODY=$(cat "$WORK/body")
}
admin() { api_as "$ADMIN" "$@"; }
client() { api_as "$CLIENT" "$@"; }
anon() { api_as "" "$@"; }

# jget FILTER: applies jq to BODY
jget() { printf '%s' "$BODY" | jq -r "$1"; }

# Every JSON file of the state tree parses.
all_state_parses() {
	local f bad=0
	while IFS= read -r -d '' f; do
		jq -e . "$f" > /dev/null 2>&1 || { echo "# unparseable: $f"; bad=1; }
	done < <(find "$STATE" -name '*.json' -not -path '*/corrupt/*' -print0)
	return $bad
}

finish() {
	echo "1..$_checks"
	[ "$_fails" -eq 0 ]
}

# set_config JQ_EXPR: edits config.json atomically (taskgate re-reads it on change).
set_config() {
	jq "$1" "$STATE/config.json" > "$STATE/config.json.new" && mv "$STATE/config.json.new" "$STATE/config.json"
}

# edit_json FILE JQ_EXPR: rewrites a state file the way taskgate does (temp + rename).
edit_json() {
	jq "$2" "$1" > "$1.edit" && mv "$1.edit" "$1"
}

# task_file ID: path of a task's file in the sharded tree.
task_file() { find "$STATE/tasks" -name "$1.json" | head -1; }

# register_mock NAME SERVER_ID [extra JSON fields]: registers a started mock.
register_mock() {
	local name=$1 id=$2 extra=${3:-}
	local port_var="MOCK_PORT_$name"
	local port=${!port_var}
	local proto=cog predict health
	grep -q -- '--protocol http-json' "$WORK/mock-$name.cmd" 2>/dev/null && proto=http-json
	if [ "$proto" = cog ]; then
		predict="http://127.0.0.1:$port/predictions"
		health="http://127.0.0.1:$port/health-check"
	else
		predict="http://127.0.0.1:$port/predict"
		health="http://127.0.0.1:$port/health"
	fi
	admin POST /api/v2/servers "{\"id\":\"$id\",\"protocol\":\"$proto\",\"endpoints\":{\"predict\":\"$predict\",\"health\":\"$health\"}${extra:+,$extra}}"
	[ "$STATUS" = 201 ]
}

# wait_status ID STATUS [seconds]: waits until the task has the status.
wait_status() {
	local id=$1 want=$2 secs=${3:-10} i
	for i in $(seq 1 $((secs * 10))); do
		client GET "/api/v2/tasks/$id"
		[ "$(jget .status)" = "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---- small helpers shared by the task, load-balancer and stats tests ----
# mport NAME: the port of a mock started with start_mock NAME
mport() { local v="MOCK_PORT_$1"; echo "${!v}"; }
# mock NAME PATH: GET from a mock (e.g. /__requests, /__stats)
mock() { curl -s -m 5 "http://127.0.0.1:$(mport "$1")$2"; }
# mock_control NAME JSON: reconfigure a running mock
mock_control() { curl -s -m 5 -X POST --data-binary "$2" "http://127.0.0.1:$(mport "$1")/__control" | jq -e .ok > /dev/null; }
jc() { printf '%s' "$BODY" | jq -c "$1"; }
jqe() { jq -e "$@" > /dev/null 2>&1; }
task_field() { client GET "/api/v2/tasks/$1" && jget "$2"; }
is_status() { [ "$(task_field "$1" .status)" = "$2" ]; }
server_load() { client GET "/api/v2/servers/$1" && jget .currentLoad; }
load_is() { [ "$(server_load "$1")" = "$2" ]; }
# wait_long CMD...: like wait_for, up to ~30 s
wait_long() { local i; for i in $(seq 1 300); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
