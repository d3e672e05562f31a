#!/usr/bin/env bash
# Runs the fuzz targets for a while each and prints one line per target.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS defaults to 60, the targets to every [[bin]] in fuzz/Cargo.toml. Each target starts
# from its seeds (fuzz/seeds/<target>/) plus what earlier runs found (fuzz/corpus/<target>/,
# where new inputs go). The targets are built with debug assertions and overflow checks. The
# full libFuzzer output of each run is kept in fuzz/logs/<target>.log; a crashing input lands in
# fuzz/artifacts/<target>/. Exits 1 when a target crashed, 2 on a usage or setup error.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage() {
    echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2
    exit 2
}

secs=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
[[ $secs -gt 0 ]] || usage
case "${1:-}" in -h | --help) usage ;; esac

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: the nightly toolchain is missing (cargo-fuzz needs it): rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

# Every [[bin]] name in fuzz/Cargo.toml.
mapfile -t known < <(awk '/^\[\[bin\]\]/ { in_bin = 1; next }
    /^\[/ { in_bin = 0 }
    in_bin && $1 == "name" { gsub(/"/, "", $3); print $3 }' fuzz/Cargo.toml)
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=("${known[@]}")
fi
for target in "${targets[@]}"; do
    if ! printf '%s\n' "${known[@]}" | grep -qxF -- "$target"; then
        echo "fuzz/run.sh: unknown target '$target'; known: ${known[*]}" >&2
        exit 2
    fi
done

echo "building ${#targets[@]} target(s)..." >&2
for target in "${targets[@]}"; do
    cargo +nightly fuzz build --debug-assertions "$target"
done

mkdir -p fuzz/logs
summary=()
crashed=0
for target in "${targets[@]}"; do
    corpus=("fuzz/corpus/$target")
    mkdir -p "${corpus[0]}"
    [[ -d fuzz/seeds/$target ]] && corpus+=("fuzz/seeds/$target")
    log="fuzz/logs/$target.log"
    echo "fuzzing $target for ${secs}s (log: $log)" >&2

    start=$(date +%s)
    # -timeout: a parser that spends 10 s on one input is a bug (a denial of service) too.
    if cargo +nightly fuzz run --debug-assertions "$target" "${corpus[@]}" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
        artifact=${artifact#"$root/"}
        status="CRASH ${artifact:-(no artifact written; see $log)}"
        crashed=1
        # The panic message, then cargo-fuzz's input and reproduce commands; else the log's end.
        report=$(sed -n '/panicked at/,/^stack backtrace:/p' "$log" | head -n 20
            sed -n '/^Failing input:/,/^Error: /p' "$log" | grep -v '^Error: ')
        printf '%s\n' "${report:-$(tail -n 30 "$log")}" >&2
    fi
    elapsed=$(($(date +%s) - start))

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [[ -n $execs ]] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    summary+=("$(printf '%-20s %5ss %12s execs  %s' "$target" "$elapsed" "${execs:-?}" "$status")")
done

echo
printf '%s\n' "${summary[@]}"
exit "$crashed"
