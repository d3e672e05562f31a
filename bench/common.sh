# What the bench/run-*.sh scripts share. Each script reads its arguments, sets `script` (its
# name, for messages) and `build` (0 after --no-build), then sources this file:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
#
# It sets bench_dir and repo and changes to the repository root.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
cd "$repo"

# Prints "<script>: <message>" on stderr and exits 1.
die() {
  echo "$script: $*" >&2
  exit 1
}

# Fails unless every named program is installed.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is required but not installed"
  done
}

# Sets server_pin and client_pin (taskset prefixes for CPU 0 and CPU 1; empty where the machine
# cannot pin) and placement, the sentence the report prints. $1 says what runs on CPU 0, $2 what
# runs on CPU 1. Pinning keeps the load generator from taking the server's core.
pin_cpus() {
  local server=$1 client=$2 cores
  cores=$(nproc)
  if [[ $cores -ge 2 ]] && command -v taskset >/dev/null; then
    server_pin=(taskset -c 0)
    client_pin=(taskset -c 1)
    placement="$server on CPU 0, $client on CPU 1"
    if [[ $cores -eq 2 ]]; then
      placement+=" (this machine has only 2 cores: the OS, interrupts and anything else running share them with the test, so expect noise; compare ratios, not absolute numbers)"
    fi
  else
    server_pin=()
    client_pin=()
    placement="not pinned: this machine has $cores core(s) (or no taskset), so $server and $client compete for the same CPU and the numbers are a lower bound"
  fi
}

# Builds the named packages in release, unless --no-build, and sets target_dir.
build_release() {
  local args=() package
  for package in "$@"; do
    args+=(-p "$package")
  done
  if [[ $build -eq 1 ]]; then
    echo "building $* (release)..." >&2
    cargo build --release "${args[@]}" >&2
  fi
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
}

# Prints the path of the release binary $1, failing when it has not been built.
release_binary() {
  local bin="$target_dir/release/$1"
  [[ -x $bin ]] || die "$bin is missing; run without --no-build"
  echo "$bin"
}

# Makes the scratch directory `work` (under $1, named after $2) and arranges that, however the
# script ends, every process in `tracked` is stopped and the directory removed.
tracked=()
make_workdir() {
  work=$(mktemp -d "$1/sessiond-bench-$2.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Stops the tracked processes, the last started first (sessiond before the Redis it uses).
cleanup() {
  local i
  for ((i = ${#tracked[@]} - 1; i >= 0; i--)); do
    stop_process "${tracked[i]}"
  done
  rm -rf "$work"
}

# Stops process $1 (when it is set and still runs) and waits for it.
stop_process() {
  if [[ -n $1 ]]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

now_s() {
  date +%s.%N
}

# Resident set of a process in bytes (VmRSS, /proc/PID/status).
rss_bytes() {
  awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/$1/status"
}

load_average() {
  cut -d ' ' -f 1-3 /proc/loadavg
}

# Waits until `url` answers `status` (`any`: any HTTP answer at all) while process `pid` runs,
# polling every 20 ms for at most `seconds`. When the process dies first, prints the files given
# after those four arguments (its output) and exits.
# usage: wait_http URL STATUS|any PID SECONDS [FILE...]
wait_http() {
  local url=$1 want=$2 pid=$3 seconds=$4 deadline got
  shift 4
  deadline=$(($(date +%s) + seconds))
  while [[ $(date +%s) -lt $deadline ]]; do
    # curl writes 000 when nothing answered.
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
    if [[ $got != 000 && ($want == any || $got == "$want") ]]; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$script: the process behind $url exited before answering; its output:" >&2
      cat "$@" >&2 || true
      exit 1
    fi
    sleep 0.02
  done
  die "$url did not answer $want within $seconds s"
}

# Starts a private redis-server (no persistence) on a free port on the server's CPU and waits
# for its PING; sets redis_port, redis_pid (tracked) and redis_url.
start_redis() {
  local i
  redis_port=$(free_port)
  "${server_pin[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" \
    --save '' --appendonly no --daemonize no --logfile "$work/redis.log" &
  redis_pid=$!
  tracked+=("$redis_pid")
  for ((i = 0; i < 200; i++)); do
    if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
      redis_url="redis://127.0.0.1:$redis_port"
      return 0
    fi
    if ! kill -0 "$redis_pid" 2>/dev/null; then
      echo "$script: redis-server exited; its log:" >&2
      cat "$work/redis.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  die "redis-server did not answer within 20 s"
}

# The realm's cookie name, from the startup banner sessiond printed to $1.
banner_cookie_name() {
  sed -n 's/^[[:space:]]*realm[[:space:]].*(cookie \(.*\))$/\1/p' "$1" | head -n 1
}

# Signs in at sessiond `url` as the bootstrap administrator, whose password its first start
# printed to `out` (its standard output). Sets token, written to $work/token for wrk (so that
# it never shows in the process list) and exported as TOKEN_FILE, and COOKIE_NAME (exported).
# usage: admin_login URL OUT
admin_login() {
  local url=$1 out=$2 password body answer
  password=$(sed -n 's/^[[:space:]]*password:[[:space:]]*//p' "$out" | head -n 1)
  [[ -n $password ]] || die "sessiond printed no bootstrap password; its output: $(cat "$out")"
  body=$(PASSWORD=$password python3 -c 'import json, os; print(json.dumps({"callbacks": [
    {"type": "username", "value": "admin"}, {"type": "password", "value": os.environ["PASSWORD"]}]}))')
  answer=$(curl -sS --fail-with-body -X POST -H 'Content-Type: application/json' \
    --data "$body" "$url/api/v1/authenticate") || die "login failed: $answer"
  token=$(printf '%s' "$answer" |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("session_token") or "")')
  [[ -n $token ]] || die "the login answer has no session_token: $answer"
  (umask 077 && printf '%s\n' "$token" >"$work/token")
  export TOKEN_FILE="$work/token"
  COOKIE_NAME=$(banner_cookie_name "$out")
  [[ -n $COOKIE_NAME ]] || die "sessiond printed no cookie name; its output: $(cat "$out")"
  export COOKIE_NAME
}
