#!/usr/bin/env bash
# HTTP load test: sessiond against a bare hyper server (bench-hello) on the same core.
#
# Builds both in release, starts sessiond on a free loopback port with a throwaway config and
# data directory, logs in as the bootstrap administrator, then runs wrk against two endpoints
# (POST /api/v1/sessions/authenticate and GET /api/v1/sessions/current, each with
# `Authorization: Bearer <token>`, and GET /api/authz/auth-request with the session cookie and
# X-Forwarded-* headers as nginx sends them) and sends the very same requests to bench-hello.
# Prints the requests per second of both, their ratio, and the p99 latency ratio. See
# bench/README.md for how to read it.
#
# The server runs on CPU 0 and wrk on CPU 1 (taskset), so they never compete for a core.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run-http.sh [--duration 10s] [--connections 32] [--threads 1]
                         [--storage embedded|memory] [--warmup 2s] [--no-build]

  --duration D      length of each measured wrk run (wrk notation: 10s, 1m)      [10s]
  --connections N   concurrent keep-alive connections                            [32]
  --threads N       wrk threads (all pinned to the client core)                  [1]
  --storage KIND    sessiond's store: embedded (the default deployment) or memory [embedded]
  --warmup D        unmeasured wrk run before each measured one (0: none)        [2s]
  --no-build        use the release binaries already built
EOF
}

duration=10s
connections=32
threads=1
storage=embedded
warmup=2s
build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --connections) connections=${2:?--connections needs a value}; shift 2 ;;
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --storage) storage=${2:?--storage needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-http.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$storage" in
  embedded|memory) ;;
  *) echo "run-http.sh: --storage must be embedded or memory, not $storage" >&2; exit 2 ;;
esac

script=run-http.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_tools wrk curl python3
pin_cpus server wrk
build_release sessiond sessiond-bench
sessiond_bin=$(release_binary sessiond)
hello_bin=$(release_binary bench-hello)
make_workdir "${TMPDIR:-/tmp}" http

# --- sessiond ----------------------------------------------------------------------------
sessiond_port=$(free_port)
cat >"$work/sessiond.yml" <<EOF
data_dir: $work/data
server:
  listen: 127.0.0.1:$sessiond_port
storage:
  kind: $storage
access_control:
  default_policy: one_factor
log:
  level: warn
EOF
"${server_pin[@]}" "$sessiond_bin" serve --config "$work/sessiond.yml" \
  >"$work/sessiond.out" 2>"$work/sessiond.err" &
tracked+=($!)
sessiond_url="http://127.0.0.1:$sessiond_port"
wait_http "$sessiond_url/healthz" 200 "${tracked[-1]}" 20 "$work/sessiond.out" "$work/sessiond.err"

# The first start creates the users file and prints the administrator's password once.
admin_login "$sessiond_url" "$work/sessiond.out"

# Both endpoints must accept the token before timing them, or we would time 401s.
for check in "-X POST --data {} -H Content-Type:application/json $sessiond_url/api/v1/sessions/authenticate" \
             "$sessiond_url/api/v1/sessions/current" \
             "-H Cookie:$COOKIE_NAME=$token -H X-Forwarded-Proto:http -H X-Forwarded-Host:127.0.0.1 -H X-Forwarded-URI:/app $sessiond_url/api/authz/auth-request"; do
  # shellcheck disable=SC2086 # the words of $check are curl arguments
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" $check)
  if [[ $status != 200 ]]; then
    echo "run-http.sh: $check answered $status before the load test" >&2
    exit 1
  fi
done

# --- bench-hello -------------------------------------------------------------------------
hello_port=$(free_port)
"${server_pin[@]}" "$hello_bin" "127.0.0.1:$hello_port" >"$work/hello.out" 2>"$work/hello.err" &
tracked+=($!)
hello_url="http://127.0.0.1:$hello_port"
wait_http "$hello_url/" any "${tracked[-1]}" 20 "$work/hello.out" "$work/hello.err"

# --- Load --------------------------------------------------------------------------------
# Runs wrk with the script `lua` against `url`; prints requests/s. Refuses results with errors.
load() {
  local lua=$1 url=$2 label=$3
  local out="$work/wrk-$label.txt"
  if [[ $warmup != 0 && $warmup != 0s ]]; then
    "${client_pin[@]}" wrk -t"$threads" -c"$connections" -d"$warmup" -s "$lua" "$url" >/dev/null
  fi
  "${client_pin[@]}" wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$lua" "$url" >"$out"
  if grep -q -E 'Non-2xx|Socket errors' "$out"; then
    echo "run-http.sh: $label had failed requests:" >&2
    cat "$out" >&2
    exit 1
  fi
  awk '/^Requests\/sec:/ { print $2 }' "$out"
}

# p50 and p99 latency of a run, from wrk's --latency table.
latency() {
  awk '$1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 } END { print p50 " / " p99 }' "$1"
}

# p99 latency of a run in microseconds.
p99_us() {
  awk '$1 == "99%" { v = $2; u = 1;
         if (v ~ /us$/) { u = 1 } else if (v ~ /ms$/) { u = 1000 } else if (v ~ /s$/) { u = 1000000 }
         gsub(/[a-z]+$/, "", v); print v * u }' "$1"
}

echo
echo "sessiond $("$sessiond_bin" --version 2>/dev/null | awk '{ print $2 }') ($storage store) vs bench-hello"
echo "wrk: $threads thread(s), $connections connections, $duration per run after a $warmup warm-up"
echo "placement: $placement"
echo
printf '%-34s %12s %12s %8s %9s   %s\n' "endpoint" "sessiond/s" "hello/s" "ratio" "p99 ratio" "p50 / p99 (sessiond | hello)"
for endpoint in authz authenticate current; do
  lua="$bench_dir/wrk/$endpoint.lua"
  ours=$(load "$lua" "$sessiond_url" "sessiond-$endpoint")
  ours_latency=$(latency "$work/wrk-sessiond-$endpoint.txt")
  base=$(load "$lua" "$hello_url" "hello-$endpoint")
  base_latency=$(latency "$work/wrk-hello-$endpoint.txt")
  case $endpoint in
    authenticate) name="POST /api/v1/sessions/authenticate" ;;
    current) name="GET /api/v1/sessions/current" ;;
    authz) name="GET /api/authz/auth-request" ;;
  esac
  ratio=$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.3f}')" "$ours" "$base")
  p99_ratio=$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" \
    "$(p99_us "$work/wrk-sessiond-$endpoint.txt")" "$(p99_us "$work/wrk-hello-$endpoint.txt")")
  printf '%-34s %12.0f %12.0f %8s %9s   %s | %s\n' "$name" "$ours" "$base" "$ratio" "$p99_ratio" "$ours_latency" "$base_latency"
done
echo
echo "ratio = sessiond requests/s divided by bench-hello requests/s for the same requests on the same core;"
echo "p99 ratio = sessiond's 99th-percentile latency divided by bench-hello's (lower is better)."
if [[ -s $work/sessiond.err ]]; then
  echo
  echo "sessiond logged (level warn):"
  cat "$work/sessiond.err"
fi
