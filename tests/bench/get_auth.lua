-- wrk: GET with the client token from $TASKGATE_TOKEN.
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TASKGATE_TOKEN") or "")
