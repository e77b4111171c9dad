# Shared by the benchmark scripts (bash): a work folder, lighttpd gateways with
# taskgate on / and the do-nothing floor on /floor, medians and wrk's figures. Each
# script sets BUILD, PROCS, ADMIN and CLIENT first; everything listens on 127.0.0.1
# and is stopped on exit.
WORK=$(mktemp -d /tmp/taskgate-bench.XXXXXX)
pids=()
bench_extra_cleanup=:
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
	wait 2> /dev/null
	$bench_extra_cleanup
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# bench_gateway NAME STATE [JQ]: lighttpd on a free port serving taskgate (the tree
# STATE, made with `init` unless it has a config.json already) and the floor; JQ
# edits config.json, where piggy-backed periodic work is off (a benchmark measures
# what it runs) and publicUrl is the gateway's. Sets URL_<NAME>.
bench_gateway() {
	local name=$1 state=$2 edit=${3:-.} dir="$WORK/$1" port
	port=$(free_port)
	mkdir -p "$dir/www"
	[ -f "$state/config.json" ] ||
		STATE_DIR="$state" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT \
			"$BUILD/taskgate.fcgi" init > /dev/null
	jq ".piggyback.enabled=false | .publicUrl=\"http://127.0.0.1:$port\" | $edit" \
		"$state/config.json" > "$state/c.new" && mv "$state/c.new" "$state/config.json"
	cat > "$dir/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$dir/www"
server.errorlog = "$dir/error.log"
server.max-request-size = 1024
fastcgi.server = (
  "/floor" => (( "bin-path" => "$BUILD/tests/floor.fcgi", "socket" => "$dir/floor.sock",
                 "max-procs" => $PROCS, "check-local" => "disable" )),
  "/" => (( "bin-path" => "$BUILD/taskgate.fcgi", "socket" => "$dir/taskgate.sock",
            "max-procs" => $PROCS, "check-local" => "disable",
            "bin-environment" => ( "STATE_DIR" => "$state" ) )),
)
CONF
	lighttpd -D -f "$dir/lighttpd.conf" > "$dir/stderr.log" 2>&1 &
	pids+=($!)
	local i
	for i in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$port/api/v2/health" > /dev/null && break
		sleep 0.1
	done
	eval "URL_$name=http://127.0.0.1:$port"
	eval "STATE_$name=$state"
}

# bench_mock NAME ARGS...: a Cog mock; sets MOCK_<NAME>.
bench_mock() {
	local name=$1
	shift
	"$BUILD/tests/mock_backend" --protocol cog --port 0 --port-file "$WORK/$name.port" \
		--name "$name" --max-seconds 3600 "$@" > "$WORK/$name.log" 2>&1 &
	pids+=($!)
	local i
	for i in $(seq 1 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.1; done
	eval "MOCK_$name=http://127.0.0.1:$(cat "$WORK/$name.port")"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ms() { # wrk latency ("1.23ms", "850.00us", "1.10s") in milliseconds
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

bench_need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" > /dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
	done
}
