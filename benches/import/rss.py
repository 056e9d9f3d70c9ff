#!/usr/bin/env python3
"""`reel import` of a generated JSON Lines file of about 1 GB: its rate and peak RSS.

Generates the file (unless it exists), imports it into a fresh SQLite database (or the
Postgres database given with --database-url), then imports it again (a resumed run: every
turn is a duplicate), and prints for each run the wall time, the turns and bytes per
second and the process's peak resident memory (ru_maxrss of the child).

    cargo build --release
    python3 benches/import/rss.py [--size-mb 1024] [--file /tmp/reel-import-1g.jsonl] \
        [--database-url postgres://…]

The turns are those of benches/http/turns.py: turn k of a session re-sends k earlier
exchanges, so lines grow with the conversation (0.2 to 13 KB here), 64 sessions
interleaved at a time, as a capture of several concurrent sessions would be.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "http"))
from turns import turn  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TURNS_PER_SESSION = 20
INTERLEAVED = 64


def generate(path, size):
    written = 0
    lines = 0
    batch = 0
    with open(path + ".part", "w") as out:
        while written < size:
            sids = [f"imp-{batch}-{i}" for i in range(INTERLEAVED)]
            for k in range(TURNS_PER_SESSION):
                for sid in sids:
                    line = json.dumps(turn(sid, k), separators=(",", ":")) + "\n"
                    out.write(line)
                    written += len(line)
                    lines += 1
            batch += 1
    os.rename(path + ".part", path)
    return lines


def run(binary, path, url):
    """Runs one import; returns its summary line, wall time and peak RSS in KiB."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        child = subprocess.Popen(
            [binary, "import", "--no-progress", path, "--database-url", url],
            stdout=out, stderr=err,
        )
        # wait4 gives this child's own rusage: ru_maxrss is its peak RSS, in KiB on Linux.
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"import failed: {err.read()}")
        return out.read().strip(), elapsed, usage.ru_maxrss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--file", default=os.path.join(tempfile.gettempdir(), "reel-import-1g.jsonl"))
    parser.add_argument("--database-url")
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "reel"))
    args = parser.parse_args()

    if not os.path.exists(args.file):
        lines = generate(args.file, args.size_mb * 1024 * 1024)
        print(f"generated {args.file}: {lines} lines")
    size = os.path.getsize(args.file)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite://{tmp}/import.db?mode=rwc"
        for name in ("first run", "second run"):
            summary, elapsed, peak_kib = run(args.binary, args.file, url)
            turns = int(summary.split(":")[0].split()[1])
            print(f"{name}: {summary}")
            print(f"  {elapsed:.1f} s, {turns / elapsed:.0f} turns/s, "
                  f"{size / elapsed / 1e6:.1f} MB/s, peak RSS {peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
