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

for tool in wrk curl python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "run-http.sh: $tool is required but not installed" >&2
    exit 1
  fi
done

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
cd "$repo"

# --- CPU placement -----------------------------------------------------------------------
cores=$(nproc)
if [[ $cores -ge 2 ]] && command -v taskset >/dev/null; then
  server_pin=(taskset -c 0)
  client_pin=(taskset -c 1)
  placement="server on CPU 0, wrk on CPU 1"
  if [[ $cores -eq 2 ]]; then
    placement+=" (this machine has only 2 cores: the OS, interrupts and anything else running share them with the test, so expect noise; compare ratios, not absolute numbers)"
  fi
else
  server_pin=()
  client_pin=()
  placement="not pinned: this machine has $cores core(s) (or no taskset), so wrk and the server compete for the same CPU and the numbers are a lower bound"
fi

# --- Build -------------------------------------------------------------------------------
if [[ $build -eq 1 ]]; then
  echo "building sessiond and bench-hello (release)..." >&2
  cargo build --release -p sessiond -p sessiond-bench >&2
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
sessiond_bin="$target_dir/release/sessiond"
hello_bin="$target_dir/release/bench-hello"
for bin in "$sessiond_bin" "$hello_bin"; do
  if [[ ! -x $bin ]]; then
    echo "run-http.sh: $bin is missing; run without --no-build" >&2
    exit 1
  fi
done

# --- Scratch space and cleanup -----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-bench.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until `url` answers at all (any HTTP status), or fails after ~20 s.
wait_for() {
  local url=$1 name=$2 pid=$3 i
  for ((i = 0; i < 200; i++)); do
    if curl -s -o /dev/null --max-time 1 "$url"; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run-http.sh: $name exited before answering; its output:" >&2
      cat "$work/$name.out" "$work/$name.err" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  echo "run-http.sh: $name did not answer $url within 20 s" >&2
  exit 1
}

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
pids+=($!)
sessiond_url="http://127.0.0.1:$sessiond_port"
wait_for "$sessiond_url/healthz" sessiond "${pids[-1]}"

# The first start creates the users file and prints the administrator's password once.
password=$(sed -n 's/^[[:space:]]*password:[[:space:]]*//p' "$work/sessiond.out" | head -n 1)
if [[ -z $password ]]; then
  echo "run-http.sh: sessiond printed no bootstrap password; its output:" >&2
  cat "$work/sessiond.out" "$work/sessiond.err" >&2
  exit 1
fi
login_body=$(PASSWORD=$password python3 -c 'import json, os; print(json.dumps({"callbacks": [
  {"type": "username", "value": "admin"}, {"type": "password", "value": os.environ["PASSWORD"]}]}))')
login=$(curl -sS --fail-with-body -X POST -H 'Content-Type: application/json' \
  --data "$login_body" "$sessiond_url/api/v1/authenticate") || {
  echo "run-http.sh: login failed: $login" >&2
  exit 1
}
token=$(printf '%s' "$login" |
  python3 -c 'import json, sys; print(json.load(sys.stdin).get("session_token") or "")')
if [[ -z $token ]]; then
  echo "run-http.sh: the login answer has no session_token: $login" >&2
  exit 1
fi
# wrk reads the token from this file, so it never shows in the process list.
umask 077
printf '%s\n' "$token" >"$work/token"
export TOKEN_FILE="$work/token"
COOKIE_NAME=$(sed -n 's/^[[:space:]]*realm[[:space:]].*(cookie \(.*\))$/\1/p' "$work/sessiond.out" | head -n 1)
export COOKIE_NAME
if [[ -z $COOKIE_NAME ]]; then
  echo "run-http.sh: sessiond printed no cookie name; its output:" >&2
  cat "$work/sessiond.out" >&2
  exit 1
fi

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
pids+=($!)
hello_url="http://127.0.0.1:$hello_port"
wait_for "$hello_url/" hello "${pids[-1]}"

# --- Load --------------------------------------------------------------------------------
# Runs wrk with `script` against `url`; prints requests/s. Refuses results with errors.
load() {
  local script=$1 url=$2 label=$3
  local out="$work/wrk-$label.txt"
  if [[ $warmup != 0 && $warmup != 0s ]]; then
    "${client_pin[@]}" wrk -t"$threads" -c"$connections" -d"$warmup" -s "$script" "$url" >/dev/null
  fi
  "${client_pin[@]}" wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$script" "$url" >"$out"
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
  script="$bench_dir/wrk/$endpoint.lua"
  ours=$(load "$script" "$sessiond_url" "sessiond-$endpoint")
  ours_latency=$(latency "$work/wrk-sessiond-$endpoint.txt")
  base=$(load "$script" "$hello_url" "hello-$endpoint")
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
