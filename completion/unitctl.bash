# bash completion for unitctl(8)                           -*- shell-script -*-
#
# Completes the commands, their subcommands and options, the values of the
# options that take a fixed set or a file, and the names of units and
# domains, which it asks of the database the command line names
# (`unitctl [--db P] [--config F] unit list`: a read, never audited; quiet,
# and given up after 2 seconds). Mailbox and alias addresses are not
# completed: a primary may hold millions.
#
# Self-contained: it needs none of bash-completion's helpers, so that
# sourcing it in a plain bash works (tests/completion/run.sh does).
# tests/completion/run.sh checks these lists against `unitctl --help`:
# a command or an option added to unitctl must be added here too.

# The command words, and the subcommands of those that have some.
_unitctl_commands='init domain unit mailbox move alias import export check publish sync resolve fleet'
_unitctl_global_options='--db --config --no-progress --help -h --version'

_unitctl_subcommands()
{
    case $1 in
        domain) echo 'add rm list' ;;
        unit) echo 'add set rm list' ;;
        mailbox) echo 'add set rm show list' ;;
        move) echo 'begin finish abort' ;;
        alias) echo 'add rm list' ;;
        fleet) echo 'status wait' ;;
    esac
}

# The options of one command ("unit add", "import"), as its --help lists them.
_unitctl_options()
{
    case $1 in
        'domain list' | 'unit list' | 'alias list' | 'mailbox show' | check) echo '--json' ;;
        'unit add') echo '--nexthop --transport' ;;
        'unit set') echo '--state --nexthop --transport' ;;
        'mailbox add') echo '--unit' ;;
        'mailbox set') echo '--state' ;;
        'mailbox list') echo '--unit --json' ;;
        'move begin') echo '--to --file --from-unit --limit --verbose -v' ;;
        'move finish' | 'move abort') echo '--file --from-unit --limit --verbose -v' ;;
        publish) echo '--rollback --takeover --max-removed --force --mode' ;;
        sync) echo '--ldap --dry-run --verbose -v --max-removed --direct' ;;
        resolve) echo '--recipient-delimiter --fold-local-case --reject-max-age --max-replica-age --json' ;;
        'fleet status') echo '--hosts --timeout --json' ;;
        'fleet wait') echo '--generation --timeout --hosts' ;;
    esac
}

# The first column of `unitctl ... LISTING`, on the database of the command
# line being completed; nothing when it cannot say.
_unitctl_names()
{
    local -a cmd=("${_unitctl_program}")
    [[ -n ${_unitctl_db} ]] && cmd+=(--db "${_unitctl_db}")
    [[ -n ${_unitctl_config} ]] && cmd+=(--config "${_unitctl_config}")
    if type -P timeout >/dev/null; then
        timeout 2 "${cmd[@]}" "$@" 2>/dev/null | cut -f1
    else
        "${cmd[@]}" "$@" 2>/dev/null | cut -f1
    fi
}

# COMPREPLY: the words of the list $1 that start with $2, one a line
# (mapfile: a name is neither split nor globbed).
_unitctl_reply()
{
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

_unitctl_files()
{
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

_unitctl()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local _unitctl_program=${COMP_WORDS[0]} _unitctl_db='' _unitctl_config=''
    COMPREPLY=()

    # The command words among the words before the cursor: the global
    # options and their values, anywhere, are not part of it.
    local -a command=()
    local i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
            --) break ;;
            --db) _unitctl_db=${COMP_WORDS[i + 1]}; ((i++)) ;;
            --config) _unitctl_config=${COMP_WORDS[i + 1]}; ((i++)) ;;
            -*) ;;
            *)
                if ((${#command[@]} == 0)); then
                    command=("$word")
                elif ((${#command[@]} == 1)) && [[ -n $(_unitctl_subcommands "${command[0]}") ]]; then
                    command+=("$word")
                fi
                ;;
        esac
    done
    local name=${command[*]}

    # The value of an option.
    case $prev in
        --db | --config | --file | --hosts)
            _unitctl_files "$cur"
            return
            ;;
        --state)
            case $name in
                'unit set') _unitctl_reply 'active draining down' "$cur" ;;
                'mailbox set') _unitctl_reply 'active suspended disabled' "$cur" ;;
            esac
            return
            ;;
        --unit | --to | --from-unit)
            _unitctl_reply "$(_unitctl_names unit list)" "$cur"
            return
            ;;
        --transport)
            _unitctl_reply 'smtp lmtp' "$cur"
            return
            ;;
        --fold-local-case)
            _unitctl_reply 'yes no' "$cur"
            return
            ;;
        --nexthop | --limit | --max-removed | --mode | --recipient-delimiter | --reject-max-age | \
            --max-replica-age | --timeout | --generation)
            return
            ;;
    esac

    # The command words.
    if ((${#command[@]} == 0)); then
        if [[ $cur == -* ]]; then
            _unitctl_reply "${_unitctl_global_options}" "$cur"
        else
            _unitctl_reply "${_unitctl_commands}" "$cur"
        fi
        return
    fi
    local subcommands
    subcommands=$(_unitctl_subcommands "${command[0]}")
    if [[ -n $subcommands ]] && ((${#command[@]} == 1)); then
        [[ $cur != -* ]] && _unitctl_reply "$subcommands" "$cur"
        return
    fi

    # The command's options, and its operands.
    if [[ $cur == -* ]]; then
        _unitctl_reply "$(_unitctl_options "$name") --help --db --config" "$cur"
        return
    fi
    case $name in
        'unit set' | 'unit rm')
            _unitctl_reply "$(_unitctl_names unit list)" "$cur"
            ;;
        'domain rm')
            _unitctl_reply "$(_unitctl_names domain list)" "$cur"
            ;;
        import | sync | publish)
            _unitctl_files "$cur"
            ;;
    esac
}

complete -F _unitctl unitctl
