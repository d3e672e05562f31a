#!/usr/bin/env bash
# Scale test of the embedded store: a server holding N sessions (default 1,000,000).
#
# Fills an embedded store file with N realistic sessions (bench-fill, one transaction per
# batch), starts the release `sessiond serve` on it and reports: fill time, file size and bytes
# per session, startup time (until /readyz answers 200), the server's resident set (VmRSS) idle
# and after load, the most verifies per second wrk gets (POST /api/v1/sessions/authenticate with
# tokens of sessions spread over the whole store, round-robin), and p50/p99 latency at about half
# that rate. The same is measured first on a small store (the baseline, default 10,000
# sessions), in the same run, so the table shows what the size itself costs; the 10M line is a
# linear extrapolation from those two points, and says so. See bench/README.md.
#
# The server runs on CPU 0 and wrk on CPU 1 (taskset), as in run-http.sh.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run-scale.sh [--sessions 1000000] [--baseline-sessions 10000] [--duration 10s]
                          [--connections 32] [--warmup 2s] [--tokens 200000] [--dir DIR]
                          [--no-build]

  --sessions N           sessions in the measured store                               [1000000]
  --baseline-sessions N  sessions in the baseline store measured first (0: no baseline) [10000]
  --duration D           length of each measured wrk run (wrk notation: 10s, 1m)       [10s]
  --connections N        concurrent keep-alive connections                             [32]
  --warmup D             unmeasured wrk run before each measured one (0: none)         [2s]
  --tokens N             tokens the load uses, spread over the store, sent round-robin [200000]
  --dir DIR              where the store files go (a real disk, not tmpfs)  [TMPDIR or /tmp]
  --no-build             use the release binaries already built
EOF
}

sessions=1000000
baseline_sessions=10000
duration=10s
connections=32
warmup=2s
token_count=200000
dir=${TMPDIR:-/tmp}
build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sessions) sessions=${2:?--sessions needs a value}; shift 2 ;;
    --baseline-sessions) baseline_sessions=${2:?--baseline-sessions needs a value}; shift 2 ;;
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --tokens) token_count=${2:?--tokens needs a value}; shift 2 ;;
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-scale.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

script=run-scale.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_tools wrk curl python3
pin_cpus server wrk
build_release sessiond sessiond-bench
sessiond_bin=$(release_binary sessiond)
fill_bin=$(release_binary bench-fill)
make_workdir "$dir" scale
sessiond_pid=

# The sessions belong to these users, and the server ends sessions of users it does not know.
# The same users in both stores, so the users file weighs the same in both.
users=1000
"$fill_bin" users --out "$work/users.yml" --prefix user --users "$users" \
  --password "$(head -c 18 /dev/urandom | base64)"

# Every measured store appends one line to this file, tab-separated: sessions, fill seconds,
# file bytes, startup seconds, RSS idle, RSS after load, max req/s, its p50 and p99, the
# half-rate target, the achieved req/s, its p50 and p99, the load average after.
results="$work/results.tsv"
: >"$results"

# Runs wrk against sessiond with the tokens file, with `delay_ms` between each connection's
# requests (0: flat out); writes wrk's output to `out`. Refuses results with errors.
load() {
  local delay_ms=$1 out=$2 url=$3
  if [[ $warmup != 0 && $warmup != 0s ]]; then
    DELAY_MS=$delay_ms "${client_pin[@]}" wrk -t1 -c"$connections" -d"$warmup" \
      -s "$bench_dir/wrk/authenticate.lua" "$url" >/dev/null
  fi
  DELAY_MS=$delay_ms "${client_pin[@]}" wrk -t1 -c"$connections" -d"$duration" --latency \
    -s "$bench_dir/wrk/authenticate.lua" "$url" >"$out"
  if grep -q -E 'Non-2xx|Socket errors' "$out"; then
    echo "run-scale.sh: the load run had failed requests:" >&2
    cat "$out" >&2
    exit 1
  fi
}

# "req/s p50 p99" from a wrk output.
wrk_figures() {
  awk '/^Requests\/sec:/ { rps = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
       END { print rps, p50, p99 }' "$1"
}

# Fills a store with `count` sessions, serves it and measures it.
measure() {
  local count=$1 name=$2
  local db="$work/$name.redb" fill_out started ready port url i status token
  echo "filling $count sessions into $db..." >&2
  local fill_started fill_ended
  fill_started=$(now_s)
  fill_out=$("$fill_bin" sessions --db "$db" --sessions "$count" --users "$users" --now "$(date +%s)" \
    --tokens "$work/$name.tokens" --token-count "$token_count")
  fill_ended=$(now_s)
  echo "  $fill_out" >&2
  # The page cache holds what the fill wrote; drop nothing, but say it: a server restarted on a
  # cold cache reads the file from disk first.
  port=$(free_port)
  url="http://127.0.0.1:$port"
  cat >"$work/$name.yml" <<EOF
data_dir: $work/data-$name
server:
  listen: 127.0.0.1:$port
storage:
  kind: embedded
  path: $db
users:
  file: $work/users.yml
realms:
  main:
    inactivity: 1h
    expiration: 12h
access_control:
  default_policy: one_factor
log:
  level: warn
EOF
  started=$(now_s)
  "${server_pin[@]}" "$sessiond_bin" serve --config "$work/$name.yml" \
    >"$work/$name.out" 2>"$work/$name.err" &
  sessiond_pid=$!
  tracked+=("$sessiond_pid")
  wait_http "$url/readyz" 200 "$sessiond_pid" 120 "$work/$name.out" "$work/$name.err"
  ready=$(now_s)
  sleep 2
  local rss_idle
  rss_idle=$(rss_bytes "$sessiond_pid")
  token=$(head -n 1 "$work/$name.tokens")
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data '{}' \
    -H "Authorization: Bearer $token" "$url/api/v1/sessions/authenticate")
  if [[ $status != 200 ]]; then
    echo "run-scale.sh: a filled session's token answered $status, not 200" >&2
    cat "$work/$name.err" >&2 || true
    exit 1
  fi

  export TOKENS_FILE="$work/$name.tokens"
  echo "  flat out..." >&2
  load 0 "$work/$name.max.txt" "$url"
  local max max_p50 max_p99
  read -r max max_p50 max_p99 < <(wrk_figures "$work/$name.max.txt")
  # Half the rate: each connection pauses connections * 1000 / (max / 2) ms between requests.
  # A request's own time adds to the pause, so a first unmeasured run finds how much, and the
  # pause is shortened by that much; the rate reached is still reported as measured.
  local target delay got
  target=$(python3 -c "print(round(float('$max') / 2))")
  delay=$(python3 -c "print(f'{$connections * 1000 / max(1, $target):.3f}')")
  local calibrate=$warmup
  if [[ $calibrate == 0 || $calibrate == 0s ]]; then
    calibrate=2s
  fi
  DELAY_MS=$delay "${client_pin[@]}" wrk -t1 -c"$connections" -d"$calibrate" \
    -s "$bench_dir/wrk/authenticate.lua" "$url" >"$work/$name.calibrate.txt"
  got=$(awk '/^Requests\/sec:/ { print $2 }' "$work/$name.calibrate.txt")
  delay=$(python3 -c "
c, target, got, delay = $connections, $target, float('${got:-0}') or $target, $delay
print(f'{max(0.0, delay - (c * 1000 / got - c * 1000 / target)):.3f}')")
  echo "  at half rate ($target req/s, $delay ms between a connection's requests)..." >&2
  load "$delay" "$work/$name.half.txt" "$url"
  local half half_p50 half_p99
  read -r half half_p50 half_p99 < <(wrk_figures "$work/$name.half.txt")
  local rss_load size
  rss_load=$(rss_bytes "$sessiond_pid")
  size=$(stat -c %s "$db")
  stop_process "$sessiond_pid"
  sessiond_pid=
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$count" \
    "$(python3 -c "print(f'{$fill_ended - $fill_started:.2f}')")" "$size" \
    "$(python3 -c "print(f'{$ready - $started:.3f}')")" "$rss_idle" "$rss_load" \
    "$max" "$max_p50" "$max_p99" "$target" "$half" "$half_p50" "$half_p99" "$(load_average)" >>"$results"
  rm -f "$db"
}

if [[ $baseline_sessions -gt 0 ]]; then
  measure "$baseline_sessions" baseline
fi
measure "$sessions" scale

echo
echo "sessiond $("$sessiond_bin" --version 2>/dev/null | awk '{ print $2 }'), embedded store on $(df -T "$dir" | awk 'NR == 2 { print $2 }') under $dir"
echo "sessions: realistic records of $users users (bench-fill); verify = POST /api/v1/sessions/authenticate"
echo "with the tokens of $token_count of them spread over the store, round-robin;"
echo "wrk: 1 thread, $connections connections, $duration per run after a $warmup warm-up"
echo "placement: $placement"
python3 - "$results" <<'PY'
import sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]

def mib(b):
    return f"{float(b) / 2**20:.0f} MiB"

print()
print(f"  {'sessions':>10} {'fill':>8} {'file':>9} {'B/sess':>6} {'startup':>8} {'RSS idle':>9} {'RSS load':>9}"
      f" {'max req/s':>9} {'ratio':>5}   {'half: target':>12} {'got':>7}  {'p50 / p99':<19} load average after")
base = rows[0] if len(rows) > 1 else None
for (count, fill, size, startup, rss_idle, rss_load, rps, p50, p99, target, half, hp50, hp99, load) in rows:
    n = int(count)
    ratio = f"{float(rps) / float(base[6]):.2f}" if base else "-"
    print(f"  {n:>10,} {float(fill):>7.1f}s {mib(size):>9} {int(size) / n:>6.0f} {float(startup):>7.3f}s"
          f" {mib(rss_idle):>9} {mib(rss_load):>9} {float(rps):>9.0f} {ratio:>5}   {int(target):>12}"
          f" {float(half):>7.0f}  {hp50 + ' / ' + hp99:<19} {load}")
    print(f"  {'':>10} fill rate {n / float(fill):,.0f} sessions/s; flat out p50 / p99 {p50} / {p99}")
if base:
    big = rows[-1]
    n0, n1 = int(base[0]), int(big[0])
    target = 10_000_000
    def line(i):
        a, b = float(base[i]), float(big[i])
        slope = (b - a) / (n1 - n0)
        # A figure that did not grow between the two stores is not extrapolated downwards.
        return b + max(0.0, slope) * (target - n1)
    print()
    print(f"{target:,} sessions: EXTRAPOLATED, not measured. Each figure follows the straight line")
    print(f"through the two stores above ({n0:,} and {n1:,} sessions; a figure that did not grow stays")
    print("as measured). redb's B-trees grow in steps, so treat these as estimates:")
    print(f"  file {line(2) / 2**30:.1f} GiB ({line(2) / target:.0f} B per session), fill {line(1):.0f} s,"
          f" startup {line(3):.3f} s, RSS idle {line(4) / 2**20:.0f} MiB")
    print("  RSS after load is not extrapolated: it follows the sessions the load touched (the session")
    print("  cache keeps at most 100,000, redb's page cache at most 1 GiB), not the size of the store.")
PY
echo
echo "ratio     = max req/s of this store divided by that of the baseline store, same run."
echo "half      = wrk with a pause between each connection's requests, aiming at half the max; 'got' is"
echo "            the rate reached (wrk has no exact rate limit) and p50 / p99 are its latencies."
echo "startup   = from starting sessiond until /readyz answers 200 (polled every 20 ms)."
echo "RSS       = VmRSS of sessiond 2 s after it was ready, and after both load runs."
if [[ -s $work/scale.err ]]; then
  echo
  echo "sessiond logged (level warn):"
  cat "$work/scale.err"
fi
