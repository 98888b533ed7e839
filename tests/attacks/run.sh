#!/bin/bash
# Hostile clients against unitpolicy: runs the `hostile` program of an
# existing build (it builds nothing) and sums its checks up in one last line:
#   attacks: P passed, F failed
# Exits non-zero when a check failed, the program failed, or none passed.
# BUILD_DIR names the build directory (default: build). About a minute.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${BUILD_DIR:-build}
hostile="$build/tests/attacks/hostile"
unitpolicy="$build/src/policyd/unitpolicy"

for program in "$hostile" "$unitpolicy"; do
    if [ ! -x "$program" ]; then
        echo "not ok setup: $program is missing (build it first: meson compile -C $build)"
        echo "attacks: 0 passed, 1 failed"
        exit 1
    fi
done

log=$(mktemp)
"$hostile" --unitpolicy "$unitpolicy" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^not ok ' "$log")
rm -f "$log"
# A program that died without saying why still counts as a failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "not ok hostile: exit status $status"
    failed=1
fi
echo "attacks: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
