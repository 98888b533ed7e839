# tests/install/paths.sh: sourced by run.sh and layout.sh. The paths that
# the installed man pages and examples name, against the build that
# installed them; the counters and check helpers they report with are
# tests/checks.sh's. The caller sets these variables:
#   root      the source tree
#   dest      the DESTDIR the build was installed into
#   prefix sbindir bindir datadir mandir
#             the build's install directories, absolute (layout_of sets them)
# shellcheck shell=bash
# The layout is set here for the caller, root and dest by the caller.
# shellcheck disable=SC2034,SC2154

# shellcheck source=tests/checks.sh
source "$root/tests/checks.sh"

programs_of_ours=(unitpolicy unitmilter unitctl)
# The examples that run from the source tree and are not installed.
examples_not_installed=(demo.sh quickstart.sh meson.build)

# layout_of BUILD: sets prefix, sbindir, bindir, datadir, mandir, libdir,
# includedir (absolute) from the build's options.
layout_of() {
    IFS=$'\t' read -r prefix sbindir bindir datadir mandir libdir includedir < <(
        meson introspect --buildoptions "$1" | python3 -c '
import json, os, sys
options = {o["name"]: o["value"] for o in json.load(sys.stdin)}
print("\t".join([options["prefix"]] + [os.path.join(options["prefix"], options[name])
      for name in ("sbindir", "bindir", "datadir", "mandir", "libdir", "includedir")]))
')
    [ -n "${sbindir:-}" ]
}

# as_installed FILE: FILE as the build installs it: Meson's default
# directories replaced by the build's (the rule of tools/install_paths.py,
# written again here so that the test does not take the generator's word).
as_installed() {
    sed -e "s|/usr/local/share/man\b|$mandir|g" -e "s|/usr/local/share\b|$datadir|g" \
        -e "s|/usr/local/sbin\b|$sbindir|g" -e "s|/usr/local/bin\b|$bindir|g" "$1"
}

# The installed pages and examples: "SOURCE INSTALLED" per line, SOURCE
# relative to root, INSTALLED an absolute path in dest.
installed_docs() {
    local page file
    for page in "$root"/man/*.[1-8]; do
        page=${page#"$root/"}
        echo "$page $dest$mandir/man${page##*.}/${page#man/}"
    done
    while IFS= read -r file; do
        echo "examples/$file $dest$datadir/doc/unitpolicy/examples/$file"
    done < <(shipped_examples)
}

# shipped_examples: the files of examples/ that are installed, relative.
shipped_examples() {
    local skip=() name
    for name in "${examples_not_installed[@]}"; do skip+=(-not -path "./$name"); done
    (cd "$root/examples" && find . -type f "${skip[@]}" | sed 's|^\./||' | sort)
}

# check_docs_installed: each page and example installed, the source with
# the build's directories; and no other file in the examples directory.
check_docs_installed() {
    local source installed
    while read -r source installed; do
        if [ ! -f "$installed" ]; then
            not_ok "$source installed" "no ${installed#"$dest"}"
        elif ! cmp -s <(as_installed "$root/$source") "$installed"; then
            not_ok "$source installed" "${installed#"$dest"} is not the source with this build's directories:"
            diff <(as_installed "$root/$source") "$installed" | head -n 10 | sed 's/^/# /'
        else
            ok "$source installed"
        fi
    done < <(installed_docs)
    local examples=$dest$datadir/doc/unitpolicy/examples
    local extra
    extra=$(comm -13 <(shipped_examples) <(cd "$examples" && find . -type f | sed 's|^\./||' | sort))
    check "examples: nothing but the source's" "installs ${extra//$'\n'/ }" test -z "$extra"
}

# check_no_usr_local: unless the prefix is /usr/local, no installed text
# file (pages, examples, headers, .pc) names /usr/local.
check_no_usr_local() {
    if [ "$prefix" = /usr/local ]; then
        return
    fi
    local found
    found=$(grep -rIl /usr/local "$dest" | sed "s|^$dest||")
    check "no installed file says /usr/local (prefix $prefix)" "${found//$'\n'/ } do" test -z "$found"
}

# is_installed BUILD PATH: BUILD installs PATH (absolute, without dest):
# present in dest, or, for an install of some tags only, in BUILD's install
# plan (meson introspect --installed).
is_installed() {
    [ -e "$dest$2" ] && return 0
    meson introspect --installed "$1" | python3 -c '
import json, sys
wanted = sys.argv[1].rstrip("/")
sys.exit(0 if wanted in json.load(sys.stdin).values() else 1)' "$2"
}

# check_programs_named BUILD: every argv= of master.cf and every ExecStart=
# of a unit, in the installed examples and pages, that runs one of our
# programs names it in sbindir, where the build installs it. And every
# path under sbindir, datadir/unitpolicy or datadir/doc/unitpolicy that an
# installed page or example names is installed.
check_programs_named() {
    local build=$1 source installed named path program
    local -A seen=()
    while read -r source installed; do
        [ -f "$installed" ] || continue
        # argv=PATH and ExecStart=PATH: the program Postfix or systemd runs.
        while IFS= read -r path; do
            program=$(basename "$path")
            case " ${programs_of_ours[*]} " in *" $program "*) ;; *) continue ;; esac
            named=1
            if [ "$path" != "$sbindir/$program" ]; then
                not_ok "$source runs $program" "it names $path, not $sbindir/$program"
            else
                seen[$path]=1
            fi
        done < <(grep -ohE '(argv|ExecStart)=/[^ ]+' "$installed" | sed 's/^[^=]*=//')
        # Any path of ours: the programs, the schema, the examples.
        while IFS= read -r path; do
            seen[$path]=1
        done < <(grep -ohE "($sbindir/unit|$datadir/unitpolicy|$datadir/doc/unitpolicy)[A-Za-z0-9_./-]*" "$installed" |
            sed -E 's/[.,]+$//')
    done < <(installed_docs)
    check "the examples run our programs from $sbindir" "no argv= or ExecStart= names one" test -n "${named:-}"
    while IFS= read -r path; do
        check "named and installed: $path" "no such file installed" is_installed "$build" "$path"
    done < <(printf '%s\n' "${!seen[@]}" | sort)
}
