#!/usr/bin/env python3
"""Fills a taskgate state tree with a task history for the benchmarks:
FINISHED completed tasks spread over the last days (task files in their shards
plus created/ index entries), ACTIVE PROCESSING tasks with far deadlines (plus
active/ entries) assigned to server 'bench', and QUEUED tasks (argument 4, default
0) for model 'bench' waiting in queue/, queued over the last QUEUED/50 seconds
(50 a second, the pace of a busy gateway whose backends fell behind). Writes the
files directly in the layout lib/fs/store.c, lib/fs/createdindex.c and
lib/fs/queueindex.c define (FNV-1a shards, minute and bucket folders, and the
finished/COMPLETED index)."""
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

QUEUE_BUCKET_MS = 65536
PRIO_OFFSET = 500000

def main():
    state, finished, active = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    queued = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    now = int(time.time() * 1000)
    for s in range(256):
        os.makedirs(os.path.join(state, "tasks", "%02x" % s), exist_ok=True)
    dirs = {}
    def entry(folder, name):
        if folder not in dirs:
            os.makedirs(folder, exist_ok=True)
            dirs[folder] = True
        write(os.path.join(folder, name), b"")
    for i in range(finished + active + queued):
        tid = str(uuid.uuid4())
        kind = "done" if i < finished else "active" if i < finished + active else "queued"
        # finished tasks spread over the last 3 days: inside any sane retention
        if kind == "done":
            created = now - (i * 7919) % (3 * 86400 * 1000)
        elif kind == "active":
            created = now
        else:
            created = now - (queued - (i - finished - active)) * 20
        status = {"done": "COMPLETED", "active": "PROCESSING", "queued": "QUEUED"}[kind]
        done = created + 1000 if kind == "done" else None
        doc = json.loads(task_doc(tid, status, created, done, "bench" if kind != "queued" else ""))
        if kind == "queued":
            bucket = created - created % QUEUE_BUCKET_MS
            name = "%013d-%013d-%s" % (created, 0, tid)
            key = "%06d/%013d/%s" % (PRIO_OFFSET, bucket, name)
            doc.update({"attempts": 0, "history": [], "deadline": None, "queueKey": key})
            entry(os.path.join(state, "queue", "%06d" % PRIO_OFFSET, "%013d" % bucket), name)
        write(os.path.join(state, "tasks", shard(tid), tid + ".json"), json.dumps(doc).encode())
        hour = time.strftime("%Y%m%d%H", time.gmtime(created // 1000))
        minute = time.strftime("%M", time.gmtime(created // 1000))
        entry(os.path.join(state, "created", hour, minute), "%013d-%s" % (created, tid))
        if kind == "done":
            entry(os.path.join(state, "finished", "COMPLETED", hour, minute),
                  "%013d-%s" % (created, tid))
        if kind == "active":
            write(os.path.join(state, "active", tid), b"")

main()
