#!/bin/bash
# The main demo of the README: installs what is missing, builds, loads the
# sample directory into a fresh database, checks it, publishes a replica and
# resolves a few addresses against the replica, as the daemons would.
# BUILD_DIR overrides the build directory (default: build); KEEP_DEMO=1
# keeps the temporary directory with the databases.
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

unitctl="$build/src/ctl/unitctl"
demo=$(mktemp -d "${TMPDIR:-/tmp}/unitpolicy-demo.XXXXXX")
cleanup() {
    if [ "${KEEP_DEMO:-0}" = 1 ]; then
        echo "kept $demo"
    else
        rm -rf "$demo"
    fi
}
trap cleanup EXIT

db="$demo/units.db"
replica="$demo/replica.db"

step() { printf '\n=== %s\n' "$*"; }

step "unitctl --db $db init"
"$unitctl" --db "$db" init
step "unitctl --db $db import examples/sample/sample.csv"
"$unitctl" --db "$db" import examples/sample/sample.csv
step "unitctl --db $db check"
"$unitctl" --db "$db" check
step "unitctl --db $db publish $replica"
"$unitctl" --db "$db" publish "$replica"

# Resolves one address on the replica; exit code 1 (not a deliverable
# mailbox, unknown, foreign, ...) is an answer, not a failure of the demo.
resolve() {
    local label=$1
    shift
    step "$label: unitctl --db REPLICA resolve $*"
    local rc=0
    "$unitctl" --db "$replica" resolve "$@" || rc=$?
    if [ "$rc" -gt 1 ]; then
        echo "quickstart: unitctl resolve $* exited with $rc" >&2
        exit "$rc"
    fi
}

resolve "mailbox on unit1, active" alice@example.com
resolve "case and extension, with --recipient-delimiter +" Bob+news@Example.COM --recipient-delimiter +
resolve "mailbox moving from unit1 to unit2 (held on the MX)" carol@example.com
resolve "mailbox on unit4, which is down (held on the MX)" dave@example.net
resolve "suspended mailbox (4xx)" erin@example.com
resolve "disabled mailbox (5xx)" frank@example.com
resolve "unknown address in a served domain (5xx)" nobody@example.com
resolve "catch-all @example.net" someone@example.net
resolve "alias over two units" sales@example.com
resolve "IDN domain, stored as xn--bcher-kva.example" 'user@bücher.example'
resolve "domain not served here" stranger@elsewhere.org

step "done"
echo "database: $db"
echo "replica:  $replica"
if [ "${KEEP_DEMO:-0}" != 1 ]; then
    echo "(both are removed now; run with KEEP_DEMO=1 to keep them)"
fi
