#!/usr/bin/env bash
# Runs the unit tests (cmocka, TAP output) and the integration scripts (TAP), and
# ends with one line: "N passed, N failed".
# Environment: BUILD (build folder), ONLY=unit|integration, VALGRIND=1, T=<pattern>,
# FRONTENDS="lighttpd apache-fcgid apache-cgi" (integration passes).
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$here/../build}
export BUILD
out="$here/out"
mkdir -p "$out"
passed=0
failed=0
failures=()

count() { # $1 = name, $2 = file with TAP output, $3 = exit code
	local ok notok
	ok=$(grep -c '^ok ' "$2" || true)
	notok=$(grep -c '^not ok ' "$2" || true)
	if [ "$3" -ne 0 ] && [ "$notok" -eq 0 ]; then
		notok=1 # a crash or a bad exit is a failure even if no check said so
		echo "not ok - $1 exited with status $3" >> "$2"
	fi
	passed=$((passed + ok))
	failed=$((failed + notok))
	if [ "$notok" -gt 0 ]; then
		failures+=("$1")
		grep -E '^not ok |^# ' "$2" | head -40 | sed "s|^|  [$1] |"
	fi
	printf '%-40s %4d ok %4d failed\n' "$1" "$ok" "$notok"
}

# The code map (README "Code map"): layers, include cycles, and the calls that only
# one layer may make. It reads the sources, so it runs first and in every mode.
if [ -z "${T:-}" ] || [[ layers == *$T* ]]; then
	(cd "$here/.." && python3 tests/layers.py) > "$out/layers.tap" 2>&1
	count layers "$out/layers.tap" $?
fi

if [ "${ONLY:-unit}" = unit ] || [ -z "${ONLY:-}" ]; then
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		[ -n "${T:-}" ] && [[ $name != *$T* ]] && continue
		log="$out/$name.tap"
		if [ "${VALGRIND:-0}" = 1 ]; then
			CMOCKA_MESSAGE_OUTPUT=TAP valgrind -q --error-exitcode=99 --leak-check=full \
				--errors-for-leak-kinds=definite,indirect "$t" > "$log" 2>&1
		else
			CMOCKA_MESSAGE_OUTPUT=TAP "$t" > "$log" 2>&1
		fi
		count "$name" "$log" $?
	done
fi

# Integration tests run once per front end: every script under lighttpd, and under
# Apache + mod_fcgid and Apache + plain CGI the scripts that together reach every route,
# both tokens, the body limit, Prefer: wait, callbacks and the piggy-backed
# maintenance (all but servers_concurrency and valgrind_fcgi, which drive lighttpd's
# own process management). apache_*.sh start their own Apache and run in the
# apache-fcgid pass only. Apache will not run its workers as root, and a state tree
# written both by root (the tests' cron runs and file edits) and by the workers' user
# breaks, so as root the Apache passes run as www-data from the start.
# FRONTENDS (default "lighttpd apache-fcgid apache-cgi") picks the passes.
APACHE_TESTS="servers_basic servers_errors tasks_lifecycle tasks_callbacks tasks_queue
	tasks_failures tasks_load sweep stats health lb openapi work_model failover cog_outputs
	task_files server_starting tasks_expiry auth_strict secret_logs strict_bodies log_file lost_attempts request_metrics config_typo"

run_integration() { # $1 = script, $2 = front end, $3 = name in the summary
	local log="$out/$3.tap" rc
	if [ "$2" = lighttpd ]; then
		FRONTEND=lighttpd timeout 900 bash "$1" > "$log" 2>&1
		rc=$?
	elif [ "$(id -u)" = 0 ] && [ "$1" != "${1%apache_suexec.sh}" ]; then
		# A host's set-up: Apache started as root, a site user of its own.
		FRONTEND="$2" timeout 900 bash "$1" > "$log" 2>&1
		rc=$?
	elif [ "$(id -u)" = 0 ]; then
		timeout 900 setpriv --reuid=www-data --regid=www-data --init-groups \
			env HOME=/tmp FRONTEND="$2" bash "$1" > "$log" 2>&1
		rc=$?
	else
		FRONTEND=$2 timeout 900 bash "$1" > "$log" 2>&1
		rc=$?
	fi
	count "$3" "$log" "$rc"
}

if [ "${ONLY:-integration}" = integration ] || [ -z "${ONLY:-}" ]; then
	for fe in ${FRONTENDS:-lighttpd apache-fcgid apache-cgi}; do
		if [ "$fe" != lighttpd ] && ! command -v apache2 > /dev/null &&
			! [ -x /usr/sbin/apache2 ]; then
			echo "not ok - apache2 is not installed (make deps)" > "$out/$fe.tap"
			count "$fe" "$out/$fe.tap" 1
			continue
		fi
		for t in "$here"/integration/*.sh; do
			[ -f "$t" ] || continue
			name=$(basename "$t" .sh)
			case $fe in
			lighttpd) [[ $name == apache_* ]] && continue ;;
			apache-fcgid) [[ " $(echo $APACHE_TESTS) " == *" $name "* || $name == apache_* ]] || continue ;;
			*) [[ " $(echo $APACHE_TESTS) " == *" $name "* ]] || continue ;;
			esac
			label=$name
			[ "$fe" != lighttpd ] && [[ $name != apache_* ]] && label="$name@$fe"
			[ -n "${T:-}" ] && [[ $label != *$T* ]] && continue
			run_integration "$t" "$fe" "$label"
		done
	done
fi

[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
