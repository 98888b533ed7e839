# tests/checks.sh: the counters and check helpers of the shell test scripts
# that report "ok NAME" / "not ok NAME: WHY" lines (sourced; sets passed and
# failed to 0).
# shellcheck shell=bash
# The counters are read by the scripts that source this file.
# shellcheck disable=SC2034

passed=0
failed=0
ok() {
    echo "ok $1"
    passed=$((passed + 1))
}
not_ok() {
    echo "not ok $1: $2"
    failed=$((failed + 1))
}
# check NAME WHY COMMAND...: ok when COMMAND succeeds, else not ok with WHY.
check() {
    local name=$1 why=$2
    shift 2
    if "$@"; then ok "$name"; else not_ok "$name" "$why"; fi
}
