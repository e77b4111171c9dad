#!/usr/bin/env bash
# /metrics counts the requests the front end passed to taskgate, whichever process
# answered (under CGI each request is a process of its own):
# (a) taskgate_http_requests_total{method,route,code} grows by exactly the
#     requests made, per route pattern and code; requests no route took are
#     method="" route="" (one slot for them all: a client picks those paths);
# (b) taskgate_http_request_duration_seconds{method,route} counts them too, with a
#     sum that covers a request the backend held for a second;
# (c) the exposition passes the strict parser (tests/promcheck.py).
# Only 127.0.0.1 is used.
. "$(dirname "$0")/../lib.sh"

start_taskgate 2 || { not_ok "taskgate starts"; finish; exit 1; }
ok "taskgate starts behind ${FRONTEND:-lighttpd}"
# value NAME{LABELS}: the sample's value in the last scrape ($WORK/m), 0 if absent.
scrape() { curl -s -m 10 -H "Authorization: Bearer $CLIENT" -o "$WORK/m" "$BASE/metrics"; }
value() { awk -v k="$1" 'index($0, k " ") == 1 { print $2; f = 1 } END { if (!f) print 0 }' "$WORK/m"; }
req() { value "taskgate_http_requests_total{method=\"$1\",route=\"$2\",code=\"$3\"}"; }

scrape
h0=$(req GET /api/v2/health 200)
t0=$(req POST /api/v2/tasks 202)
b0=$(req POST /api/v2/tasks 400)
g0=$(req GET /api/v2/tasks/:id 404)
n0=$(req "" "" 404)
m0=$(req GET /metrics 200)
for i in 1 2 3; do anon GET /api/v2/health; done
client POST /api/v2/tasks '{"model":"m","input":{}}'
client POST /api/v2/tasks '{"model":"m","input":{},"modle":1}'
client POST /api/v2/tasks '{"input":{}}'
client GET /api/v2/tasks/no-such-task
anon GET /nowhere/at/all
anon GET /api/v2/nothing
scrape
expect_eq "(a) 3 health checks" "$(( $(req GET /api/v2/health 200) - h0 ))" 3
expect_eq "(a) 1 task created" "$(( $(req POST /api/v2/tasks 202) - t0 ))" 1
expect_eq "(a) 2 tasks refused" "$(( $(req POST /api/v2/tasks 400) - b0 ))" 2
expect_eq "(a) 1 unknown task, under its route's pattern" "$(( $(req GET /api/v2/tasks/:id 404) - g0 ))" 1
expect_eq "(a) 2 paths no route took, method=\"\" route=\"\"" "$(( $(req "" "" 404) - n0 ))" 2
expect_eq "(a) the first scrape counted itself once" "$(( $(req GET /metrics 200) - m0 ))" 1

# ---------------------------------------------------------------- (b)
d0=$(value 'taskgate_http_request_duration_seconds_count{method="GET",route="/api/v2/health"}')
expect_eq "(b) the duration histogram counts the same requests" "$d0" "$(req GET /api/v2/health 200)"
start_mock slow --protocol http-json --slots 2 --delay-ms 1000 || not_ok "(b) mock starts"
check "(b) register a server that answers in 1 s" register_mock slow slow
s0=$(value 'taskgate_http_request_duration_seconds_sum{method="POST",route="/api/v2/tasks"}')
client POST /api/v2/tasks '{"model":"m","input":{}}' -H 'Prefer: wait=10'
expect_eq "(b) a task waited for" "$(jget .status)" COMPLETED
scrape
s1=$(value 'taskgate_http_request_duration_seconds_sum{method="POST",route="/api/v2/tasks"}')
check "(b) the sum grew by at least the second it waited ($s0 -> $s1)" \
	python3 -c "import sys; sys.exit(0 if float('$s1') - float('$s0') >= 0.95 else 1)"
inf=$(value 'taskgate_http_request_duration_seconds_bucket{method="POST",route="/api/v2/tasks",le="+Inf"}')
cnt=$(value 'taskgate_http_request_duration_seconds_count{method="POST",route="/api/v2/tasks"}')
expect_eq "(b) the +Inf bucket is the count" "$inf" "$cnt"

# ---------------------------------------------------------------- (c)
check "(c) the exposition parses strictly" python3 "$ROOT/tests/promcheck.py" "$WORK/m"
finish
