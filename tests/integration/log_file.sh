#!/usr/bin/env bash
# taskgate's own log file (config.json "logFile", by default log/taskgate.log in the
# state tree), where an operator reads what the web server's error log may hide:
# (a) the FastCGI processes' lines are there (request lines with logRequests);
# (b) so are a cron job's;
# (c) it is rotated by size, keeping logKeep old files, under concurrent writers,
#     every line whole;
# (d) "logFile": "" writes none; a symlink in its place is not followed.
# Every loop is bounded; only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

LOG=$STATE/log/taskgate.log
start_taskgate 2 || { not_ok "taskgate starts"; finish; exit 1; }
ok "taskgate starts behind ${FRONTEND:-lighttpd}"
check "taskgate logs its requests" set_config '.logRequests = true'
anon GET /api/v2/health
client GET /api/v2/tasks/no-such-task
check "(a) the log file is made in the state tree" wait_long test -s "$LOG"
check "(a) ... with the request lines" wait_long grep -q "taskgate\[[0-9]*\] info rid=[0-9a-f]* GET /api/v2/tasks/no-such-task 404" "$LOG"
check "(a) ... not readable by others" bash -c '[ "$(( 0$(stat -c %a "$1") & 7 ))" = 0 ]' _ "$LOG"

# A damaged server file: the health job moves it to corrupt/ and says so.
printf '{"id":' > "$STATE/servers/broken.json"
STATE_DIR="$STATE" "$BUILD/cron/taskgate-health" > "$WORK/health.out" 2>&1
check "(b) a cron job's lines are there too" grep -q "taskgate-health\[[0-9]*\] error .*servers/broken is corrupt" "$LOG"

# ---------------------------------------------------------------- (c)
check "(c) rotate at 4 KiB, keep 2" set_config '.logMaxBytes = 4096 | .logKeep = 2'
client GET /api/v2/servers # the processes read the new settings
burst() { # 4 writers, 60 requests each, with a distinct path per request
	local w i writers=()
	for w in 1 2 3 4; do
		(for i in $(seq 1 60); do
			curl -s -m 10 -o /dev/null "$BASE/api/v2/nothing-$1-$w-$i"
		done) &
		writers+=($!)
	done
	wait "${writers[@]}" # not a bare wait: the web server is a child too
}
burst one
anon GET /api/v2/health
check "(c) taskgate.log.1 and .2 exist" test -s "$LOG.1" -a -s "$LOG.2"
check "(c) ... and no .3 (logKeep 2)" test ! -e "$LOG.3"
big=$(stat -c %s "$LOG" "$LOG.1" "$LOG.2" | sort -n | tail -1)
check "(c) no file grew far past the limit ($big bytes)" test "$big" -lt 6144
bad=$(cat "$LOG.2" "$LOG.1" "$LOG" | grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z taskgate[-a-z]*\[[0-9]+\] (info|warn|error) ')
expect_eq "(c) every line is whole" "$bad" 0
check "(c) the newest lines are in the current file" grep -q "GET /api/v2/health 200" "$LOG"
check "(c) the burst reached the old files" grep -q "GET /api/v2/nothing-one-" "$LOG.1"

# ---------------------------------------------------------------- (d)
check "(d) logFile off" set_config '.logFile = ""'
client GET /api/v2/servers
rm -f "$LOG"
anon GET /api/v2/health
anon GET /api/v2/nothing-after-off
check "(d) no log file is written" test ! -e "$LOG"
check "(d) logFile back on" set_config '.logFile = "log/taskgate.log"'
ln -s "$WORK/elsewhere.log" "$LOG"
anon GET /api/v2/nothing-through-a-link
anon GET /api/v2/health
check "(d) a symlink in its place is not followed" test ! -e "$WORK/elsewhere.log"
check "every JSON file of the state tree parses" all_state_parses
finish
