#!/bin/bash
# The test command of the README: installs what is missing, then runs the
# stages below one after the other. Each stage prints its own summary line
#   stage NAME: P passed, F failed (T s)
# a table of the stage times follows, and the last line sums them all up:
#   tests: P passed, F failed
# Exits non-zero when any stage failed (a test case failed, or a command
# failed without naming a case, which counts as one failure) or when
# nothing passed at all.
#
# Stages (all of them by default; that is what CI runs):
#   build            meson setup + compile of the normal build
#   unit             its doctest programs (meson test)
#   integration      real Postfix instances on loopback (tests/integration/,
#                    needs root; skipped otherwise)
#   milter           unitmilter under miltertest (tests/milter/)
#   install          a DESTDIR install of the normal build (tests/install/)
#   package          the Debian package (tests/package/): built in a copy of
#                    the tree, lintian, installed, both services answering,
#                    purged (needs root and dpkg-buildpackage; skipped
#                    otherwise)
#   faults, attacks  tests/faults/run.sh, tests/attacks/run.sh on the normal
#                    build, each only when the script exists
#   fuzz             tests/fuzz/run.sh (its own clang build), when it exists
#   san-build        the sanitizer build: address and undefined behaviour
#   san-unit, san-integration, san-milter
#                    the same suites again with the sanitized programs,
#                    every report fatal (UBSan halts, LeakSanitizer on)
#   san-reports      one failure per sanitizer report: the reports of every
#                    process, the daemons' included (whose stderr no test
#                    reads), are written under one directory (log_path),
#                    which must be empty at the end; they are printed and
#                    kept in SAN_BUILD_DIR/meson-logs/sanitizer-reports/.
#
# Environment:
#   BUILD_DIR      the normal build directory (default build)
#   SAN_BUILD_DIR  the sanitizer build directory (default build-san)
#   TESTS_QUICK=1  only the normal build's build, unit, integration, milter
#                  and install (for a quick local run, about 4 minutes here;
#                  the other stages print "skipped")
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${BUILD_DIR:-build}
san_build=${SAN_BUILD_DIR:-build-san}
quick=${TESTS_QUICK:-}

total_passed=0
total_failed=0
stage_times=()
run_started=$SECONDS

# record NAME PASSED FAILED STATUS SECONDS: one stage's summary line and
# its share of the total. A non-zero STATUS without a failed case counts as
# one failure.
record() {
    local name=$1 passed=$2 failed=$3 status=$4 seconds=$5
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        echo "not ok $name: exit status $status"
        failed=1
    fi
    echo "stage $name: $passed passed, $failed failed ($seconds s)"
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    stage_times+=("$(printf '%-16s %6d s   %d passed, %d failed' "$name" "$seconds" "$passed" "$failed")")
}

# skip NAME WHY
skip() {
    echo "stage $1: skipped ($2)"
    stage_times+=("$(printf '%-16s %6s     skipped (%s)' "$1" - "$2")")
}

# build_stage NAME DIR [MESON-OPTION...]: meson setup (or reconfigure) and
# compile; a failed build is one failure. Returns the build's status.
build_stage() {
    local name=$1 dir=$2 start=$SECONDS status
    shift 2
    if [ -d "$dir/meson-private" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi && meson compile -C "$dir"
    status=$?
    record "$name" 0 0 "$status" $((SECONDS - start))
    return "$status"
}

# doctest_counts LOG: "P F", the doctest cases passed and failed in a
# meson testlog. doctest prints, per program:
#   [doctest] test cases: N | P passed | F failed | S skipped
doctest_counts() {
    if [ ! -f "$1" ]; then
        echo "0 0"
        return
    fi
    sed -e 's/\x1b\[[0-9;]*m//g' "$1" | awk -F'|' '
        /^\[doctest\] test cases:/ {
            for (i = 2; i <= NF; i++) {
                n = $i; gsub(/[^0-9]/, "", n)
                if ($i ~ /passed/) p += n
                else if ($i ~ /failed/) f += n
            }
        }
        END { printf "%d %d\n", p, f }'
}

# unit_stage NAME LABEL DIR [MESON-TEST-OPTION...]: meson test in DIR
# (already built), counting doctest's cases; prints "LABEL: P passed, F failed".
unit_stage() {
    local name=$1 label=$2 dir=$3 start=$SECONDS status passed failed
    shift 3
    meson test -C "$dir" --no-rebuild --print-errorlogs "$@"
    status=$?
    read -r passed failed < <(doctest_counts "$dir/meson-logs/testlog.txt")
    echo "$label: $passed passed, $failed failed"
    record "$name" "$passed" "$failed" "$status" $((SECONDS - start))
}

# script_stage NAME PREFIX COMMAND...: runs COMMAND, shows its output, and
# takes the counts of its last "PREFIX: P passed, F failed" line; a script
# that prints no such line has failed.
script_stage() {
    local name=$1 prefix=$2 start=$SECONDS log status passed failed
    shift 2
    log=$(mktemp /tmp/unitpolicy-tests.XXXXXX)
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    read -r passed failed < <(sed -nE "s/^$prefix: ([0-9]+) passed, ([0-9]+) failed\$/\1 \2/p" "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "${passed:-}" ]; then
        echo "not ok $name: no \"$prefix: P passed, F failed\" line"
        passed=0
        failed=1
    fi
    record "$name" "$passed" "$failed" "$status" $((SECONDS - start))
}

# integration_stage NAME BUILD: the real-Postfix tests, as root only.
integration_stage() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "integration: skipped (needs root to run Postfix instances)"
        skip "$1" "needs root"
        return
    fi
    script_stage "$1" integration env BUILD_DIR="$2" bash tests/integration/run.sh
}

# package_stage NAME: the Debian package's build, install and purge, as
# root with dpkg-buildpackage only.
package_stage() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "package: skipped (needs root to install and purge the package)"
        skip "$1" "needs root"
    elif ! command -v dpkg-buildpackage >/dev/null; then
        echo "package: skipped (no dpkg-buildpackage: install dpkg-dev and debhelper)"
        skip "$1" "no dpkg-buildpackage"
    else
        script_stage "$1" package bash tests/package/run.sh
    fi
}

# optional_stage NAME SCRIPT COMMAND...: COMMAND when SCRIPT exists.
optional_stage() {
    local name=$1 script=$2
    shift 2
    if [ ! -f "$script" ]; then
        skip "$name" "no $script"
        return
    fi
    script_stage "$name" "$name" "$@"
}

# ------------------------------------------------------------ the normal build

bash tools/install-deps.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }

if build_stage build "$build"; then
    unit_stage unit "unit tests" "$build"
    integration_stage integration "$build"
    script_stage milter milter env BUILD_DIR="$build" bash tests/milter/run.sh
    script_stage install install env BUILD_DIR="$build" bash tests/install/run.sh
    if [ -n "$quick" ]; then
        skip package TESTS_QUICK
    else
        package_stage package
    fi
    if [ -n "$quick" ]; then
        skip faults TESTS_QUICK
        skip attacks TESTS_QUICK
    else
        optional_stage faults tests/faults/run.sh env BUILD_DIR="$build" bash tests/faults/run.sh
        optional_stage attacks tests/attacks/run.sh env BUILD_DIR="$build" bash tests/attacks/run.sh
    fi
fi

# ------------------------------------------------------------ fuzzing

if [ -n "$quick" ]; then
    skip fuzz TESTS_QUICK
else
    optional_stage fuzz tests/fuzz/run.sh bash tests/fuzz/run.sh
fi

# ------------------------------------------------------------ the sanitizer build

# san_reports_stage DIR: every file under DIR is a sanitizer report.
san_reports_stage() {
    local dir=$1 kept=$san_build/meson-logs/sanitizer-reports reports=() report
    mapfile -t reports < <(find "$dir" -type f -size +0c | sort)
    rm -rf "$kept"
    if [ "${#reports[@]}" -gt 0 ]; then
        mkdir -p "$kept"
        for report in "${reports[@]}"; do
            echo "not ok sanitizer report ${report##*/} (kept in $kept):"
            head -n 80 "$report" | sed -e 's/^/# /'
            cp "$report" "$kept/"
        done
    fi
    echo "san-reports: 0 passed, ${#reports[@]} failed"
    record san-reports 0 "${#reports[@]}" 0 0
}

if [ -n "$quick" ]; then
    skip san TESTS_QUICK
elif build_stage san-build "$san_build" -Db_sanitize=address,undefined -Db_lundef=false; then
    # Reports go to files, not to stderr: a daemon's stderr is a log that no
    # test reads. The daemons write theirs after dropping to nobody, hence
    # 1777. g++ links UBSan as a runtime of its own that ignores log_path
    # when ASan is loaded: UBSan aborts instead (abort_on_error), and ASan
    # turns the abort into a report with the stack (handle_abort), written
    # to the same file as UBSan's message.
    san_logs=$(mktemp -d /tmp/unitpolicy-san.XXXXXX)
    chmod 1777 "$san_logs"
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:handle_abort=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$san_logs/san"
    export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$san_logs/san"
    export IT_TIME_LIMIT=${IT_TIME_LIMIT:-480}  # per integration script; the sanitized programs are slower
    export DEMO_TIME_LIMIT=360
    unit_stage san-unit "san unit tests" "$san_build" --timeout-multiplier 3
    integration_stage san-integration "$san_build"
    script_stage san-milter milter env BUILD_DIR="$san_build" bash tests/milter/run.sh
    unset ASAN_OPTIONS UBSAN_OPTIONS IT_TIME_LIMIT DEMO_TIME_LIMIT
    san_reports_stage "$san_logs"
    rm -rf "$san_logs"
fi

# ------------------------------------------------------------ summary

echo "stage times:"
printf '  %s\n' "${stage_times[@]}"
printf '  %-16s %6d s\n' total $((SECONDS - run_started))
echo "tests: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ] && [ "$total_passed" -gt 0 ]
