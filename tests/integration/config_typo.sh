#!/usr/bin/env bash
# An operator's typo in config.json, through the front end: the file is never moved
# to corrupt/ (it holds the tokens), the last good settings stay in force, tokens
# included, in long-lived FastCGI processes and in fresh ones (plain CGI starts one
# per request: they read run/config.last-good.json), /api/v2/health and the log name
# the file, line and column; the fixed file takes effect on the next request.
. "$(dirname "$0")/../lib.sh"

start_taskgate 2 || { not_ok "taskgate starts"; finish; exit 1; }
ok "taskgate starts"

set_config '.maxBodyBytes = 2000'
big=$(printf '{"model":"m","input":{"x":"%s"}}' "$(head -c 3000 /dev/zero | tr '\0' a)")
client POST /api/v2/tasks "$big"
expect_eq "a setting in force: maxBodyBytes 2000 refuses a 3 KB body" "$STATUS" 413
client GET /api/v2/health
expect_eq "no warning while config.json is good" "$(jget '.warnings | length')" 0

# The typo: line 3 lacks the quote that opens the key (column 3).
good=$(cat "$STATE/config.json")
printf '%s' "$good" | jq '.maxBodyBytes = 5000' | sed '3s/^  "/  /' > "$WORK/broken.json"
check "the broken file really does not parse" bash -c '! jq . "$1" > /dev/null 2>&1' _ "$WORK/broken.json"
cp "$WORK/broken.json" "$STATE/config.json.edit" && mv "$STATE/config.json.edit" "$STATE/config.json"

admin GET /api/v2/servers
expect_eq "the admin token still works" "$STATUS" 200
client POST /api/v2/tasks '{"model":"nobody","input":{}}'
expect_eq "the client token still works" "$STATUS" 202
client POST /api/v2/tasks "$big"
expect_eq "the last good settings are in force (maxBodyBytes still 2000)" "$STATUS" 413
anon GET /api/v2/health
expect_eq "health answers 200" "$STATUS" 200
warning=$(jget '.warnings[0] // ""')
check "health names the file, line and column ($warning)" \
	bash -c '[[ $1 == *"config.json does not parse (line 3, column 3:"* ]]' _ "$warning"
check "... and says the last good settings are in force" \
	bash -c '[[ $1 == *"last good settings are in force"* ]]' _ "$warning"
check "the operator's file is where it was, as written" cmp -s "$WORK/broken.json" "$STATE/config.json"
check "nothing went to corrupt/" bash -c '! ls "$1"/corrupt/ 2> /dev/null | grep -q config' _ "$STATE"
check "the log names the file, line and column" \
	grep -q "config.json: does not parse (line 3, column 3" "$STATE/log/taskgate.log"
# Many requests, one process or many: the same answer each time.
codes=""
for i in 1 2 3 4 5 6; do
	admin GET /api/v2/servers
	codes="$codes$STATUS "
done
expect_eq "six more admin requests all work" "$codes" "200 200 200 200 200 200 "

# The fix takes effect on the next request.
printf '%s' "$good" | jq '.maxBodyBytes = 5000' > "$STATE/config.json.edit" &&
	mv "$STATE/config.json.edit" "$STATE/config.json"
client POST /api/v2/tasks "$big"
expect_eq "the fixed file is in force (maxBodyBytes 5000)" "$STATUS" 202
anon GET /api/v2/health
expect_eq "the warning is gone" "$(jget '.warnings | length')" 0

# A file broken in place (an editor writing over it) is read the same way.
printf '{"adminToken": "x",\n' > "$STATE/config.json"
admin GET /api/v2/servers
expect_eq "a truncated file: the admin token still works" "$STATUS" 200
anon GET /api/v2/health
warning=$(jget '.warnings[0] // ""')
check "a truncated file: health points past its end (line 2, column 1) ($warning)" \
	bash -c '[[ $1 == *"(line 2, column 1:"* ]]' _ "$warning"
printf '%s' "$good" > "$STATE/config.json"
check "every file of the state tree parses" all_state_parses
finish
