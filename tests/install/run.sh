#!/bin/bash
# tests/install/run.sh: the install layout, as a package or an administrator
# gets it. Runs `meson install --destdir` of the build into a temporary tree
# (it builds only what is out of date), then checks:
#   - the programs in SBINDIR, runnable, with the project's version;
#   - every man/ page in MANDIR/manN and the examples in
#     DATADIR/doc/unitpolicy/examples, each the source with the build's
#     directories in place of /usr/local/... (tools/install_paths.py), and
#     the schema and the migrations in DATADIR/unitpolicy, identical;
#   - no installed text file says /usr/local unless the prefix is /usr/local;
#     master.cf's argv= and the units' ExecStart= name the programs in
#     SBINDIR, and every path of ours a page or example names is installed
#     (tests/install/paths.sh; layout.sh checks the same for other prefixes
#     without compiling); unitctl's bash completion, identical to the source;
#   - the systemd units: their programs installed where ExecStart says, every
#     option they pass known to the program's --help, the reload signal the
#     one each program handles, the writable and read-only paths those of
#     the example configuration, and `systemd-analyze verify` where it exists;
#   - libunit's public headers (each compiles alone, none includes a header
#     that is not installed), the library and unitpolicy.pc;
#   - a program compiled from tests/install/resolve.cpp with nothing but
#     pkg-config's flags for the installed tree, run on a replica that the
#     installed unitctl makes from the installed sample data: its answers
#     (mailbox, extension, move, alias, disabled, unknown, foreign, and a
#     tempfail for a missing replica) against the sample's, and against the
#     installed `unitpolicy --query` for the same addresses.
# Prints "ok NAME" or "not ok NAME: why" per check, then
#   install: P passed, F failed
# and exits non-zero when anything failed. Needs no root.
# BUILD_DIR selects the build (default build); CXX the compiler (default c++).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
cxx=${CXX:-c++}

finish() {
    echo "install: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
# shellcheck source=tests/install/paths.sh
source "$here/paths.sh"

if [ ! -d "$build/meson-private" ]; then
    not_ok setup "$build is not a configured Meson build directory"
    finish
fi

tmp=$(mktemp -d /tmp/unitpolicy-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

# ------------------------------------------------------------ the layout

# The install directories (absolute), the version and the kind of library.
if ! layout_of "$build"; then
    not_ok setup "meson introspect gave no install directories for $build"
    finish
fi
IFS=$'\t' read -r version default_library < <(
    meson introspect --buildoptions --projectinfo "$build" | python3 -c '
import json, sys
info = json.load(sys.stdin)
options = {o["name"]: o["value"] for o in info["buildoptions"]}
print(info["projectinfo"]["version"] + "\t" + options["default_library"])
')
docdir=$datadir/doc/unitpolicy
examples=$dest$docdir/examples

if meson install -C "$build" --destdir "$dest" >"$tmp/install.log" 2>&1; then
    ok "meson install --destdir"
else
    not_ok "meson install --destdir" "failed:"
    sed 's/^/# /' "$tmp/install.log" | tail -n 20
    finish
fi

# With -Ddefault_library=shared the programs need the installed libunit.
export LD_LIBRARY_PATH=$dest$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

for program in unitpolicy unitmilter unitctl; do
    path=$dest$sbindir/$program
    if [ ! -x "$path" ]; then
        not_ok "sbin/$program" "$sbindir/$program is not installed as an executable"
    elif [ "$("$path" --version 2>&1)" != "$program $version" ]; then
        not_ok "sbin/$program" "--version says \"$("$path" --version 2>&1)\", not \"$program $version\""
    else
        ok "sbin/$program"
    fi
done

# same SOURCE INSTALLED: the installed file is the source file.
# shellcheck disable=SC2317 # called through check
same() { [ -f "$2" ] && cmp -s "$1" "$2"; }

check_docs_installed
check_no_usr_local
check_programs_named "$build"

# Under bash-completion's completionsdir, or DATADIR/bash-completion/completions.
completion=$(find "$dest" -path '*/bash-completion/completions/unitctl' -type f | head -n 1)
check "bash-completion/completions/unitctl" "missing or different from completion/unitctl.bash" \
    same "$root/completion/unitctl.bash" "${completion:-/nonexistent}"

check "unitpolicy/schema.sql" "missing or different" same "$root/policy/schema.sql" "$dest$datadir/unitpolicy/schema.sql"
for migration in "$root"/policy/migrations/*.sql; do
    name=$(basename "$migration")
    check "unitpolicy/migrations/$name" "missing or different" same "$migration" "$dest$datadir/unitpolicy/migrations/$name"
done

# ------------------------------------------------------------ the systemd units

# The value of KEY= in a unit file (the last one, as systemd reads it).
unit_value() { sed -n -E "s/^$2=//p" "$1" | tail -n 1; }

# check_unit PROGRAM SIGNAL: the installed unit of PROGRAM against the
# installed program and the example configuration.
check_unit() {
    local program=$1 signal=$2
    local unit=$examples/systemd/$program.service
    local name=systemd/$program.service
    if [ ! -f "$unit" ]; then
        not_ok "$name" "not installed in $docdir/examples/systemd"
        return
    fi
    local exec
    read -r -a exec <<<"$(unit_value "$unit" ExecStart)"
    local problems=()
    [ "${exec[0]}" = "$sbindir/$program" ] || problems+=("ExecStart runs ${exec[0]}, not $sbindir/$program")
    [ -x "$dest${exec[0]}" ] || problems+=("ExecStart's ${exec[0]} is not installed")
    local help squeezed
    help=$("$dest$sbindir/$program" --help 2>&1)
    # --help wraps its lines anywhere, even inside a path.
    squeezed=$(tr -d ' \n' <<<"$help")
    local word
    for word in "${exec[@]:1}"; do
        case $word in
        --*) grep -q -- "$word\b" <<<"$help" || problems+=("$program --help does not know $word") ;;
        esac
    done
    # The configuration file it names is the program's default one.
    local config=""
    for ((i = 1; i < ${#exec[@]}; i++)); do [ "${exec[i]}" = --config ] && config=${exec[i + 1]}; done
    grep -q -F "default${config}whenitexists" <<<"$squeezed" ||
        problems+=("--config $config is not the file $program reads by default")
    [ "$(unit_value "$unit" ExecReload)" = "/bin/kill -$signal \$MAINPID" ] ||
        problems+=("ExecReload does not send SIG$signal")
    grep -q "SIG$signal" "$root/man/$program.8" ||
        problems+=("man/$program.8 does not say what SIG$signal does")
    [ "$(unit_value "$unit" Type)" = simple ] || problems+=("Type is not simple")
    # Writable: exactly the directories of the example's unix sockets, then
    # its cache_directory (the record of checked replicas).
    local writable
    writable=$(
        sed -n -E 's/^(policy_listen|socketmap_listen|listen) *= *unix:(.*)$/\2/p' "$examples/$program.conf" |
            xargs -n 1 dirname | sort -u
        sed -n -E 's/^cache_directory *= *(.+)$/\1/p' "$examples/$program.conf"
    )
    writable=$(sed 's/^/-/' <<<"$writable" | tr '\n' ' ' | sed 's/ $//')
    [ "$(unit_value "$unit" ReadWritePaths)" = "$writable" ] ||
        problems+=("ReadWritePaths is not the example's socket and cache directories ($writable)")
    # Read-only: the directory of the default database.
    local db
    db=$(grep -o 'default:/[^)]*\.db)' <<<"$squeezed" | head -n 1 | sed -e 's/^default://' -e 's/)$//')
    [ "$(unit_value "$unit" ReadOnlyPaths)" = "-$(dirname "$db")" ] ||
        problems+=("ReadOnlyPaths is not the default database's directory ($(dirname "$db"))")
    [ "$(unit_value "$unit" ProtectSystem)" = strict ] || problems+=("ProtectSystem is not strict")
    [ "$(unit_value "$unit" NoNewPrivileges)" = yes ] || problems+=("NoNewPrivileges is not yes")
    [ "$(unit_value "$unit" User)" = "" ] || problems+=("User= is set: private/ is writable by postfix alone")
    if [ ${#problems[@]} -eq 0 ]; then ok "$name"; else not_ok "$name" "$(IFS=';'; echo "${problems[*]}")"; fi
}
check_unit unitpolicy HUP
check_unit unitmilter USR1

# The control socket of unitpolicy is in its RuntimeDirectory.
unit=$examples/systemd/unitpolicy.service
control=$(unit_value "$unit" ExecStart | sed -n -E 's/.*--control ([^ ]+).*/\1/p')
check "systemd/unitpolicy.service control socket" \
    "--control \"$control\" is not in /run/\$RuntimeDirectory" \
    test "$(dirname "$control")" = "/run/$(unit_value "$unit" RuntimeDirectory)"

# systemd's own checker (it needs no running systemd), on copies of the
# installed units whose programs are those of the installed tree, with the
# installed man pages for their Documentation=. It exits 0 even on unknown
# keys, which it only prints: anything printed is a failure.
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$tmp/verify"
    for program in unitpolicy unitmilter; do
        sed "s|$sbindir/|$dest$sbindir/|g" "$examples/systemd/$program.service" >"$tmp/verify/$program.service"
        if MANPATH=$dest$mandir systemd-analyze verify "$tmp/verify/$program.service" >"$tmp/verify.log" 2>&1 &&
            [ ! -s "$tmp/verify.log" ]; then
            ok "systemd-analyze verify $program.service"
        else
            not_ok "systemd-analyze verify $program.service" "$(tr '\n' ' ' <"$tmp/verify.log")"
        fi
    done
else
    echo "# systemd-analyze is not installed: systemd's own check skipped"
fi

# ------------------------------------------------------------ libunit for a provider's code

public=(address.hpp directory.hpp export.hpp records.hpp resolver.hpp result.hpp values.hpp)
installed=$(cd "$dest$includedir/unitpolicy/unit" 2>/dev/null && echo *)
check "include/unitpolicy/unit" "installs \"$installed\", not \"${public[*]}\"" \
    test "$installed" = "${public[*]}"

export PKG_CONFIG_PATH=$dest$libdir/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
check "pkgconfig/unitpolicy.pc" "pkg-config finds no unitpolicy $version in $libdir/pkgconfig" \
    test "$(pkg-config --modversion unitpolicy 2>&1)" = "$version"
# A static libunit needs its dependencies on every link: they are in
# Requires. A shared one needs them only for a --static link: Requires.private.
case $default_library in
static) requires_kind=requires ;;
*) requires_kind="requires-private" ;;
esac
requires=$(pkg-config "--print-$requires_kind" unitpolicy 2>&1)
for needed in sqlite3 fmt libidn2; do
    check "unitpolicy.pc $requires_kind $needed" "not in its ${requires_kind/-/.}: ${requires//$'\n'/ }" \
        grep -q "^$needed\b" <<<"$requires"
done
cflags=$(pkg-config --cflags unitpolicy)
libs=$(pkg-config --libs unitpolicy)
check "unitpolicy.pc flags" "cflags \"$cflags\" and libs \"$libs\" do not point into the installed tree" \
    grep -q -- "-I$dest$includedir/unitpolicy .*-L$dest$libdir -lunitpolicy-unit\b" <<<"$cflags $libs"
case $default_library in
static) library=$dest$libdir/libunitpolicy-unit.a ;;
*) library=$dest$libdir/libunitpolicy-unit.so ;;
esac
check "lib/$(basename "$library")" "not installed in $libdir" test -f "$library"

# Each public header compiles alone, with the installed headers only.
for header in "${public[@]}"; do
    echo "#include <unit/$header>" >"$tmp/alone.cpp"
    # shellcheck disable=SC2086 # the flags are words
    if "$cxx" -std=c++20 -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/alone.cpp" >"$tmp/cc.log" 2>&1; then
        ok "unit/$header compiles alone"
    else
        not_ok "unit/$header compiles alone" "$(head -n 5 "$tmp/cc.log" | tr '\n' ' ')"
    fi
done

# A provider's program, with the flags of the .pc file and nothing else.
# shellcheck disable=SC2086 # the flags are words
if "$cxx" -std=c++20 -Wall -Wextra -Werror $cflags -o "$tmp/resolve" "$here/resolve.cpp" $libs \
    >"$tmp/cc.log" 2>&1; then
    ok "resolve.cpp builds with pkg-config --cflags --libs unitpolicy"
else
    not_ok "resolve.cpp builds with pkg-config --cflags --libs unitpolicy" "$(head -n 10 "$tmp/cc.log" | tr '\n' ' ')"
    finish
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# A replica from the installed sample, made by the installed unitctl.
unitctl=$dest$sbindir/unitctl
{
    "$unitctl" --db "$tmp/primary.db" init &&
        "$unitctl" --db "$tmp/primary.db" import "$examples/sample/sample.csv" &&
        "$unitctl" --db "$tmp/primary.db" publish "$tmp/replica.db"
} >"$tmp/setup.log" 2>&1
generation=$(sed -n -E 's/^published .* generation ([0-9]+) .*/\1/p' "$tmp/setup.log")
if [ -z "$generation" ]; then
    not_ok "replica from the installed sample" "$(tr '\n' ' ' <"$tmp/setup.log")"
    finish
fi
ok "replica from the installed sample (generation $generation)"

addresses=(alice@example.com Alice+Tag@Example.COM carol@example.com sales@example.com frank@example.com
    nobody@example.com someone@example.org)
expected="alice@example.com mailbox unit1 smtp:[unit1.example.com] active $generation
Alice+Tag@Example.COM mailbox unit1 smtp:[unit1.example.com] active $generation
carol@example.com mailbox unit1 smtp:[unit1.example.com] moving $generation
sales@example.com alias alice@example.com,bob@example.com - - $generation
frank@example.com disabled unit1 smtp:[unit1.example.com] disabled $generation
nobody@example.com unknown - - - $generation
someone@example.org foreign - - - $generation"
answers=$("$tmp/resolve" "$tmp/replica.db" + "${addresses[@]}" 2>&1)
if [ "$answers" = "$expected" ]; then
    ok "resolve: the sample's answers"
else
    not_ok "resolve: the sample's answers" "got:"
    diff <(echo "$expected") <(echo "$answers") | sed 's/^/# /'
fi

# A missing replica is a temporary failure, never "unknown".
answer=$("$tmp/resolve" "$tmp/missing.db" + alice@example.com 2>&1)
check "resolve: a missing replica is a tempfail" "got \"$answer\"" \
    test "$answer" = "alice@example.com tempfail - - - -1"

# The daemon's resolution of the same addresses (unitpolicy --query prints
# the outcome as "outcome: NAME"): the program answers as the daemon does.
disagree=()
for address in "${addresses[@]}"; do
    mine=$(awk -v a="$address" '$1 == a { print $2; exit }' <<<"$answers")
    theirs=$("$dest$sbindir/unitpolicy" --config /dev/null --db "$tmp/replica.db" --recipient-delimiter + \
        --query "$address" 2>&1 | sed -n -E 's/^ *outcome:? +([a-z]+).*/\1/p' | head -n 1)
    [ "$mine" = "$theirs" ] || disagree+=("$address: $mine here, ${theirs:-nothing} from unitpolicy --query")
done
check "resolve answers as unitpolicy --query" "$(IFS=';'; echo "${disagree[*]}")" test ${#disagree[@]} -eq 0

finish
