#!/bin/bash
# tests/bench/requests.sh: every request a real Postfix makes to unitpolicy
# for one message, by Postfix process, table and key (issue 16). An MX
# built from examples/mx/main.cf and a unit built from examples/unit/main.cf
# (as the integration tests build them; no unitmilter, which reads the
# replica itself and asks unitpolicy nothing) run under strace(1), which
# records each daemon's writes on the policy and socketmap connections:
# "smtpd policy alice@example.com" (one policy delegation request) or
# "cleanup alias @example.com" (one socketmap request). One message per
# case, each to addresses no earlier case used, so no cache of Postfix's
# hides a request (smtpd's 100 address resolutions, the queue manager's
# last one); only transport_maps' "*" probe, cached 30 s by each
# trivial-rewrite, may or may not fall in a case, and smtpd's resolution
# of the sender, once per smtpd process, is listed but not counted.
#
#   mx:   a mailbox; a mailbox with +extension; an alias to mailboxes on
#         two units; an unknown recipient (rejected at RCPT TO); a foreign
#         domain (relay denied); a mailbox, submitted with sendmail(1)
#   unit: a mailbox of this unit; a mailbox of another unit (back to the
#         MX pool)
#
# Usage: requests.sh [--summary]   (--summary: the totals only)
# Needs root, strace, swaks and smtp-sink (tests/integration/lib.sh).
set -uo pipefail
export IT_TIME_LIMIT=${IT_TIME_LIMIT:-300}
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

summary=no
[ "${1:-}" = --summary ] && summary=yes
command -v strace >/dev/null || it_skip_all "strace not installed"
command -v sendmail >/dev/null || it_skip_all "sendmail not installed"
[ -x "$IT_UNITPOLICY" ] || it_skip_all "$IT_UNITPOLICY not built"
it_init "$@"

# smtpd resolves the sender once per process (its cache holds 100
# addresses): those requests are listed, not counted.
sender_domain=sender.invalid
from=sender@$sender_domain
say() { echo "requests: $*"; }

# ---------------------------------------------------------------- directory

sink_start unit1
sink_start unit2
sink_start mxpool
it_replica_paths
{
    ctl init &&
        ctl domain add example.com &&
        ctl unit add unit1 --nexthop "[127.0.0.1]:${SINK_PORT[unit1]}" &&
        ctl unit add unit2 --nexthop "[127.0.0.1]:${SINK_PORT[unit2]}" &&
        for m in alice bob carol dave erin fred gina hugo; do
            ctl mailbox add "$m@example.com" --unit unit1 || exit 1
        done &&
        for m in ivan judy kate; do
            ctl mailbox add "$m@example.com" --unit unit2 || exit 1
        done &&
        ctl alias add team@example.com carol@example.com judy@example.com
} >/dev/null || it_fatal "unitctl could not build the directory"
it_publish

# up_start NAME DIR OPTION...: unitpolicy on DIR/unitpolicy and DIR/unitmap.
up_start() {
    local name=$1 dir=$2
    shift 2
    it_spawn "$IT_WORK/$name.log" "$IT_UNITPOLICY" --db "$IT_REPLICA" \
        --policy-listen "unix:$dir/unitpolicy" --socketmap-listen "unix:$dir/unitmap" \
        --hold-transport unithold --recipient-delimiter + \
        --socket-mode 0666 --user nobody --log stderr "$@"
    it_wait_until 10 test -S "$dir/unitpolicy" -a -S "$dir/unitmap" ||
        it_fatal "unitpolicy $name did not listen in $dir: $(tail -n 5 "$IT_WORK/$name.log")"
}

# pf_traced NAME: starts instance NAME with its master (and so every
# Postfix daemon) under strace, writing $IT_WORK/NAME.trace.
pf_traced() {
    local name=$1
    it_spawn "$IT_WORK/$name.strace.log" strace -f -qq -e trace=execve,write -e signal=none -s 4096 \
        -o "$IT_WORK/$name.trace" postfix -c "${PF_CONF[$name]}" start-fg
    it_wait_until 60 it_port_open "${PF_PORT[$name]}" || {
        pf_log_tail "$name" 20
        tail -n 5 "$IT_WORK/$name.strace.log" "$IT_WORK/$name.trace" | sed -e 's/^/# /'
        it_fatal "instance $name did not start under strace"
    }
}

# requests NAME FROM-LINE: the requests in NAME's trace after line
# FROM-LINE, one per line: "PROCESS policy RECIPIENT", "PROCESS TABLE KEY",
# or "PROCESS resolve ADDRESS" (a request to trivial-rewrite, which serves
# every Postfix process: the table requests that follow are its own).
requests() {
    awk -v from="$2" '
        function who(pid) { return (pid in name) ? name[pid] : "pid" pid }
        match($0, /execve\("[^"]*"/) {
            prog = substr($0, RSTART + 8, RLENGTH - 9); sub(/.*\//, "", prog); name[$1] = prog
        }
        NR <= from { next }
        / write\([0-9]+, "[0-9]+:(domain|recipient|alias|transportmx|transportunit) / {
            s = $0; sub(/^[0-9]+ +write\([0-9]+, "[0-9]+:/, "", s); sub(/,", [0-9]+.*$/, "", s)
            print who($1), s
        }
        / write\([0-9]+, "request=smtpd_access_policy/ {
            r = $0; sub(/.*\\nrecipient=/, "", r); sub(/\\n.*/, "", r)
            print who($1), "policy", r
        }
        / write\([0-9]+, "request\\0resolve\\0/ {
            r = $0; sub(/.*\\0address\\0/, "", r); sub(/\\0.*/, "", r)
            print who($1), "resolve", r
        }' "$IT_WORK/$1.trace"
}

# Trivial-rewrite, smtpd, cleanup and qmgr started after the trace began:
# the master's children are all traced, and named by their execve.
trace_mark() { wc -l <"$IT_WORK/$1.trace"; }

# case_run NAME LABEL COMMAND...: runs COMMAND (one message), waits until
# NAME's queue is empty and 1 s more, then prints the requests made.
TOTALS=()
case_run() {
    local name=$1 label=$2 mark list policy sockets
    shift 2
    mark=$(trace_mark "$name")
    "$@"
    pf_wait_drained "$name" 30 || say "$label: queue not empty after 30 s"
    sleep 1
    list=$(requests "$name" "$mark")
    policy=$(grep -c ' policy ' <<<"$list")
    sockets=$(grep -Ev ' (policy|resolve) ' <<<"$list" | grep -vc "$sender_domain")
    TOTALS+=("$(printf '%-5s %-40s %d policy + %2d socketmap' "$name" "$label" "$policy" "$sockets")")
    [ "$summary" = yes ] && return
    echo
    say "$name: $label: $policy policy + $sockets socketmap requests"
    [ -n "$list" ] && sed -e 's/^/    /' <<<"$list"
}

smtp_to() { it_smtp "${PF_PORT[$1]}" "$from" "$2" --header "Subject: requests.sh"; }
sendmail_to() { sendmail -C "${PF_CONF[$1]}" -f "$from" "$2" </dev/null; }

# ---------------------------------------------------------------- MX

mxsock=$IT_WORK/mx
mkdir -p "$mxsock"
chmod 0755 "$mxsock"
up_start mx "$mxsock"
pf_new mx
pf_main_fragment mx "$IT_EXAMPLES/mx/main.cf" \
    "s|unix:private/unitpolicy|unix:$mxsock/unitpolicy|g" \
    "s|unix:private/unitmap|unix:$mxsock/unitmap|g" \
    's|^\(non_\)\{0,1\}smtpd_milters = .*|\1smtpd_milters =|'
pf_master_fragment mx "$IT_EXAMPLES/mx/master.cf"
pf_traced mx
# A first message starts smtpd, cleanup, trivial-rewrite and qmgr (and the
# "*" probe of transport_maps); it is not counted.
smtp_to mx hugo@example.com
pf_wait_drained mx 30
sleep 1

case_run mx "mailbox (alice)" smtp_to mx alice@example.com
case_run mx "mailbox +extension (bob+tag)" smtp_to mx bob+tag@example.com
case_run mx "alias to 2 units (team: carol, judy)" smtp_to mx team@example.com
case_run mx "unknown (nobody: 550 at RCPT)" smtp_to mx nobody@example.com
case_run mx "foreign (x@example.org: relay denied)" smtp_to mx x@example.org
case_run mx "mailbox, sendmail(1) (dave)" sendmail_to mx dave@example.com
it_check "mx: every message delivered" 'unit1 has: $(sink_list unit1) unit2 has: $(sink_list unit2)' \
    eval 'sink_has_rcpt unit1 alice@example.com && sink_has_rcpt unit1 bob+tag@example.com &&
        sink_has_rcpt unit1 carol@example.com && sink_has_rcpt unit2 judy@example.com &&
        sink_has_rcpt unit1 dave@example.com'
pf_teardown mx

# ---------------------------------------------------------------- unit

pf_new unit1
pf_main_fragment unit1 "$IT_EXAMPLES/unit/main.cf" 's|^\(non_\)\{0,1\}smtpd_milters = .*|\1smtpd_milters =|'
pf_master_fragment unit1 "$IT_EXAMPLES/unit/master.cf"
pf_traced unit1
# The daemon listens in the instance's queue directory, as on a real unit,
# once Postfix made it; the reload restarts the daemons that probed "*"
# before (still children of the traced master).
up_start unit "${PF_DIR[unit1]}/queue/private" --unit unit1 \
    --local-transport "smtp:[127.0.0.1]:${SINK_PORT[unit1]}" --mx-relay "smtp:[127.0.0.1]:${SINK_PORT[mxpool]}"
pf_reload unit1
sleep 2
smtp_to unit1 hugo@example.com
pf_wait_drained unit1 30
sleep 1
case_run unit1 "own mailbox (erin)" smtp_to unit1 erin@example.com
case_run unit1 "other unit's mailbox (kate: to the MX pool)" smtp_to unit1 kate@example.com
it_check "unit: own mailbox delivered locally, the other to the MX pool" \
    'unit1 has: $(sink_list unit1) mxpool has: $(sink_list mxpool)' \
    eval 'sink_has_rcpt unit1 erin@example.com && sink_has_rcpt mxpool kate@example.com'
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail unit1 20; tail -n 5 "$IT_WORK/unit.log" | sed -e 's/^/# /'; }
pf_teardown unit1

echo
say "per message (first message of each instance not counted):"
printf '    %s\n' "${TOTALS[@]}"
it_summary
