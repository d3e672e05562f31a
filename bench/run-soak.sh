#!/usr/bin/env bash
# Soak test: sessiond under a steady mix of logins, verifies, logouts and expiries for a long
# time (default 30 minutes), watching that nothing grows and nothing fails.
#
# Starts the release `sessiond serve` on a throwaway config (the embedded store, or a private
# redis-server on a free port), with a users file of a few users whose password is hashed with a
# cheap argon2 cost and a realm whose sessions expire after a short `inactivity`. wrk, with
# wrk/soak.lua, holds a steady request rate: mostly verifies, plus logins, logouts and checks
# that abandoned sessions have expired; every answer is checked against what it should be.
# Every 30 s the script samples the server's resident set (VmRSS, and how much of it is in
# transparent huge pages), its open file descriptors (/proc/PID/fd), the store's size (file
# size, or Redis used_memory and DBSIZE) and the cumulative counts of requests and errors. At the end it prints first/last/max of each, the
# requests by kind, the errors, and a verdict. See bench/README.md.
#
# The server (and Redis) run on CPU 0 and wrk on CPU 1 (taskset), as in run-redis.sh.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run-soak.sh [--duration 30m] [--storage embedded|redis] [--rate 2000]
                         [--connections 4] [--inactivity 60] [--interval 30] [--no-build]

  --duration D      how long the load runs (wrk notation: 30m, 1h, 90s)           [30m]
  --storage KIND    embedded (a file in the temporary directory) or redis (a
                    private redis-server on a free port)                          [embedded]
  --rate N          requests per second aimed at (each connection pauses between
                    requests; the rate reached is reported)                       [2000]
  --connections N   connections, one per wrk thread                               [4]
  --inactivity S    the realm's idle limit in seconds: abandoned sessions expire
                    after it and the background sweep removes them                [60]
  --interval S      seconds between samples                                       [30]
  --no-build        use the release binaries already built
EOF
}

duration=30m
storage=embedded
rate=2000
connections=4
inactivity=60
interval=30
build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --storage) storage=${2:?--storage needs a value}; shift 2 ;;
    --rate) rate=${2:?--rate needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --inactivity) inactivity=${2:?--inactivity needs a value}; shift 2 ;;
    --interval) interval=${2:?--interval needs a value}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-soak.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$storage" in
  embedded|redis) ;;
  *) echo "run-soak.sh: --storage must be embedded or redis, not $storage" >&2; exit 2 ;;
esac

script=run-soak.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
tools=(wrk curl python3)
if [[ $storage == redis ]]; then
  tools+=(redis-server redis-cli)
fi
require_tools "${tools[@]}"
pin_cpus "server (and Redis)" wrk
build_release sessiond sessiond-bench
sessiond_bin=$(release_binary sessiond)
fill_bin=$(release_binary bench-fill)
make_workdir "${TMPDIR:-/tmp}" soak
sessiond_pid=
wrk_pid=

# --- Redis (only with --storage redis) ---------------------------------------------------
redis_port=
if [[ $storage == redis ]]; then
  start_redis
fi

# --- sessiond ----------------------------------------------------------------------------
umask 077
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
users=$(python3 -c 'print(",".join(f"load{i:07}" for i in range(16)))')
"$fill_bin" users --out "$work/users.yml" --users 16 --password "$password"
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
sessiond_port=$(free_port)
sessiond_url="http://127.0.0.1:$sessiond_port"
{
  echo "data_dir: $work/data"
  echo "secret_file: $work/secret"
  echo "server:"
  echo "  listen: 127.0.0.1:$sessiond_port"
  echo "storage:"
  echo "  kind: $storage"
  if [[ $storage == redis ]]; then
    echo "  redis:"
    echo "    url: $redis_url"
  fi
  echo "users:"
  echo "  file: $work/users.yml"
  echo "realms:"
  echo "  main:"
  echo "    inactivity: ${inactivity}s"
  echo "    expiration: 10m"
  echo "regulation:"
  echo "  max_retries: 0"
  echo "access_control:"
  echo "  default_policy: one_factor"
  echo "log:"
  echo "  level: warn"
} >"$work/sessiond.yml"
"${server_pin[@]}" "$sessiond_bin" serve --config "$work/sessiond.yml" \
  >"$work/sessiond.out" 2>"$work/sessiond.err" &
sessiond_pid=$!
tracked+=("$sessiond_pid")
wait_http "$sessiond_url/readyz" 200 "$sessiond_pid" 20 "$work/sessiond.out" "$work/sessiond.err"
# One login by hand: the load must not start on a server that refuses it.
status=$(curl -s -o "$work/login.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data "{\"callbacks\":[{\"type\":\"username\",\"value\":\"load0000000\"},{\"type\":\"password\",\"value\":\"$password\"}]}" \
  "$sessiond_url/api/v1/authenticate")
if [[ $status != 200 ]] || ! grep -q session_token "$work/login.json"; then
  echo "run-soak.sh: a login answered $status before the load:" >&2
  cat "$work/login.json" "$work/sessiond.err" >&2 || true
  exit 1
fi

# --- Sampling ----------------------------------------------------------------------------
# One line per sample, tab-separated: seconds since the start, RSS bytes, open fds, store bytes
# (file size, or Redis used_memory), Redis keys (or -), then the counters summed over wrk's
# threads: login verify logout expiry expired_on_verify errors, then lines sessiond logged, then
# the bytes of RSS in transparent huge pages (AnonHugePages; a jump in RSS with a jump here is
# the kernel collapsing pages, not the server growing).
samples="$work/samples.tsv"
: >"$samples"
mkdir "$work/counts"
store_size() {
  if [[ $storage == redis ]]; then
    printf '%s\t%s' "$(redis-cli -p "$redis_port" info memory | tr -d '\r' | sed -n 's/^used_memory://p')" \
      "$(redis-cli -p "$redis_port" dbsize | tr -d '\r')"
  else
    printf '%s\t-' "$(stat -c %s "$work/data/sessiond.redb")"
  fi
}
huge_page_bytes() {
  awk '$1 == "AnonHugePages:" { print $2 * 1024; found = 1 } END { if (!found) print 0 }' \
    "/proc/$sessiond_pid/smaps_rollup" 2>/dev/null || echo 0
}
sample() {
  local elapsed=$1
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$elapsed" \
    "$(awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/$sessiond_pid/status")" \
    "$(find "/proc/$sessiond_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" \
    "$(store_size)" \
    "$(cat "$work/counts"/thread-* 2>/dev/null | python3 -c '
import sys
keys = ["login", "verify", "logout", "expiry", "expired_on_verify", "errors"]
total = dict.fromkeys(keys, 0)
for line in sys.stdin:
    if line.startswith("error "):
        continue
    for word in line.split():
        key, _, value = word.partition("=")
        if key in total:
            total[key] += int(value)
print("\t".join(str(total[k]) for k in keys))')	$(wc -l <"$work/sessiond.err")	$(huge_page_bytes)" >>"$samples"
}

delay=$(python3 -c "print(f'{$connections * 1000 / max(1, $rate):.3f}')")
echo "soak: $duration at about $rate req/s ($connections connections, $delay ms between each one's requests), storage $storage; sampling every ${interval}s" >&2
start=$(date +%s)
sample 0
USERS=$users PASSWORD=$password INACTIVITY_S=$inactivity DELAY_MS=$delay COUNTS_DIR="$work/counts" \
  "${client_pin[@]}" wrk -t"$connections" -c"$connections" -d"$duration" --timeout 5s --latency \
  -s "$bench_dir/wrk/soak.lua" "$sessiond_url" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
tracked+=("$wrk_pid")
next=$((start + interval))
while kill -0 "$wrk_pid" 2>/dev/null; do
  if [[ $(date +%s) -ge $next ]]; then
    sample $((next - start))
    tail -n 1 "$samples" | awk -F '\t' '{ printf "  %5ss  RSS %6.1f MiB  fds %3s  store %s  keys %s  requests %s  errors %s\n",
      $1, $2 / 1048576, $3, $4, $5, $6 + $7 + $8 + $9, $11 }' >&2
    next=$((next + interval))
  fi
  sleep 1
done
wait "$wrk_pid" || {
  echo "run-soak.sh: wrk failed:" >&2
  cat "$work/wrk.txt" >&2
  exit 1
}
wrk_pid=
sleep 2
sample $(($(date +%s) - start))
if ! kill -0 "$sessiond_pid" 2>/dev/null; then
  echo "run-soak.sh: sessiond died during the soak; its output:" >&2
  cat "$work/sessiond.err" >&2 || true
  exit 1
fi

echo
echo "sessiond $("$sessiond_bin" --version 2>/dev/null | awk '{ print $2 }') soak on the $storage store$(
  [[ $storage == redis ]] && echo " (Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'))")"
echo "duration $duration (sampled every ${interval}s), aimed at $rate req/s over $connections connections; inactivity ${inactivity}s"
echo "placement: $placement"
python3 - "$samples" "$work/wrk.txt" "$storage" <<'PY'
import re, sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
wrk = open(sys.argv[2]).read()
storage = sys.argv[3]
t = [int(r[0]) for r in rows]
rss = [int(r[1]) for r in rows]
fds = [int(r[2]) for r in rows]
store = [int(r[3]) for r in rows]
keys = [r[4] for r in rows]
kinds = ["login", "verify", "logout", "expiry", "expired_on_verify", "errors"]
last = dict(zip(kinds, (int(x) for x in rows[-1][5:11])))
logged = int(rows[-1][11])
huge = [int(r[12]) for r in rows]

m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wrk)
socket_errors = sum(int(x) for x in m.groups()) if m else 0
rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
lat = {p: re.search(rf"^\s+{p}%\s+(\S+)", wrk, re.M) for p in ("50", "99")}
totals = re.search(r"soak totals: (.*)", wrk)
if totals:
    last.update({k: int(v) for k, v in (w.split("=") for w in totals.group(1).split())})

def mib(b):
    return f"{b / 2**20:.1f} MiB"

print()
print(f"  {'':<16} {'first':>12} {'last':>12} {'max':>12}")
print(f"  {'RSS':<16} {mib(rss[0]):>12} {mib(rss[-1]):>12} {mib(max(rss)):>12}")
print(f"  {'in huge pages':<16} {mib(huge[0]):>12} {mib(huge[-1]):>12} {mib(max(huge)):>12}")
print(f"  {'open fds':<16} {fds[0]:>12} {fds[-1]:>12} {max(fds):>12}")
label = "Redis used_memory" if storage == "redis" else "store file"
print(f"  {label:<16} {mib(store[0]):>12} {mib(store[-1]):>12} {mib(max(store)):>12}")
if storage == "redis":
    k = [int(x) for x in keys]
    print(f"  {'Redis keys':<16} {k[0]:>12} {k[-1]:>12} {max(k):>12}")
print()
print("  requests: " + ", ".join(f"{k} {last[k]:,}" for k in ("login", "verify", "logout", "expiry")),
      f"(total {sum(last[k] for k in ('login', 'verify', 'logout', 'expiry')):,}, {float(rps.group(1)) if rps else 0:,.0f} req/s;",
      f"p50 {lat['50'].group(1) if lat['50'] else '-'}, p99 {lat['99'].group(1) if lat['99'] else '-'})")
print(f"  expected 401s: {last['expiry']:,} expiry checks (sessions idle past inactivity, all must be 401),"
      f" {last['expired_on_verify']:,} verifies/logouts of sessions idle past inactivity minus the touch throttle")
print(f"  errors: {last['errors']} wrong answers, {socket_errors} socket errors, {logged} lines logged by sessiond (warn or worse)")

# Verdict: the second quarter (warmed up) against the last quarter.
n = len(rows)
q2 = rows[n // 4 : n // 2] or rows
q4 = rows[3 * n // 4 :] or rows
avg = lambda rs, i: sum(int(r[i]) for r in rs) / len(rs)
rss_change = avg(q4, 1) / avg(q2, 1) - 1
fd_growth = max(int(r[2]) for r in q4) - max(int(r[2]) for r in q2)
store_change = avg(q4, 3) / max(1, avg(q2, 3)) - 1
flat = abs(rss_change) <= 0.10
fds_ok = fd_growth <= 2
clean = last["errors"] == 0 and socket_errors == 0 and logged == 0
print()
print(f"  RSS, last quarter vs second quarter (averages): {rss_change:+.1%}  -> {'flat' if flat else 'NOT FLAT'} (within 10%)")
print(f"  open fds, max of last quarter vs second quarter: {fd_growth:+d}  -> {'not growing' if fds_ok else 'GROWING'}")
print(f"  store size, last quarter vs second quarter: {store_change:+.1%}")
print(f"  verdict: {'PASS' if flat and fds_ok and clean else 'FAIL'}")
print()
print("  samples (s, RSS MiB, of which in huge pages, fds, store MiB, keys, errors):")
for r in rows:
    print(f"    {int(r[0]):>6} {int(r[1]) / 2**20:>8.1f} {int(r[12]) / 2**20:>8.1f} {r[2]:>4} {int(r[3]) / 2**20:>8.1f} {r[4]:>7} {r[10]:>4}")
PY
echo
echo "errors   = answers other than expected: a login without 200 and a token, a verify not 200 (unless"
echo "           the session was idle past inactivity minus the touch throttle), a logout not 204, an"
echo "           expiry check not 401; plus wrk's socket errors and timeouts (5 s), and anything sessiond"
echo "           logged at warn or above."
for file in "$work"/counts/thread-*; do
  if grep -q '^error ' "$file" 2>/dev/null; then
    echo "first errors seen by $(basename "$file"):"
    grep '^error ' "$file" | head -n 5
  fi
done
if [[ -s $work/sessiond.err ]]; then
  echo
  echo "sessiond logged (level warn), first lines:"
  head -n 20 "$work/sessiond.err"
fi
