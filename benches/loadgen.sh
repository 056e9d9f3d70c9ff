#!/usr/bin/env bash
# Storage cost per turn against the reference's statement pattern, with the `loadgen` load
# generator: for each shape, `loadgen sql-reference` issues the reference server's per-node
# statements straight to a fresh Postgres database (no HTTP, no parsing: a lower bound on
# its cost), then `loadgen http` replays the same sessions through `reel serve` on a fresh
# Postgres database and a fresh SQLite file, for every reel binary given (raw capture on
# unless the binary is prefixed `noraw:`, synchronous commits). It prints one table row per shape and binary.
#
#   LOADGEN=/path/to/loadgen benches/loadgen.sh target/release/reel
#   LOADGEN=… benches/loadgen.sh /tmp/reel-before target/release/reel   # before and after
#   LOADGEN=… benches/loadgen.sh noraw:target/release/reel target/release/reel   # capture cost
#
# A `noraw:` prefix runs that binary with `capture.raw = false` (no raw turns kept).
#
# The load generator, the server and Postgres share the machine's cores, so the rates are
# those of one machine doing all three; the CPU columns (µs of CPU per turn of the server
# and of its Postgres backends) move less when other work shares the machine.
#
# Env: LOADGEN (the loadgen binary; required), SHAPES (default "small claude"),
# PG_ADMIN (default postgres://postgres@127.0.0.1:5432/postgres), CONCURRENCY (default 8),
# RUNS (runs per cell, default 1; the median rate is printed).
set -euo pipefail
loadgen="${LOADGEN:?set LOADGEN to the loadgen binary}"
pg_admin="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
concurrency="${CONCURRENCY:-8}"
runs="${RUNS:-1}"
port=18190
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ticks="$(getconf CLK_TCK)"
[[ $# -ge 1 ]] || { echo "usage: LOADGEN=… $0 REEL_BINARY…" >&2; exit 2; }

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat, counted
# after the command name's closing paren, which may follow spaces).
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  stat="${stat##*) }"
  awk '{print $12 + $13}' <<<"$stat"
}

# The CPU ticks of every backend connected to database $1.
pg_ticks() {
  local total=0 conn
  for conn in $(psql -Atq "$pg_admin" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$1'"); do
    total=$((total + $(cpu_ticks "$conn")))
  done
  echo "$total"
}

psql_quiet() { PGOPTIONS="-c client_min_messages=warning" psql -q "$pg_admin" -c "$1" >/dev/null; }

fresh_db() {
  local db="reel_loadgen_$1"
  psql_quiet "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  psql_quiet "CREATE DATABASE $db"
  echo "$db"
}

drop_db() { psql_quiet "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }

load_args() { # shape tag
  case "$1" in
    small) echo "--shape small --sessions 400 --turns 10 --concurrency $concurrency --tag $2" ;;
    claude) echo "--shape claude --sessions 64 --turns 30 --concurrency $concurrency --tag $2" ;;
    *) echo "unknown shape $1" >&2; exit 2 ;;
  esac
}

json_field() { # json field
  python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(v if not isinstance(v, dict) else json.dumps(v, separators=(",", ":")))' "$1" "$2"
}

# One reference run: prints its turns/s. Runs in a subshell: the caller picks the port.
reference() { # shape port
  local db out port="$2"
  db="$(fresh_db "$port")"
  # shellcheck disable=SC2046
  out="$("$loadgen" sql-reference --pg "${pg_admin%/*}/$db" $(load_args "$1" "ref$port$RANDOM") 2>&1 | tail -1)"
  drop_db "$db"
  json_field "$out" turns_per_s
}

# One reel run: prints "turns/s p99_ms statuses reel_us pg_us". Runs in a subshell: the
# caller picks the port.
reel() { # binary backend shape port
  local bin="$1" backend="$2" shape="$3" port="$4" url db="" pid out before after pg=0 turns raw=true
  if [[ "$bin" == noraw:* ]]; then
    bin="${bin#noraw:}"
    raw=false
  fi
  if [[ "$backend" == sqlite ]]; then
    url="sqlite://$work/$port.db?mode=rwc"
  else
    db="$(fresh_db "$port")"
    url="${pg_admin%/*}/$db"
  fi
  REEL_CAPTURE_RAW="$raw" REEL_LISTEN="127.0.0.1:$port" REEL_DATABASE_URL="$url" REEL_LOG=warn \
    "$bin" serve >/dev/null &
  pid=$!
  for _ in $(seq 1 200); do
    curl -sf "127.0.0.1:$port/ping" >/dev/null && break
    sleep 0.1
  done
  before="$(cpu_ticks "$pid")"
  # shellcheck disable=SC2046
  out="$("$loadgen" http --url "http://127.0.0.1:$port" $(load_args "$shape" "run$port$RANDOM") 2>&1 | tail -1)"
  after="$(cpu_ticks "$pid")"
  [[ -n "$db" ]] && pg="$(pg_ticks "$db")"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  [[ -n "$db" ]] && drop_db "$db"
  rm -f "$work/$port.db"*
  turns="$(json_field "$out" turns)"
  echo "$(json_field "$out" turns_per_s) $(json_field "$out" p99_ms) $(json_field "$out" statuses)" \
    "$(((after - before) * 1000000 / ticks / turns)) $((pg * 1000000 / ticks / turns))"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-7s %-28s %12s %24s %7s %24s %s\n' shape binary "reference PG" "reel PG (p99)" ratio \
  "reel SQLite (p99)" "cpu/turn µs: reel+pg on PG, reel on SQLite; statuses"
for shape in ${SHAPES:-small claude}; do
  refs=()
  for _ in $(seq 1 "$runs"); do
    port=$((port + 1))
    rate="$(reference "$shape" "$port")"
    refs+=("$rate")
  done
  ref="$(printf '%s\n' "${refs[@]}" | median)"
  for bin in "$@"; do
    pg_rows=()
    lite_rows=()
    for _ in $(seq 1 "$runs"); do
      port=$((port + 1))
      pg_rows+=("$(reel "$bin" postgres "$shape" "$port")")
      port=$((port + 1))
      lite_rows+=("$(reel "$bin" sqlite "$shape" "$port")")
    done
    pick() { printf '%s\n' "$@" | sort -n -k1,1 | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }
    read -r pg_rate pg_p99 pg_status pg_reel pg_pg <<<"$(pick "${pg_rows[@]}")"
    read -r lite_rate lite_p99 lite_status lite_reel _ <<<"$(pick "${lite_rows[@]}")"
    ratio="$(awk -v a="$pg_rate" -v b="$ref" 'BEGIN {printf "%.2f×", a / b}')"
    printf '%-7s %-28s %12s %24s %7s %24s %s\n' "$shape" "$bin" "$ref turns/s" \
      "$pg_rate turns/s ($pg_p99 ms)" "$ratio" "$lite_rate turns/s ($lite_p99 ms)" \
      "$pg_reel+$pg_pg, $lite_reel; PG $pg_status SQLite $lite_status"
  done
done
