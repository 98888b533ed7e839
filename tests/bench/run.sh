#!/bin/bash
# tests/bench/run.sh: the one benchmark command (tests/bench/README.md).
# Installs what the benchmarks need, builds in BUILD_DIR (default build) the
# programs it runs, then measures, in one run on this machine:
#   1. bench_lookup, for each directory size: unitpolicy's policy and
#      socketmap rates and latencies at 8 and 64 connections, each with
#      the floor server's in alternate runs, start-up time and memory; on
#      the headline size (1,000,000 mailboxes, else the largest) also
#      unitmilter's messages/s;
#   2. baselines.sh on the same 1,000,000-mailbox directory: Postfix's
#      sqlite: table (postmap -q -) and postfwd2;
#   3. e2e.sh: smtp-source -> Postfix -> smtp-sink with no checks, with
#      Postfix's sqlite: tables, with unitpolicy + unitmilter, and with
#      unitpolicy without unitmilter; the requests per message;
# and writes BENCHMARKS.md (report.py), the charts docs/bench/*.png
# (plot/*.gp) and the run's raw figures, docs/bench/results.jsonl. The
# report opens with issue 16's table of targets, every figure of it from
# this one run.
#
# Usage: run.sh [--quick] [--sizes 10000,1000000,10000000] [--seconds S]
#               [--no-build] [--out FILE] [--charts DIR] [--work DIR]
#   --quick     10,000 mailboxes, 2-second runs, 300 messages end to end
#               once: checks the whole chain in a few minutes
#   --no-build  measure BUILD_DIR's binaries as they are
#   --seconds   seconds of each lookup measurement (default 5)
#   --out       the report (default BENCHMARKS.md); --charts: where the
#               PNG files and results.jsonl go (default docs/bench)
#   --work      the work directory (default a new /tmp/upbench.XXXXXX,
#               removed at the end unless KEEP_BENCH=1)
# Needs root: it installs packages and runs throwaway Postfix instances
# and postfwd2. A part that fails is noted in the report; the script then
# exits 1 after writing it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
export BUILD_DIR=$build
bench=$root/tests/bench

sizes=
seconds=
quick=0
do_build=1
out=BENCHMARKS.md
charts=docs/bench
work=
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --sizes) sizes=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --no-build) do_build=0; shift ;;
        --out) out=$2; shift 2 ;;
        --charts) charts=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        *)
            sed -n '/^# Usage:/,/^# Needs root/p' "${BASH_SOURCE[0]}" | sed -e 's/^# \{0,1\}//' >&2
            exit 2 ;;
    esac
done
if [ "$quick" -eq 1 ]; then
    sizes=${sizes:-10000}
    seconds=${seconds:-2}
    baseline_args=(--lookups 20000 --repeats 1 --seconds "$seconds")
    e2e_args=(--messages 300 --repeats 1 --mailboxes 10000 --configs abcd)
else
    sizes=${sizes:-10000,1000000,10000000}
    seconds=${seconds:-5}
    baseline_args=(--seconds "$seconds")
    e2e_args=(--mailboxes 1000000 --configs abcd)   # the size of the lookup figures' headline
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: run me as root (packages, throwaway Postfix instances, postfwd2)" >&2
    exit 1
fi

started=$SECONDS
say() { echo "bench: $*"; }

# ---------------------------------------------------------------- packages

bash tools/install-deps.sh
extra=()
for package in postfwd gnuplot-nox; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)" = installed ] || extra+=("$package")
done
if [ "${#extra[@]}" -gt 0 ]; then
    say "installing ${extra[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${extra[@]}"
fi

# ---------------------------------------------------------------- build

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build"   # the project's default build type: debugoptimized (-O2 -g)
fi
if [ "$do_build" -eq 1 ]; then
    # Only what the benchmarks run: the whole project with its tests would
    # take most of the time budget on two cores (README, "Time budget").
    meson compile -C "$build" unitpolicy unitmilter unitctl floor_server bench_lookup
fi
buildtype=$(meson introspect --buildoptions "$build" |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))')

# ---------------------------------------------------------------- the run

if [ -z "$work" ]; then
    work=$(mktemp -d /tmp/upbench.XXXXXX)
    [ -n "${KEEP_BENCH:-}" ] || trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
chmod 0755 "$work"
results=$work/results.jsonl
python3 "$bench/report.py" machine --build-type "$buildtype" >"$results"
failed=0

# note TEXT: a line of the report's Notes section.
note() {
    python3 -c 'import json, sys; print(json.dumps({"kind": "note", "text": sys.argv[1]}))' "$1" >>"$results"
    echo "bench: $1" >&2
}

# phase NAME COMMAND...: runs COMMAND (its JSON lines go to $results by its
# own --json), records its duration, notes a failure.
phase() {
    local name=$1 t0=$SECONDS status=0
    shift
    say "$name ..."
    "$@" || status=$?
    printf '{"kind":"timing","phase":"%s","seconds":%d}\n' "$name" $((SECONDS - t0)) >>"$results"
    if [ "$status" -ne 0 ]; then
        note "$name failed (exit $status): its figures are missing or incomplete; log in the run's output"
        failed=1
    fi
}

bench_lookup=${BENCH_LOOKUP:-$build/tests/bench/bench_lookup}

# The size whose figures head the report (report.py's HEADLINE_SIZE): the
# only one where unitmilter is measured. (The floor is measured at every
# size, its runs alternating with unitpolicy's, so that each ratio compares
# runs seconds apart.)
headline=1000000
case ",$sizes," in *",$headline,"*) ;; *) headline=$(tr ',' '\n' <<<"$sizes" | sort -n | tail -n 1) ;; esac

# lookup_size N: bench_lookup on the directory of N mailboxes, made (or
# reused) in $work/data/N.
# shellcheck disable=SC2317 # called through phase
lookup_size() {
    local parts=floor,policy,socketmap,startup
    [ "$1" != "$headline" ] || parts=$parts,milter
    "$bench_lookup" --mailboxes "$1" --dir "$work/data/$1" --connections 8,64 --seconds "$seconds" \
        --only "$parts" --json >>"$results"
}

dataset=
if [ -x "$bench_lookup" ]; then
    for n in ${sizes//,/ }; do
        mkdir -p "$work/data/$n"
        chmod 0755 "$work/data" "$work/data/$n"
        phase "bench_lookup $n mailboxes" lookup_size "$n"
        [ -s "$work/data/$n/keys" ] && dataset=$work/data/$n
    done
    # the baselines' directory: 1,000,000 mailboxes when measured, else the largest
    [ -s "$work/data/1000000/keys" ] && dataset=$work/data/1000000
else
    note "$bench_lookup is not built: no floor, unitpolicy or unitmilter lookup figures"
    failed=1
fi

if [ -n "$dataset" ]; then
    phase baselines bash "$bench/baselines.sh" --dataset "$dataset" "${baseline_args[@]}" --json "$results"
else
    largest=$(tr ',' '\n' <<<"$sizes" | sort -n | tail -n 1)
    [ "$largest" -le 1000000 ] || largest=1000000
    phase baselines bash "$bench/baselines.sh" --mailboxes "$largest" "${baseline_args[@]}" --json "$results"
fi

phase e2e bash "$bench/e2e.sh" "${e2e_args[@]}" --json "$results"

# ---------------------------------------------------------------- the report

mkdir -p "$charts"
python3 "$bench/report.py" render "$results" --out "$out" --data "$work/plot" --charts "$charts"
# plot CHART: docs/bench/CHART.png from $work/plot/CHART.dat, when
# report.py wrote that file (a chart without figures is left out).
plot() {
    rm -f "$charts/$1.png"
    [ -f "$work/plot/$1.dat" ] || return 0
    gnuplot -e "data='$work/plot/$1.dat'; out='$charts/$1.png'" "$bench/plot/$1.gp" 2> >(grep -v 'no valid points' >&2) ||
        { echo "bench: gnuplot failed for $1.png" >&2; failed=1; }
}
for chart in share throughput latency size e2e startup; do plot "$chart"; done
cp "$results" "$charts/results.jsonl"
elapsed=$((SECONDS - started))
say "wrote $out, the charts and $charts/results.jsonl" \
    "in $((elapsed / 60)) min $((elapsed % 60)) s"
sed -n '/^## Issue 16/,/^## Lookups/p' "$out" | sed -e '/^## Lookups/d'
exit "$failed"
