#!/bin/bash
# The database fault matrix under load (fault_matrix.cpp). Builds nothing:
# BUILD_DIR (default: build) must hold a build of the project. Prints the
# program's checks and table, then one last line:
#   faults: P passed, F failed
# and exits non-zero when a check failed, the program failed, or none passed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${BUILD_DIR:-build}
program="$build/tests/faults/fault_matrix"

if [ ! -x "$program" ]; then
    echo "not ok build: $program not found (build the project first)"
    echo "faults: 0 passed, 1 failed"
    exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
"$program" "$build/src/policyd/unitpolicy" "$build/src/ctl/unitctl" 2>&1 | tee "$out" || status=$?

passed=$(grep -c '^ok ' "$out")
failed=$(grep -c '^not ok ' "$out")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "not ok fault_matrix: exited with status $status"
    failed=1
fi
echo "faults: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ]; then
    exit 1
fi
