#!/bin/bash
# The test command of the README: installs what is missing, builds, runs
# every test (the doctest programs through meson test, the real-Postfix
# integration tests, the miltertest scripts), and sums them up in one last line:
#   tests: P passed, F failed
# Exits non-zero when meson test failed, a test case failed, or none passed.
# BUILD_DIR overrides the build directory (default: build).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${BUILD_DIR:-build}

bash tools/install-deps.sh

if [ -d "$build/meson-private" ]; then
    meson setup --reconfigure "$build"
else
    meson setup "$build"
fi
meson compile -C "$build"

status=0
meson test -C "$build" --print-errorlogs || status=$?

# doctest prints, per program:
#   [doctest] test cases: N | P passed | F failed | S skipped
log="$build/meson-logs/testlog.txt"
passed=0
failed=0
if [ -f "$log" ]; then
    read -r passed failed < <(
        sed -e 's/\x1b\[[0-9;]*m//g' "$log" | awk -F'|' '
            /^\[doctest\] test cases:/ {
                for (i = 2; i <= NF; i++) {
                    n = $i; gsub(/[^0-9]/, "", n)
                    if ($i ~ /passed/) p += n
                    else if ($i ~ /failed/) f += n
                }
            }
            END { printf "%d %d\n", p, f }')
else
    echo "run.sh: $log not found" >&2
fi

echo "unit tests: $passed passed, $failed failed"

# The real-Postfix integration tests (tests/integration/, root only).
ipassed=0
ifailed=0
istatus=0
if [ "$(id -u)" -eq 0 ]; then
    ilog=$(mktemp)
    BUILD_DIR="$build" bash tests/integration/run.sh 2>&1 | tee "$ilog" || istatus=$?
    read -r ipassed ifailed < <(sed -nE 's/^integration: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$ilog" | tail -n 1) || true
    ipassed=${ipassed:-0}
    ifailed=${ifailed:-0}
    rm -f "$ilog"
else
    echo "integration: skipped (needs root to run Postfix instances)"
fi

# unitmilter driven by libmilter's own test client (tests/milter/, miltertest).
mlog=$(mktemp)
mstatus=0
BUILD_DIR="$build" bash tests/milter/run.sh 2>&1 | tee "$mlog" || mstatus=$?
read -r mpassed mfailed < <(sed -nE 's/^milter: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$mlog" | tail -n 1) || true
mpassed=${mpassed:-0}
mfailed=${mfailed:-0}
rm -f "$mlog"

echo "tests: $((passed + ipassed + mpassed)) passed, $((failed + ifailed + mfailed)) failed"
if [ "$status" -ne 0 ] || [ "$istatus" -ne 0 ] || [ "$mstatus" -ne 0 ] || [ "$failed" -gt 0 ] || [ "$ifailed" -gt 0 ] ||
    [ "$mfailed" -gt 0 ] || [ "$passed" -eq 0 ]; then
    exit 1
fi
