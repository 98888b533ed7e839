#!/bin/bash
# Builds the libFuzzer targets with clang++ (address and undefined behaviour
# sanitizers, coverage instrumentation of the libraries under test) and runs
# each one for FUZZ_SECONDS (default 60) over a copy of its seed corpus
# (tests/fuzz/corpus/TARGET; the committed seeds are never written to).
# Prints, per target, the executions, executions per second and coverage
# from libFuzzer's final statistics, and ends with one line:
#   fuzz: P passed, F failed
# A target passes when libFuzzer found no crash, leak, timeout or broken
# property; the input that failed is kept under the build directory and its
# path printed. Exits non-zero when any target failed.
# BUILD_DIR_FUZZ overrides the build directory (default: build-fuzz).
# FUZZ_TARGETS limits the run to some targets (names without "fuzz_").
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${BUILD_DIR_FUZZ:-build-fuzz}
seconds=${FUZZ_SECONDS:-60}
all_targets=(policy_request netstring address csv csv_import sync route_header printable)
read -r -a targets <<<"${FUZZ_TARGETS:-${all_targets[*]}}"

# Symbolised stacks in the reports: Debian names the tool llvm-symbolizer-14
# unless the llvm package is installed (the sanitizers fall back to addr2line).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    symbolizer=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)
    [ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH=$symbolizer
fi

setup_options=(-Dfuzzing=true -Dtests=disabled -Db_sanitize=address,undefined -Db_lundef=false
    "-Dcpp_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all")

# Sets up (clang++, or CXX_FUZZ) and compiles only the fuzz targets and what
# they link; the compiler's output is shown only when the build fails.
build_targets() {
    local log names=()
    log=$(mktemp)
    for t in "${targets[@]}"; do names+=("fuzz_$t"); done
    if { if [ -d "$build/meson-private" ]; then
            meson setup --reconfigure "$build" "${setup_options[@]}"
        else
            CXX=${CXX_FUZZ:-clang++} meson setup "$build" "${setup_options[@]}"
        fi && meson compile -C "$build" "${names[@]}"; } >"$log" 2>&1; then
        rm -f "$log"
        return 0
    fi
    tail -n 40 "$log" >&2
    rm -f "$log"
    return 1
}

# The value of one of libFuzzer's "stat::NAME: VALUE" lines.
final_stat() { sed -nE "s/^stat::$1:[[:space:]]*([0-9]+).*/\1/p" "$2" | tail -n 1; }

# Coverage from the last status line: "#N DONE cov: C ft: F corp: ...".
coverage() { grep -E '^#[0-9]+' "$1" | tail -n 1 | sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)\/.*/cov \1, ft \2, corpus \3/p'; }

# Runs one target; 0 when libFuzzer found nothing.
fuzz_one() {
    local target=$1 exe="$build/tests/fuzz/fuzz_$1" work="$build/fuzz-run/$1"
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp tests/fuzz/corpus/"$target"/* "$work/corpus/"
    local seeds
    seeds=$(find "$work/corpus" -type f | wc -l)
    # -timeout: one input running for 10 s is a hang even on a loaded 2-core
    # machine; a slow unit below that is only reported by libFuzzer.
    local rc=0
    UBSAN_OPTIONS=print_stacktrace=1 "$exe" "$work/corpus" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" >"$work/log" 2>&1 || rc=$?
    local runs rate
    runs=$(final_stat number_of_executed_units "$work/log")
    rate=$(final_stat average_exec_per_sec "$work/log")
    local verdict=passed
    [ "$rc" -eq 0 ] || verdict="FAILED (exit $rc)"
    echo "fuzz_$target: $verdict: ${runs:-?} executions in ${seconds} s, ${rate:-?} exec/s, $(coverage "$work/log") (from $seeds seeds)"
    if [ "$rc" -ne 0 ]; then
        grep -E 'ERROR: |SUMMARY: |fuzz: property broken' "$work/log" | head -n 5 | sed 's/^/    /'
        sed -nE 's/.*Test unit written to (.*)$/    input kept: \1/p' "$work/log"
        echo "    log: $work/log"
    fi
    return "$rc"
}

passed=0
failed=0
if build_targets; then
    for target in "${targets[@]}"; do
        if fuzz_one "$target"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
else
    echo "fuzz: building the targets in $build failed" >&2
    failed=${#targets[@]}
fi

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
