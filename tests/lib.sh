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

# start_taskgate [procs]: init a state tree and start lighttpd; sets PORT and BASE.
start_taskgate() {
	local procs=${1:-2}
	PORT=$(free_port)
	BASE="http://127.0.0.1:$PORT"
	mkdir -p "$WORK/lighttpd/www"
	STATE_DIR="$STATE" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" \
		"$BUILD/taskgate.fcgi" init > /dev/null || return 1
	sed -e "s|@PORT@|$PORT|" -e "s|@DOCROOT@|$WORK/lighttpd/www|" \
		-e "s|@LOGDIR@|$WORK/lighttpd|g" -e "s|@PROGRAM@|$BUILD/taskgate.fcgi|" \
		-e "s|@RUNDIR@|$WORK/lighttpd|" -e "s|@PROCS@|$procs|" -e "s|@STATE_DIR@|$STATE|" \
		"$ROOT/apache-conf/lighttpd.conf.in" > "$WORK/lighttpd/lighttpd.conf"
	lighttpd -D -f "$WORK/lighttpd/lighttpd.conf" > "$WORK/lighttpd/stderr.log" 2>&1 &
	_pids+=($!)
	wait_for curl -sf "$BASE/api/v2/health"
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
