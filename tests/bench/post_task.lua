-- wrk: POST /api/v2/tasks with the client token from $TASKGATE_TOKEN.
wrk.method = "POST"
wrk.body = '{"model":"bench","input":{"prompt":"hello"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TASKGATE_TOKEN") or "")
