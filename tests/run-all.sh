#!/usr/bin/env bash
# Runs the unit tests (cmocka, TAP output) and the integration scripts (TAP), and
# ends with one line: "N passed, N failed".
# Environment: BUILD (build folder), ONLY=unit|integration, VALGRIND=1, T=<pattern>.
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

if [ "${ONLY:-integration}" = integration ] || [ -z "${ONLY:-}" ]; then
	for t in "$here"/integration/*.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		[ -n "${T:-}" ] && [[ $name != *$T* ]] && continue
		log="$out/$name.tap"
		timeout 900 bash "$t" > "$log" 2>&1
		count "$name" "$log" $?
	done
fi

[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
