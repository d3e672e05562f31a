#!/usr/bin/env bash
# Builds sessiond as a fully static executable (glibc, static-pie) and proves it: no dynamic
# section, `--version` runs, and a zero-configuration `serve` answers /healthz, checked by the
# binary's own `healthcheck`. Run as root, the server and the check run inside an empty chroot
# holding only the binary and /etc/hosts, which proves that no shared library or NSS module of
# the host is needed.
#
#   dist/check-static.sh              build, then check
#   dist/check-static.sh --no-build   check the binary built last time
#
# Needs: cargo with the host's gnu target, file(1), ldd(1). Takes a few minutes (a release build
# with LTO). Honours CARGO_TARGET_DIR. Leaves nothing behind but the build.
set -euo pipefail

cd "$(dirname "$0")/.."
build=1
if [[ "${1:-}" == "--no-build" ]]; then build=0; fi

if command -v rustc >/dev/null; then
  target="$(rustc -vV | sed -n 's/^host: //p')"
else
  target="$(uname -m)-unknown-linux-gnu"
fi
case "$target" in
  *-linux-gnu) ;;
  *) echo "check-static: the host target is $target; this check is for *-linux-gnu" >&2; exit 2 ;;
esac
bin="${CARGO_TARGET_DIR:-target}/$target/release/sessiond"

if (( build )); then
  # crt-static links glibc, libgcc and mimalloc's C code into the executable. An explicit
  # --target keeps the flag away from build scripts and proc macros, which must stay dynamic.
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --locked --release --target "$target" -p sessiond
fi
[[ -x "$bin" ]] || { echo "check-static: no binary at $bin (build it first)" >&2; exit 1; }
bin="$(cd "$(dirname "$bin")" && pwd)/sessiond"
version_expected="sessiond $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"

fail() { echo "check-static: FAIL: $*" >&2; exit 1; }
pass() { echo "check-static: ok: $*"; }

# 1. Linked statically: file(1) says so, and ldd finds no dynamic section.
kind="$(file -b "$bin")"
[[ "$kind" == *"statically linked"* || "$kind" == *"static-pie linked"* ]] || fail "file(1) says: $kind"
pass "file: ${kind%%,*}, $(grep -o 'static[-a-z]* linked' <<<"$kind")"
if ldd_out="$(ldd "$bin" 2>&1)"; then
  [[ "$ldd_out" == *"statically linked"* ]] || fail "ldd lists libraries: $ldd_out"
else
  [[ "$ldd_out" == *"not a dynamic executable"* ]] || fail "ldd: $ldd_out"
fi
pass "ldd: $(echo "$ldd_out" | tr -d '\t')"
echo "check-static: size: $(du -h "$bin" | cut -f1)"

# 2. It runs, and mimalloc (C code, linked in statically) is the allocator.
version="$(env -i "$bin" --version)"
[[ "$version" == "$version_expected" ]] || fail "--version printed: $version"
pass "--version: $version"
# Captured first: `grep -q` would stop reading early, and pipefail would count the SIGPIPE.
allocator="$(env -i MIMALLOC_VERBOSE=1 "$bin" --version 2>&1)"
[[ "$allocator" == *"mimalloc: process init"* ]] || fail "mimalloc is not the allocator"
pass "mimalloc is the allocator"

# 3. Zero-configuration serve in a scratch directory; the port is left to the kernel and read
#    from the banner, so a server already running on 8470 does not get in the way.
scratch="$(mktemp -d)"
server=""
cleanup() {
  if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then kill "$server"; wait "$server" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

run_in_scratch=(env -i SESSIOND__SERVER__LISTEN=127.0.0.1:0)
if [[ "$(id -u)" == 0 ]] && command -v chroot >/dev/null; then
  mkdir -p "$scratch/etc"
  cp "$bin" "$scratch/sessiond"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$scratch/etc/hosts"
  start=("$(command -v chroot)" "$scratch" /sessiond)
  where="an empty chroot (the binary and /etc/hosts only)"
else
  start=("$bin")
  where="a scratch directory (run as root to check inside an empty chroot)"
fi

# Everything from here runs in the scratch directory, so no sessiond.yml of the caller is read.
cd "$scratch"
"${run_in_scratch[@]}" "${start[@]}" serve >"$scratch/serve.out" 2>"$scratch/serve.err" &
server=$!
port=""
for _ in $(seq 1 100); do
  port="$(sed -n 's|^  listening on  http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$scratch/serve.out" 2>/dev/null || true)"
  [[ -n "$port" ]] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
[[ -n "$port" ]] || fail "serve did not start: $(cat "$scratch/serve.out" "$scratch/serve.err")"
grep -q '^    password: ' "$scratch/serve.out" || fail "no administrator password in the banner"
pass "serve started with no configuration in $where, on port $port"

# The default URL comes from server.listen, so the healthcheck gets the same address by env.
"${run_in_scratch[@]/127.0.0.1:0/127.0.0.1:$port}" "${start[@]}" healthcheck \
  || fail "healthcheck of the running server failed"
"${start[@]}" healthcheck --url "http://localhost:$port/readyz" || fail "/readyz (via localhost) failed"
pass "healthcheck: /healthz and /readyz answer 200"
for file in secret users.yml sessiond.redb; do
  [[ -f "$scratch/sessiond-data/$file" ]] || fail "no sessiond-data/$file after the first start"
done
pass "data directory created: secret, users.yml, sessiond.redb"

kill -TERM "$server"
status=0
wait "$server" || status=$?
server=""
(( status == 0 )) || fail "serve exited with status $status after SIGTERM: $(tail -n 5 "$scratch/serve.err")"
if "${start[@]}" healthcheck --url "http://127.0.0.1:$port/healthz" --timeout 2s 2>/dev/null; then
  fail "healthcheck passed with the server stopped"
fi
pass "SIGTERM stops serve cleanly, and healthcheck then fails"
echo "check-static: all checks passed for $bin"
