#!/usr/bin/env python3
"""Posts ROUNDS batches of N turns of one new session each (a conversation growing by one
exchange per turn) and prints the median time per batch.

Usage: batch.py URL N ROUNDS"""
import json, sys, time, urllib.request

from turns import turn

url = sys.argv[1]; n = int(sys.argv[2]); rounds = int(sys.argv[3])
times = []
for r in range(rounds):
    sid = f"batch-{time.time_ns()}-{r}"
    body = json.dumps({"turns": [turn(sid, k) for k in range(n)]}).encode()
    req = urllib.request.Request(url + "/v1/ingest/batch", data=body, headers={"content-type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as resp:
        out = json.load(resp)
    times.append(time.perf_counter() - t)
    assert out["accepted"] == n, out
times.sort()
print(f"{n} turns of one session per batch: median {times[len(times)//2]*1000:.1f} ms ({n/times[len(times)//2]:.0f} turns/s), min {times[0]*1000:.1f} ms")
