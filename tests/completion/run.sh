#!/bin/bash
# run.sh UNITCTL COMPLETION: the bash completion of unitctl stays true to
# the program. Sources COMPLETION in this bash (no bash-completion needed)
# and checks that completing
#   unitctl <TAB>            gives exactly the command words of --help,
#   unitctl -<TAB>           its global options,
#   unitctl FAMILY <TAB>     exactly the subcommands --help lists,
#   unitctl WORDS -<TAB>     exactly the options `unitctl WORDS --help` lists,
# for every command; then the values: states, unit names and domains read
# from the database named by --db, and nothing (and no noise) without one.
# Run by meson test; exit 1 with one line per difference.
set -u
unitctl=$1
completion=$2
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=/dev/null
source "$completion" || { echo "cannot source $completion"; exit 1; }

# complete WORD... : COMPREPLY for the command line WORDS, the cursor on
# the last one, sorted, one a line.
complete_line() {
    COMP_WORDS=("$unitctl" "$@")
    COMP_CWORD=$#
    COMPREPLY=()
    _unitctl 2>"$tmp/stderr"
    if [[ -s $tmp/stderr ]]; then
        echo "completion of '$*' wrote on stderr: $(cat "$tmp/stderr")"
        failures=$((failures + 1))
    fi
    printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort -u
}

expect() {  # WHAT EXPECTED ACTUAL
    if [[ $2 != "$3" ]]; then
        echo "$1: expected [$(tr '\n' ' ' <<<"$2")], completion gives [$(tr '\n' ' ' <<<"$3")]"
        failures=$((failures + 1))
    fi
}

sorted() { tr ' ' '\n' | sed '/^$/d' | sort -u; }

# The synopses of `unitctl --help`: a synopsis ends at column 48, or is the
# whole line when its summary is on the next one.
"$unitctl" --help >"$tmp/help" || { echo "unitctl --help failed"; exit 1; }
synopses=$(awk '
    /^commands:/ { on = 1; next }
    on && /^$/ { exit }
    on && /^  [^ ]/ {
        if (length($0) > 49 && substr($0, 48, 2) == "  ") print substr($0, 3, 46)
        else print substr($0, 3)
    }
' "$tmp/help")
# The command words of a synopsis: its leading lowercase words.
commands=$(while read -r line; do
    words=
    for token in $line; do
        [[ $token =~ ^[a-z]+$ ]] || break
        words+="${words:+ }$token"
    done
    echo "$words"
done <<<"$synopses")
[[ $(wc -l <<<"$commands") -ge 20 ]] || { echo "unitctl --help: too few commands read: $commands"; exit 1; }

families=$(cut -d' ' -f1 <<<"$commands" | sort -u)
expect "unitctl <TAB>" "$families" "$(complete_line '')"
globals=$(awk '/^global options:/ { on = 1; next } on && /^  -/ { print $1; if ($2 == "[") print $3 }' "$tmp/help" |
    sort -u)
expect "unitctl -<TAB>" "$globals" "$(complete_line -)"

for family in $families; do
    subcommands=$(awk -v f="$family" '$1 == f && NF > 1 { print $2 }' <<<"$commands" | sort -u)
    [[ -z $subcommands ]] && continue  # a command of one word: its operand follows
    expect "unitctl $family <TAB>" "$subcommands" "$(complete_line "$family" '')"
done

while read -r words; do
    # shellcheck disable=SC2086
    if ! "$unitctl" $words --help >"$tmp/command-help"; then
        echo "unitctl $words --help failed"
        failures=$((failures + 1))
    fi
    options=$(awk '/^options of / { on = 1; next }
        on && /^  -/ { print $1; if ($2 == "[") print $3 }' "$tmp/command-help" | sort -u)
    # Every command also takes the global options.
    options=$( (echo "$options"; echo --help; echo --db; echo --config) | sed '/^$/d' | sort -u)
    # shellcheck disable=SC2086
    expect "unitctl $words -<TAB>" "$options" "$(complete_line $words -)"
done <<<"$commands"

# Values: fixed sets, and names read from the database.
expect "unit set u --state <TAB>" "$(echo active draining down | sorted)" "$(complete_line unit set u --state '')"
expect "mailbox set a --state <TAB>" "$(echo active disabled suspended | sorted)" \
    "$(complete_line mailbox set a --state '')"
db=$tmp/primary.db
if ! { "$unitctl" --db "$db" init &&
    "$unitctl" --db "$db" domain add my.com &&
    "$unitctl" --db "$db" domain add other.org &&
    "$unitctl" --db "$db" unit add unit12 --nexthop '[unit12.my.com]' &&
    "$unitctl" --db "$db" unit add unit13 --nexthop '[unit13.my.com]'; }; then
    echo "cannot make $db"
    exit 1
fi
expect "--db DB unit rm <TAB>" "$(echo unit12 unit13 | sorted)" "$(complete_line --db "$db" unit rm '')"
expect "mailbox add a --unit unit1<TAB> --db DB" "$(echo unit12 unit13 | sorted)" \
    "$(COMP_WORDS=("$unitctl" mailbox add a --db "$db" --unit unit1)
       COMP_CWORD=7
       _unitctl
       printf '%s\n' "${COMPREPLY[@]}" | sort)"
expect "move begin --db DB --to <TAB>" "$(echo unit12 unit13 | sorted)" \
    "$(complete_line move begin --db "$db" --to '')"
expect "--db DB domain rm o<TAB>" "other.org" "$(complete_line --db "$db" domain rm o)"
expect "--db MISSING unit rm <TAB>" "" "$(complete_line --db "$tmp/missing.db" unit rm '')"
[[ -e $tmp/missing.db ]] && { echo "completion created $tmp/missing.db"; failures=$((failures + 1)); }
expect "import <TAB> (files)" "$(cd "$tmp" && compgen -f -- pri | sort)" "$(cd "$tmp" && complete_line import pri)"

if ((failures > 0)); then
    echo "$failures difference(s) between unitctl and its bash completion"
    exit 1
fi
echo "bash completion agrees with unitctl --help"
