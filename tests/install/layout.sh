#!/bin/bash
# tests/install/layout.sh: the paths in the installed man pages and
# examples, for three layouts of the build:
#   default                     Meson's /usr/local, as `meson setup` gives it
#   --prefix=/usr               as a distribution builds it (debian/rules)
#   --prefix=/opt/unitpolicy --sbindir=bin --mandir=man
#                               every directory the pages name moved
# Each is a fresh `meson setup` in a temporary directory and
# `meson install --tags doc,man --destdir`: the pages and examples only, so
# nothing is compiled (about 10 s a layout). Checks, per layout:
#   - every page and example installed, the source with the layout's
#     directories in place of /usr/local/... (and nothing else in examples/);
#   - no installed file says /usr/local, unless the prefix is /usr/local,
#     where master.cf still says argv=/usr/local/sbin/unitpolicy;
#   - master.cf's argv= and the units' ExecStart= name our programs in the
#     layout's sbindir, and every path of ours an installed file names is
#     one the build installs (in the DESTDIR, or for the programs, which are
#     not built here, in `meson introspect --installed`).
# tests/install/run.sh checks a full install of a build, programs included.
# Prints "ok NAME" or "not ok NAME: why" per check, then
#   layout: P passed, F failed
# and exits non-zero when anything failed. Needs no root. A meson test.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# shellcheck source=tests/install/paths.sh
source "$here/paths.sh"

tmp=$(mktemp -d /tmp/unitpolicy-layout.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

layouts=(
    ""
    "--prefix=/usr"
    "--prefix=/opt/unitpolicy --sbindir=bin --mandir=man"
)

# The setups are independent and mostly wait on dependency lookups: in parallel.
setup_pids=()
for i in "${!layouts[@]}"; do
    # shellcheck disable=SC2086 # the options are words
    meson setup "$tmp/build$i" "$root" -Dtests=disabled ${layouts[i]} >"$tmp/setup$i.log" 2>&1 &
    setup_pids+=("$!")
done

for i in "${!layouts[@]}"; do
    build=$tmp/build$i
    dest=$tmp/root$i
    name=${layouts[i]:-default}
    echo "# layout: $name"
    if ! wait "${setup_pids[i]}"; then
        not_ok "$name: meson setup" "failed:"
        tail -n 20 "$tmp/setup$i.log" | sed 's/^/# /'
        continue
    fi
    if ! layout_of "$build"; then
        not_ok "$name: meson introspect" "no install directories"
        continue
    fi
    if ! meson install -C "$build" --no-rebuild --tags doc,man --destdir "$dest" >"$tmp/install$i.log" 2>&1; then
        not_ok "$name: meson install --tags doc,man" "failed:"
        tail -n 20 "$tmp/install$i.log" | sed 's/^/# /'
        continue
    fi
    check_docs_installed
    check_no_usr_local
    check_programs_named "$build"
    master=$dest$datadir/doc/unitpolicy/examples/mx/master.cf
    check "$name: mx/master.cf says argv=$sbindir/unitpolicy" "it says $(grep -o 'argv=[^ ]*' "$master")" \
        grep -q "argv=$sbindir/unitpolicy " "$master"
done

echo "layout: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
