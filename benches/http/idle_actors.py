#!/usr/bin/env python3
"""Opens N sessions (one small turn each) on a running reel, then prints the server's RSS.

    python3 benches/http/idle_actors.py --url http://127.0.0.1:8082 --pid PID --sessions 10000

Run the server with a long sessions.idle_timeout_secs so the actors stay alive.
"""
import argparse
import concurrent.futures
import http.client
import json
import threading
import time
import urllib.parse


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


local = threading.local()


def post(url, body):
    if not hasattr(local, "conn"):
        u = urllib.parse.urlparse(url)
        local.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    local.conn.request("POST", "/v1/ingest", body, {"Content-Type": "application/json"})
    res = local.conn.getresponse()
    res.read()
    return res.status


def turn(i):
    return json.dumps({
        "provider": "anthropic",
        "request": {"model": "claude-sonnet-4-5",
                    "messages": [{"role": "user", "content": f"idle session {i}"}]},
        "response": {"model": "claude-sonnet-4-5", "done": True, "stop_reason": "end_turn",
                     "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                     "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
        "session": {"org_id": "", "auth_subject": "bench", "harness_id": "claude",
                    "harness_session_id": f"idle-{i}"},
    })


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8082")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()

    before = rss_kib(args.pid)
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        statuses = list(pool.map(lambda i: post(args.url, turn(i)), range(args.sessions)))
    elapsed = time.time() - started
    refused = sum(1 for s in statuses if s != 202)
    time.sleep(2)
    after = rss_kib(args.pid)
    u = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("GET", "/metrics")
    live = [l for l in conn.getresponse().read().decode().splitlines()
            if l.startswith("reel_session_actors ")]
    print(f"sessions={args.sessions} refused={refused} seconds={elapsed:.1f} {live[0] if live else ''}")
    print(f"rss_before_kib={before} rss_after_kib={after} "
          f"per_session_bytes={(after - before) * 1024 / args.sessions:.0f}")


if __name__ == "__main__":
    main()
