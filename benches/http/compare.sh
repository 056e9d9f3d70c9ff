#!/usr/bin/env bash
# Runs the cold and warm wrk scripts against one or more reel binaries, each on a fresh
# SQLite file and a fresh Postgres database, and prints one line per run, so two builds
# (say, before and after a change) are measured under the same conditions, interleaved.
#
#   benches/http/compare.sh target-before/release/reel target/release/reel
#   benches/http/compare.sh target/release/reel keys:target/release/reel   # auth cost
#
# A `keys:` prefix runs that binary with `auth.mode = "keys"` and a fresh key sent by wrk; a
# `noraw:` prefix runs it with `capture.raw = false` (no raw turns kept), to measure capture.
#
# Each line gives the rate, latency and the CPU time per turn of the server (and of its
# Postgres backends), the figure to compare when other work shares the machine.
#
# Env: SCRIPTS (the wrk scripts, default "ingest.lua ingest_warm.lua"; ingest_raw.lua sends
# raw-only turns), DURATION (wrk seconds, default 20), PG_ADMIN (default
# postgres://postgres@127.0.0.1:5432/postgres; empty skips Postgres). Loopback only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
duration="${DURATION:-20}"
pg_admin="${PG_ADMIN-postgres://postgres@127.0.0.1:5432/postgres}"
port=18090
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() { # binary backend script
  local bin="$1" backend="$2" script="$3" url db="" mode=none raw=true
  if [[ "$bin" == keys:* ]]; then
    bin="${bin#keys:}"
    mode=keys
  fi
  if [[ "$bin" == noraw:* ]]; then
    bin="${bin#noraw:}"
    raw=false
  fi
  port=$((port + 1))
  if [[ "$backend" == sqlite ]]; then
    url="sqlite://$work/$port.db?mode=rwc"
  else
    db="reel_bench_$port"
    psql -q "$pg_admin" -c "CREATE DATABASE $db" >/dev/null
    url="${pg_admin%/*}/$db"
  fi
  local key=""
  if [[ "$mode" == keys ]]; then
    "$bin" migrate --database-url "$url" >/dev/null
    key="$("$bin" keys create --database-url "$url" --org 11111111-1111-1111-1111-111111111111 |
      grep -o 'reel_[0-9a-f]*_[0-9a-f]*' | head -1)"
  fi
  REEL_CAPTURE_RAW="$raw" REEL_AUTH_MODE="$mode" REEL_LISTEN="127.0.0.1:$port" REEL_DATABASE_URL="$url" REEL_LOG=warn \
    "$bin" serve &
  local pid=$!
  for _ in $(seq 1 100); do
    curl -sf "127.0.0.1:$port/ping" >/dev/null && break
    sleep 0.1
  done
  local out cpu_before cpu_after pg_cpu=""
  cpu_before="$(cpu_ticks "$pid")"
  out="$(env ${key:+REEL_KEY="$key"} wrk -t2 -c8 -d"${duration}s" --latency -s "$here/$script" "http://127.0.0.1:$port")"
  cpu_after="$(cpu_ticks "$pid")"
  if [[ -n "$db" ]]; then
    # The run's database is fresh: its backends' whole CPU time is this run's.
    local conn
    pg_cpu=0
    for conn in $(psql -Atq "$pg_admin" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db'"); do
      pg_cpu=$((pg_cpu + $(cpu_ticks "$conn")))
    done
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  [[ -n "$db" ]] && psql -q "$pg_admin" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
  local rate p50 p99 non2xx
  rate="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
  local requests per_turn
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  # CPU per turn (µs): the server's, and on Postgres its backends', which unlike the rate
  # barely move when other work shares the machine.
  per_turn="reel $(((cpu_after - cpu_before) * 1000000 / ticks / requests)) µs"
  [[ -n "$pg_cpu" ]] && per_turn+=" pg $((pg_cpu * 1000000 / ticks / requests)) µs"
  printf '%-40s %-8s %-16s %10s turns/s  p50 %-8s p99 %-8s non-2xx %s  cpu/turn: %s\n' \
    "$mode:raw=$raw:$bin" "$backend" "$script" "$rate" "$p50" "$p99" "${non2xx:-0}" "$per_turn"
}

ticks="$(getconf CLK_TCK)"
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name, field 2, may hold spaces, so fields are counted after its closing paren).
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  stat="${stat##*) }"
  awk '{print $12 + $13}' <<<"$stat"
}

backends=(sqlite)
[[ -n "$pg_admin" ]] && backends+=(postgres)
for backend in "${backends[@]}"; do
  for script in ${SCRIPTS:-ingest.lua ingest_warm.lua}; do
    for bin in "$@"; do
      run "$bin" "$backend" "$script"
    done
  done
done
