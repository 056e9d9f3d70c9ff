#!/usr/bin/env python3
"""Posts N cold turns (10 history exchanges, 21 new nodes) one after another and prints
the latency: the per-statement cost of the database path without any queueing.

Usage: sequential_cold.py URL N"""
import json, sys, time, urllib.request

from turns import turn

url = sys.argv[1]; n = int(sys.argv[2])
times = []
for r in range(n):
    sid = f"cold-{time.time_ns()}-{r}"
    body = json.dumps(turn(sid, 10)).encode()
    req = urllib.request.Request(url + "/v1/ingest", data=body, headers={"content-type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as resp:
        resp.read()
    times.append(time.perf_counter() - t)
s = sorted(times)
print(f"sequential cold 21-node turns: median {s[len(s)//2]*1000:.1f} ms, p90 {s[int(len(s)*0.9)]*1000:.1f} ms, min {s[0]*1000:.1f} ms; first ten: {[round(x*1000,1) for x in times[:10]]}")
