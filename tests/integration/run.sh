#!/bin/bash
# tests/integration/run.sh: runs every tests/integration/test_*.sh (real
# Postfix on loopback; needs root and the packages of
# tools/debian-packages.txt), one after the other, printing each one's
# output under a "# test_NAME.sh" heading. The last line adds them up:
#   integration: N passed, M failed
# A script that exits non-zero without reporting a failure counts as one
# failure. Exits non-zero when anything failed.
# BUILD_DIR selects the build (default build); UNITPOLICY a unitpolicy binary.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log=$(mktemp /tmp/upit-run.XXXXXX)
trap 'rm -f "$log"' EXIT
passed=0
failed=0
status=0
for script in "$here"/test_*.sh; do
    name=$(basename "$script")
    echo "# $name"
    bash "$script" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    out=$(cat "$log")
    summary=$(printf '%s\n' "$out" | grep -E '^integration: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -n "$summary" ]; then
        read -r p f < <(printf '%s\n' "$summary" | sed -E 's/^integration: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
    else
        p=0
        f=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok $name: exit status $rc"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$rc" -ne 0 ] || [ "$f" -gt 0 ] && status=1
done
echo "integration: $passed passed, $failed failed"
exit "$status"
