#!/usr/bin/env bash
# HTTP load test of sessiond on the Redis store, against redis-benchmark on the same Redis.
#
# Starts a private redis-server (no persistence) on a free loopback port and sessiond (release)
# on it, logs in as the bootstrap administrator, then runs wrk against
# POST /api/v1/sessions/authenticate and GET /api/authz/auth-request (the same bench/wrk scripts
# as run-http.sh), with `redis-benchmark -t get -P 1` against the same Redis just before and
# just after. It does so with sessiond's local session cache on (the default) and then off
# (`storage.redis.cache_ttl: 0`, when this sessiond has that setting), restarting sessiond on
# the same Redis and keeping the same session. Prints requests per second, the ratio of
# sessiond to redis-benchmark, and how busy each core and process was. See bench/README.md.
#
# Placement: the serving side (redis-server and sessiond) on CPU 0, the load generator (wrk or
# redis-benchmark) on CPU 1. Both comparisons then give one core to everything that answers a
# request: sessiond with the Redis it asks, or Redis alone.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run-redis.sh [--duration 10s] [--connections 32] [--requests 1000000]
                          [--warmup 2s] [--no-build]

  --duration D      length of each measured wrk run (wrk notation: 10s, 1m)         [10s]
  --connections N   concurrent connections, for wrk and redis-benchmark alike      [32]
  --requests N      GETs in each measured redis-benchmark run                       [1000000]
  --warmup D        unmeasured wrk run before each measured one (0: none); redis-benchmark
                    gets an unmeasured run of a tenth of --requests                  [2s]
  --no-build        use the release binary already built
EOF
}

duration=10s
connections=32
requests=1000000
warmup=2s
build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --requests) requests=${2:?--requests needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-redis.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

script=run-redis.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_tools wrk curl python3 redis-server redis-cli redis-benchmark

# --- CPU placement -----------------------------------------------------------------------
# Redis and sessiond share CPU 0 on purpose. With the cache on, most verifies never reach
# Redis and sessiond has the core nearly to itself; with it off, every verify is a Redis round
# trip and its cost on the Redis side is paid on the same core. redis-benchmark then measures
# Redis alone on that core. Either way the serving side has one core and the client the other,
# so the ratio is sessiond's throughput per core relative to Redis's.
pin_cpus "redis-server and sessiond" "wrk and redis-benchmark"
build_release sessiond
sessiond_bin=$(release_binary sessiond)
make_workdir "${TMPDIR:-/tmp}" redis
sessiond_pid=

# CPU time so far, in clock ticks: busy and total of CPU 0 and CPU 1 (/proc/stat), then the
# user+system time of sessiond and of redis-server (/proc/PID/stat, all threads):
# "busy0 total0 busy1 total1 sessiond redis".
cpu_times() {
  local pid ticks
  ticks=$(awk '$1 == "cpu0" || $1 == "cpu1" { total = 0; for (i = 2; i <= NF; i++) total += $i;
                printf "%d %d ", total - $5 - $6, total }' /proc/stat)
  for pid in "$sessiond_pid" "$redis_pid"; do
    # The command name, in parentheses, comes before the numbers; fields 14 and 15 after it.
    ticks+=" $(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')"
  done
  echo "$ticks"
}

# Shares of CPU 0's time between two cpu_times readings: CPU 0 busy, CPU 1 busy, sessiond,
# redis-server. "0.990 0.770 0.950 0.020".
cpu_busy() {
  python3 -c '
import sys
a = [int(x or 0) for x in sys.argv[1].split()]
b = [int(x or 0) for x in sys.argv[2].split()]
share = lambda i, t: (b[i] - a[i]) / max(1, b[t] - a[t])
print(f"{share(0, 1):.3f} {share(2, 3):.3f} {share(4, 1):.3f} {share(5, 1):.3f}")' "$1" "$2"
}

# --- Redis -------------------------------------------------------------------------------
start_redis

# --- sessiond ----------------------------------------------------------------------------
sessiond_port=$(free_port)
sessiond_url="http://127.0.0.1:$sessiond_port"
umask 077
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"

# Writes sessiond's configuration to `file`: the Redis above, with `cache_ttl` (empty: the
# default) for the local session cache.
write_config() {
  local cache_ttl=$1 file=$2
  {
    echo "data_dir: $work/data"
    echo "secret_file: $work/secret"
    echo "server:"
    echo "  listen: 127.0.0.1:$sessiond_port"
    echo "storage:"
    echo "  kind: redis"
    echo "  redis:"
    echo "    url: $redis_url"
    if [[ -n $cache_ttl ]]; then
      echo "    cache_ttl: $cache_ttl"
    fi
    echo "access_control:"
    echo "  default_policy: one_factor"
    echo "log:"
    echo "  level: warn"
  } >"$file"
}

# Starts sessiond with `cache_ttl` (empty: the default) and waits until it answers.
start_sessiond() {
  write_config "$1" "$work/sessiond.yml"
  "${server_pin[@]}" "$sessiond_bin" serve --config "$work/sessiond.yml" \
    >"$work/sessiond.out" 2>>"$work/sessiond.err" &
  sessiond_pid=$!
  tracked+=("$sessiond_pid")
  wait_http "$sessiond_url/readyz" 200 "$sessiond_pid" 20 "$work/sessiond.out" "$work/sessiond.err"
}

# Stops sessiond, to start it again with other settings.
stop_sessiond() {
  stop_process "$sessiond_pid"
  sessiond_pid=
}

# Both endpoints must accept the token, or we would time 401s or 503s.
check_endpoints() {
  local check status
  for check in "-X POST --data {} -H Content-Type:application/json $sessiond_url/api/v1/sessions/authenticate" \
               "-H Cookie:$COOKIE_NAME=$token -H X-Forwarded-Proto:http -H X-Forwarded-Host:127.0.0.1 -H X-Forwarded-URI:/app $sessiond_url/api/authz/auth-request"; do
    # shellcheck disable=SC2086 # the words of $check are curl arguments
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" $check)
    if [[ $status != 200 ]]; then
      echo "run-redis.sh: $check answered $status before the load test" >&2
      cat "$work/sessiond.err" >&2 || true
      exit 1
    fi
  done
}

start_sessiond ""
# The first start creates the users file and prints the administrator's password once.
admin_login "$sessiond_url" "$work/sessiond.out"
check_endpoints

# --- Load --------------------------------------------------------------------------------
# Every measured run appends one line to this file, tab-separated:
# section, client, requests/s, CPU 0 busy, CPU 1 busy, p50, p99, load average, sessiond's and
# redis-server's share of CPU 0.
results="$work/results.tsv"
: >"$results"

# Runs wrk with the script `lua` against sessiond and records it under `name`. Refuses results with
# errors.
load() {
  local section=$1 lua=$2 name=$3
  local out="$work/wrk.txt" before busy
  if [[ $warmup != 0 && $warmup != 0s ]]; then
    "${client_pin[@]}" wrk -t1 -c"$connections" -d"$warmup" -s "$lua" "$sessiond_url" >/dev/null
  fi
  before=$(cpu_times)
  "${client_pin[@]}" wrk -t1 -c"$connections" -d"$duration" --latency -s "$lua" "$sessiond_url" >"$out"
  busy=$(cpu_busy "$before" "$(cpu_times)")
  if grep -q -E 'Non-2xx|Socket errors' "$out"; then
    echo "run-redis.sh: $name had failed requests:" >&2
    cat "$out" >&2
    exit 1
  fi
  awk -v section="$section" -v name="$name" -v busy="$busy" -v load="$(load_average)" '
    /^Requests\/sec:/ { rps = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
    END { split(busy, b, " ");
          printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", section, name, rps, b[1], b[2], p50, p99, load, b[3], b[4] }
  ' "$out" >>"$results"
}

# Runs redis-benchmark GET on the same Redis, one request per round trip as sessiond sends
# them, and records it under `name`.
redis_get() {
  local section=$1 name=$2
  local out="$work/redis-benchmark.txt" before busy
  "${client_pin[@]}" redis-benchmark -p "$redis_port" -t get -n $((requests / 10)) -c "$connections" -P 1 -q \
    >/dev/null 2>&1
  before=$(cpu_times)
  # -q prints progress lines ending in \r before the result; keep the result line.
  "${client_pin[@]}" redis-benchmark -p "$redis_port" -t get -n "$requests" -c "$connections" -P 1 -q 2>&1 |
    tr '\r' '\n' | grep -E '^GET: [0-9.]+ requests per second' | tail -n 1 >"$out" || true
  busy=$(cpu_busy "$before" "$(cpu_times)")
  if [[ ! -s $out ]]; then
    echo "run-redis.sh: redis-benchmark printed no result" >&2
    exit 1
  fi
  # "GET: 104712.05 requests per second, p50=0.159 msec"
  awk -v section="$section" -v name="$name" -v busy="$busy" -v load="$(load_average)" '{
    p50 = "-"; if (match($0, /p50=[0-9.]+/)) { p50 = substr($0, RSTART + 4, RLENGTH - 4) "ms" }
    split(busy, b, " ");
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", section, name, $2, b[1], b[2], p50, "-", load, b[3], b[4]
  }' "$out" >>"$results"
}

# Whether this sessiond accepts `storage.redis.cache_ttl`, the switch for the local cache.
cache_switch=0
write_config 0 "$work/probe.yml"
if "$sessiond_bin" config check --config "$work/probe.yml" >/dev/null 2>&1; then
  cache_switch=1
fi

for cache in on off; do
  if [[ $cache == on ]]; then
    section="local cache on (the default)"
  else
    if [[ $cache_switch -eq 0 ]]; then
      printf '%s\n' "local cache off: not measured, this sessiond has no storage.redis.cache_ttl to turn it off" >>"$results"
      break
    fi
    section="local cache off (storage.redis.cache_ttl: 0): every verify reads Redis"
    stop_sessiond
    start_sessiond 0
    COOKIE_NAME=$(banner_cookie_name "$work/sessiond.out")
    check_endpoints
  fi
  # redis-benchmark before and after sessiond's runs: the ratio uses their mean, and the two
  # show how much the machine drifted meanwhile.
  redis_get "$section" "redis-benchmark -t get -P 1 (before)"
  load "$section" "$bench_dir/wrk/authenticate.lua" "POST /api/v1/sessions/authenticate"
  load "$section" "$bench_dir/wrk/authz.lua" "GET /api/authz/auth-request"
  redis_get "$section" "redis-benchmark -t get -P 1 (after)"
done

echo
echo "sessiond $("$sessiond_bin" --version 2>/dev/null | awk '{ print $2 }') on Redis" \
  "$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') vs redis-benchmark on the same Redis"
echo "wrk: 1 thread, $connections connections, $duration per run after a $warmup warm-up;" \
  "redis-benchmark: $connections clients, $requests GETs, no pipelining (-P 1)"
echo "placement: $placement"
python3 - "$results" <<'PY'
import sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
print()
print(f"  {'client':<38} {'req/s':>8} {'ratio':>6} {'CPU0':>5} {'CPU1':>5} {'sd':>4} {'redis':>5}"
      f" {'req/s/CPU0':>10} {'per CPU0':>8}   {'p50 / p99':<19} load average after")
sections = []
for row in rows:
    if len(row) == 1:
        sections.append((row[0], []))
    elif not sections or sections[-1][0] != row[0]:
        sections.append((row[0], [row]))
    else:
        sections[-1][1].append(row)
for title, runs in sections:
    print(title)
    base = [r for r in runs if r[1].startswith("redis-benchmark")]
    # The denominators: the mean of the redis-benchmark runs around sessiond's, as measured and
    # per busy share of CPU 0.
    mean = sum(float(r[2]) for r in base) / max(1, len(base))
    mean_core = sum(float(r[2]) / max(float(r[3]), 1e-9) for r in base) / max(1, len(base))
    for _, name, rps, cpu0, cpu1, p50, p99, load, sd, redis in runs:
        rps, cpu0, cpu1, sd, redis = float(rps), float(cpu0), float(cpu1), float(sd), float(redis)
        per_core = rps / max(cpu0, 1e-9)
        ours = not name.startswith("redis-benchmark")
        ratio = f"{rps / mean:.3f}" if ours else ""
        ratio_core = f"{per_core / mean_core:.3f}" if ours else ""
        print(f"  {name:<38} {rps:>8.0f} {ratio:>6} {cpu0:>5.0%} {cpu1:>5.0%} {sd:>4.0%} {redis:>5.0%}"
              f" {per_core:>10.0f} {ratio_core:>8}   {p50 + ' / ' + p99:<19} {load}")
PY
echo
echo "ratio    = sessiond requests/s divided by the mean of the two redis-benchmark runs around it (same"
echo "           run, same Redis, CPU 0 serving, CPU 1 the client)."
echo "CPU0/CPU1 = share of each core busy during the run, all processes counted. CPU 0 below ~95% with"
echo "           CPU 1 full means the client set the pace: that figure is a floor for the server."
echo "sd/redis = the share of CPU 0 that sessiond and redis-server used during the run."
echo "per CPU0 = the same ratio with each figure divided by CPU 0's busy share first (req/s/CPU0), an"
echo "           estimate of requests per fully used serving core when a client could not saturate it."
if [[ -s $work/sessiond.err ]]; then
  echo
  echo "sessiond logged (level warn):"
  cat "$work/sessiond.err"
fi
