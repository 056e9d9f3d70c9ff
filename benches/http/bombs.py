#!/usr/bin/env python3
"""Decompression bombs against a fresh `reel serve`: RSS during and after the burst.

    cargo build --release --bin reel
    python3 benches/http/bombs.py [--binary target/release/reel] [--bombs 16]

Starts the release binary with the default configuration (only the listen port and the
SQLite file are set, both on 127.0.0.1 / a temporary directory), sends `--bombs` concurrent
`POST /v1/ingest` bodies of `--mib` MiB of zeros (1 GiB by default) compressed with zstd (about 34 KB on the
wire each; the `zstd` command line tool makes them), samples the server's RSS every 10 ms
while they run, then for 10 s afterwards, and prints the statuses and the figures.
With `--hold-secs N --mib 60` each bomb (under the 64 MiB limit) is held open, decoded but
for its last bytes, for N seconds, so all of them would be in memory at once: the body
budget admits what fits and answers the rest 429. With `--raw-response` the bomb travels
inside the turn instead, as a raw-only turn's base64 `raw_response` with
`raw_response_encoding: zstd` (the body itself is plain JSON): the server decodes it as a
stream, refuses it at the 48 MiB layer cap (422, quarantined with its compressed bytes) and
must hold no more than the cap per bomb. Every request goes to 127.0.0.1 only.
"""
import base64
import json
import argparse
import collections
import concurrent.futures
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from idle_actors import rss_kib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bomb(mib, cache_dir):
    """MiB of zeros through `zstd -3`, cached between runs."""
    path = os.path.join(cache_dir, f"reel-bomb-{mib}m.zst")
    if not os.path.exists(path):
        chunk = bytes(1 << 20)
        with open(path + ".tmp", "wb") as out:
            z = subprocess.Popen(["zstd", "-3", "-q", "-c"], stdin=subprocess.PIPE, stdout=out)
            for _ in range(mib):
                z.stdin.write(chunk)
            z.stdin.close()
            if z.wait() != 0:
                sys.exit("zstd failed")
        os.rename(path + ".tmp", path)
    with open(path, "rb") as f:
        return f.read()


def wait_ready(port, proc):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"reel exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    sys.exit("reel did not start")


def post_held(port, body, hold):
    """Sends all but the last bytes, holds them `hold` seconds (the server has decoded
    almost everything by then), then the rest."""
    head = (f"POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: zstd\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
            s.sendall(head.encode() + body[:-8])
            time.sleep(hold)
            try:
                s.sendall(body[-8:])
            except OSError:
                pass  # answered (and closed) while held
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError as e:
        return 0, str(e)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1][:120].decode("utf-8", "replace")


def raw_only_turn(bomb_bytes, n):
    """A raw-only Anthropic turn whose raw_response is the bomb."""
    return json.dumps({
        "provider": "anthropic",
        "agent_name": "bombs",
        "request": {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": True,
                    "messages": [{"role": "user", "content": f"bomb {n}"}]},
        "raw_response": base64.b64encode(bomb_bytes).decode(),
        "raw_response_encoding": "zstd",
        "meta": {"request_id": f"bomb-{n}", "content_type": "text/event-stream"},
    }).encode()


def post(port, body, encoding="zstd"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    try:
        conn.request("POST", "/v1/ingest", body, headers)
        res = conn.getresponse()
        text = res.read()
        return res.status, text[:120].decode("utf-8", "replace")
    except OSError as e:
        return 0, str(e)
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/reel"))
    p.add_argument("--bombs", type=int, default=16)
    p.add_argument("--mib", type=int, default=1024, help="decoded size of each bomb")
    p.add_argument("--after-secs", type=float, default=10.0)
    p.add_argument("--hold-secs", type=float, default=0.0,
                   help="hold each bomb open this long before its last bytes, so that they "
                        "are all decoded at once (the body budget then answers 429)")
    p.add_argument("--raw-response", action="store_true",
                   help="send each bomb as a raw-only turn's raw_response instead of as the body")
    args = p.parse_args()

    body = bomb(args.mib, tempfile.gettempdir())
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = dict(os.environ,
                   REEL_LISTEN=f"127.0.0.1:{port}",
                   REEL_DATABASE_URL=f"sqlite://{tmp}/reel.db?mode=rwc",
                   REEL_LOG="warn")
        proc = subprocess.Popen([args.binary, "serve"], env=env, cwd=tmp)
        try:
            wait_ready(port, proc)
            idle = rss_kib(proc.pid)

            samples = []
            done = threading.Event()

            def sample():
                while not done.is_set():
                    samples.append(rss_kib(proc.pid))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.time()
            with concurrent.futures.ThreadPoolExecutor(args.bombs) as pool:
                if args.raw_response:
                    send = lambda n: post(port, raw_only_turn(body, n), encoding=None)
                elif args.hold_secs:
                    send = lambda _: post_held(port, body, args.hold_secs)
                else:
                    send = lambda _: post(port, body)
                answers = list(pool.map(send, range(args.bombs)))
            elapsed = time.time() - started
            done.set()
            sampler.join()
            at_end = rss_kib(proc.pid)

            after = []
            t0 = time.time()
            while time.time() - t0 < args.after_secs:
                time.sleep(1)
                after.append((round(time.time() - t0), rss_kib(proc.pid)))
            # A normal request after the burst must still be served.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/ping")
            ping = conn.getresponse().status
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    statuses = collections.Counter(status for status, _ in answers)
    print(f"bombs={args.bombs} wire_bytes={len(body)} decoded_bytes={args.mib << 20} "
          f"seconds={elapsed:.2f} statuses={dict(sorted(statuses.items()))} ping_after={ping}")
    for status in sorted(statuses):
        print(f"  {status}: {next(text for s, text in answers if s == status)}")
    mib = lambda kib: f"{kib / 1024:.1f}"
    print(f"rss_mib idle={mib(idle)} peak_during={mib(max(samples))} at_end={mib(at_end)}")
    print("rss_mib after: " + " ".join(f"+{s}s={mib(k)}" for s, k in after))


if __name__ == "__main__":
    main()
