#!/usr/bin/env python3
"""Posts N cold turns (10 history exchanges, 21 new nodes) one after another and prints
the latency: the per-statement cost of the database path without any queueing.

Usage: sequential_cold.py URL N"""
import json, sys, time, urllib.request
url = sys.argv[1]; n = int(sys.argv[2])
def turn(sid, k):
    msgs = []
    for i in range(k):
        msgs.append({"role": "user", "content": f"{sid} question {i} " + "x" * 200})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": f"{sid} answer {i} " + "y" * 400}]})
    msgs.append({"role": "user", "content": f"{sid} question {k}"})
    return {"provider": "anthropic", "request": {"model": "m", "max_tokens": 10, "messages": msgs},
            "response": {"model": "m", "done": True, "stop_reason": "end_turn",
                         "message": {"role": "assistant", "content": [{"type": "text", "text": f"{sid} answer {k}"}]},
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}},
            "session": {"org_id": "", "harness_id": "claude", "harness_session_id": sid}}
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
