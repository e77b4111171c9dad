-- wrk script for tests/bench/lb_servers.sh: POST /api/v2/tasks with the client
-- token from $TASKGATE_TOKEN and the model from $BENCH_MODEL.
wrk.method = "POST"
wrk.body = '{"model":"' .. (os.getenv("BENCH_MODEL") or "bench") .. '","input":{"prompt":"hello"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TASKGATE_TOKEN") or "")
