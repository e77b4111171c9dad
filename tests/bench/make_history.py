#!/usr/bin/env python3
"""Fills a taskgate state tree with a task history for the sweep benchmark:
FINISHED completed tasks spread over the last days (task files in their shards
plus created/ index entries), and ACTIVE PROCESSING tasks with far deadlines
(plus active/ entries) assigned to server 'bench'. Writes the files directly in
the layout lib/store.c and lib/taskindex.c define (FNV-1a shards)."""
import json, os, sys, time, uuid

def shard(task_id):
    h = 2166136261
    for c in task_id.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    return "%02x" % (h & 0xff)

def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    os.write(fd, data)
    os.close(fd)

def task_doc(tid, status, created, done, server):
    return json.dumps({
        "id": tid, "status": status,
        "request": {"model": "bench", "input": {"n": 1}, "priority": 0, "timeoutSeconds": 86400,
                    "maxAttempts": 3, "affinityKey": None, "group": None, "tags": []},
        "result": {"output": "ok"} if status == "COMPLETED" else None, "error": None,
        "serverId": server, "attempts": 1, "failures": 0, "createdAt": created,
        "updatedAt": done or created, "completedAt": done, "priority": 0,
        "deadline": None if done else created + 86400 * 1000, "nextAttemptAt": None,
        "queuedAt": created,
        "history": [{"attempt": 1, "serverId": server, "startedAt": created, "endedAt": done,
                     "outcome": "succeeded" if done else None, "error": None, "secretHash": ""}],
        "idempotencyKey": None, "avoidServer": "", "queueKey": ""}).encode()

def main():
    state, finished, active = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    now = int(time.time() * 1000)
    for s in range(256):
        os.makedirs(os.path.join(state, "tasks", "%02x" % s), exist_ok=True)
    hours = {}
    for i in range(finished + active):
        tid = str(uuid.uuid4())
        is_active = i >= finished
        # finished tasks spread over the last 3 days: inside any sane retention
        created = now - (0 if is_active else (i * 7919) % (3 * 86400 * 1000))
        status = "PROCESSING" if is_active else "COMPLETED"
        done = None if is_active else created + 1000
        write(os.path.join(state, "tasks", shard(tid), tid + ".json"),
              task_doc(tid, status, created, done, "bench"))
        hour = time.strftime("%Y%m%d%H", time.gmtime(created // 1000))
        if hour not in hours:
            os.makedirs(os.path.join(state, "created", hour), exist_ok=True)
            hours[hour] = True
        write(os.path.join(state, "created", hour, "%013d-%s" % (created, tid)), b"")
        if is_active:
            write(os.path.join(state, "active", tid), b"")

main()
