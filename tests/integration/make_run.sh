#!/usr/bin/env bash
# `make run` as the README uses it:
# (a) it prints "taskgate ready on http://..." once taskgate answers, and the
#     README's wait loop (grep for that line) works;
# (b) SIGTERM to make stops everything it started: lighttpd (the port closes), the
#     demo Cog server, the periodic jobs and their sleeps;
# (c) so does Ctrl-C (SIGINT to the whole process group), and SIGTERM to the
#     script itself.
# It needs the build in build/ (make run builds there); another BUILD skips it.
# Every loop is bounded; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

if [ "$BUILD" != "$ROOT/build" ]; then
	echo "# SKIP: make run builds in $ROOT/build, this run's build is $BUILD"
	ok "skipped: make run uses build/"
	finish
	exit 0
fi

# ours: the pids of every process whose environment or command line names a
# state tree of this test (lighttpd's FastCGI children have STATE_DIR in theirs).
ours() {
	local p
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = $$ ] && continue
		if grep -qszF "$WORK/state-" "$p/environ" "$p/cmdline" 2>/dev/null; then
			echo "${p#/proc/} $(tr '\0' ' ' < "$p/cmdline" 2>/dev/null | cut -c1-80)"
		fi
	done
}
gone() { [ -z "$(ours)" ] && ! curl -s -m 1 -o /dev/null "http://127.0.0.1:$RUNPORT/"; }
wait_gone() { local i; for i in $(seq 1 50); do gone && return 0; sleep 0.2; done; return 1; }

# start NAME: make run in a session of its own, output to $WORK/NAME.out; sets
# RUNPID (make's pid, also the session's process group).
start() {
	RUNPORT=$(free_port)
	RUNSTATE=$WORK/state-$1
	# A make of its own: not the jobserver of a make that runs this test.
	setsid env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD make -s -C "$ROOT" run PORT="$RUNPORT" STATE_DIR="$RUNSTATE" > "$WORK/$1.out" 2>&1 &
	RUNPID=$!
	# The README's loop, bounded.
	timeout 120 sh -c "until grep -q '^taskgate ready on' '$WORK/$1.out'; do sleep 1; done"
}

# ---------------------------------------------------------------- (a)
check "(a) make run prints its ready line" start term
expect_eq "(a) ... naming its URL" "$(grep -o 'ready on [^ ]*' "$WORK/term.out")" "ready on http://127.0.0.1:$RUNPORT"
check "(a) ... and then answers" curl -sf -m 5 -o /dev/null "http://127.0.0.1:$RUNPORT/api/v2/health"
check "(a) the demo Cog server runs" curl -sf -m 5 -o /dev/null "http://127.0.0.1:$((RUNPORT + 1))/health-check"
jobs_running() { ours | grep -qE "sleep 5|cron/taskgate-"; }
check "(a) the periodic jobs run" wait_long jobs_running
ours > "$WORK/term.before"
check "(a) lighttpd, the demo and the job loops are running" test "$(wc -l < "$WORK/term.before")" -ge 4

# ---------------------------------------------------------------- (b)
kill -TERM "$RUNPID"
check "(b) SIGTERM to make stops everything within 10 s" wait_gone
ours | sed 's/^/# left: /'
check "(b) ... and says so" grep -q "taskgate stopped" "$WORK/term.out"

# ---------------------------------------------------------------- (c)
check "(c) make run starts again" start int
kill -INT -- "-$RUNPID"
check "(c) Ctrl-C (SIGINT to the group) stops everything within 10 s" wait_gone
ours | sed 's/^/# left: /'
check "(c) make run starts once more" start script
script_pid=$(cat "$RUNSTATE/run/lighttpd/run.pid" 2>/dev/null)
check "(c) the script is found" test -n "$script_pid"
kill -TERM "$script_pid"
check "(c) SIGTERM to the script stops everything within 10 s" wait_gone
ours | sed 's/^/# left: /'
for p in $(ours | cut -d' ' -f1); do kill -9 "$p" 2>/dev/null; done
finish
