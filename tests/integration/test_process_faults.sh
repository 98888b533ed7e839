#!/bin/bash
# test_process_faults.sh: the daemons die under load, and no mail is lost
# (DESIGN §9, faults). smtp-source hands messages to an "outside" Postfix
# instance, the Internet sender, which relays them to an MX instance built
# from examples/mx/ (unitpolicy's policy service and socketmap tables,
# unitmilter), which delivers them to three smtp-sink units. Every message
# has its own recipient (smtp-source -N), each one a mailbox of the
# directory, so each must arrive exactly once, at its own unit.
#
#   policy kill  unitpolicy is killed with SIGKILL while mail flows and
#                started again a few seconds later. Meanwhile the MX answers
#                4xx at RCPT: 451 4.3.0 to the outside instance (the
#                relay_domains socketmap lookup of reject_unauth_destination
#                fails first), 451 4.3.5 to a client in mynetworks (the
#                policy service is unreachable); the outside instance keeps
#                the mail deferred and retries. Mail the MX accepted before
#                the kill and routes after it stays deferred in the MX's
#                own queue (address resolver failure: the relay_domains
#                and transport_maps lookups fail), not bounced.
#   milter kill  unitmilter is killed with SIGKILL and started again: the
#                MX answers 451 4.7.1 (milter_default_action = tempfail) at
#                end of data to a message in progress, and at MAIL FROM in
#                every session opened while it is down and in every session
#                whose filter connection broke, for the rest of the session,
#                even after the filter is back: the outside instance retries.
#                No message at any unit lacks the filter's route header.
#
# After each phase both queues drain and every message is at its unit's
# sink exactly once; nothing anywhere is bounced or refused with a 5xx.
# The figures (messages, arrivals per sink, deferrals, 4xx, drain time) are
# printed as "# " lines. MESSAGES (default 2000) is the number of messages
# per phase; BUILD_DIR, UNITPOLICY and UNITMILTER select the binaries.
set -uo pipefail
IT_TIME_LIMIT=${IT_TIME_LIMIT:-300}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IT_UNITPOLICY=${UNITPOLICY:-$IT_UNITPOLICY}
IT_UNITMILTER=${UNITMILTER:-$IT_BUILD/src/milter/unitmilter}
[ -x "$IT_UNITPOLICY" ] || it_skip_all "$IT_UNITPOLICY not built yet"
[ -x "$IT_UNITMILTER" ] || it_skip_all "$IT_UNITMILTER not built yet"
command -v smtp-source >/dev/null 2>&1 || it_skip_all "smtp-source not installed (postfix)"
it_init "$@"
started=$(date +%s.%3N)

messages=${MESSAGES:-2000}
units=(unit1 unit2 unit3)
from=sender@sender.invalid
outage=4          # seconds a daemon stays dead
drain_limit=60    # seconds for a phase's mail to arrive after the restart

# --------------------------------------------------------------- helpers

# now: seconds since the epoch, with milliseconds.
now() { date +%s.%3N; }

# elapsed SINCE: seconds since SINCE (a now), one decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# mailboxes TAG: "ADDRESS UNIT" for mailboxes 1TAG@example.com ..
# ${messages}TAG@example.com (smtp-source -N -t TAG@example.com numbers
# its recipients so), spread over the units in turn.
mailboxes() {
    awk -v tag="$1" -v n="$messages" -v units="${units[*]}" 'BEGIN {
        k = split(units, unit, " ")
        for (i = 1; i <= n; i++) print i tag "@example.com", unit[i % k + 1]
    }'
}

# directory_csv TAG...: unitctl import lines for the units (on their
# sinks) and the mailboxes of each TAG.
directory_csv() {
    local tag u
    echo "kind,address,value,state"
    echo "domain,example.com,,"
    for u in "${units[@]}"; do
        echo "unit,$u,smtp:[127.0.0.1]:${SINK_PORT[$u]},active"
    done
    for tag in "$@"; do
        mailboxes "$tag" | awk '{ print "mailbox," $1 "," $2 ",active" }'
    done
}

# up_start: unitpolicy on $IT_WORK/mx/unitpolicy and $IT_WORK/mx/unitmap,
# logging to $IT_WORK/unitpolicy.N.log (N counts the starts); waits (10 s)
# until its socketmap answers. The socket files a killed daemon left behind
# are not removed first: the daemon replaces them itself.
UP_STARTS=0
UP_PID=
up_start() {
    UP_STARTS=$((UP_STARTS + 1))
    it_spawn "$IT_WORK/unitpolicy.$UP_STARTS.log" "$IT_UNITPOLICY" --db "$IT_REPLICA" \
        --policy-listen "unix:$IT_WORK/mx/unitpolicy" --socketmap-listen "unix:$IT_WORK/mx/unitmap" \
        --hold-transport unithold --recipient-delimiter + \
        --socket-mode 0666 --user nobody --log stderr
    UP_PID=$IT_LAST_PID
    if ! it_wait_until 10 up_answers; then
        it_diag "unitpolicy log:"
        tail -n 20 "$IT_WORK/unitpolicy.$UP_STARTS.log" | sed -e 's/^/#   /'
        it_fatal "unitpolicy did not answer on $IT_WORK/mx/unitmap"
    fi
}

# up_answers: the socketmap answers a lookup for an existing mailbox.
up_answers() {
    [ "$(timeout 5 postmap -q "1p@example.com" "socketmap:unix:$IT_WORK/mx/unitmap:recipient" 2>/dev/null)" \
        = "1p@example.com" ]
}

# um_start: unitmilter (examples/unitmilter.conf, listening on
# $IT_WORK/mx/unitmilter, nobody trusted), logging to
# $IT_WORK/unitmilter.N.log; waits (10 s) until it says it serves.
UM_STARTS=0
UM_PID=
um_start() {
    UM_STARTS=$((UM_STARTS + 1))
    local log=$IT_WORK/unitmilter.$UM_STARTS.log
    it_spawn "$log" "$IT_UNITMILTER" --config "$IT_WORK/mx/unitmilter.conf" --log stderr
    UM_PID=$IT_LAST_PID
    if ! it_wait_until 10 grep -q 'starting: listen ' "$log"; then
        it_diag "unitmilter log:"
        tail -n 20 "$log" | sed -e 's/^/#   /'
        it_fatal "unitmilter did not start"
    fi
}

# unix_refuses PATH: PATH is a socket file and nobody accepts on it (a
# client is refused at once, as Postfix's are).
unix_refuses() {
    local out
    [ -S "$1" ] || return 1
    out=$(timeout 10 smtp-source "unix:$1" 2>&1)
    [[ $out == *"Connection refused"* ]]
}

# delivered: messages received by all the sinks together.
delivered() {
    local u total=0
    for u in "${units[@]}"; do total=$((total + $(sink_count "$u"))); done
    echo "$total"
}

# delivered_at_least COUNT
delivered_at_least() { [ "$(delivered)" -ge "$1" ]; }

# log_count NAME MARK ERE: maillog lines of instance NAME after MARK
# matching ERE.
log_count() { pf_log_since "$1" "$2" | grep -cE -- "$3"; }

# reject_codes NAME MARK: the 4xx/5xx replies of instance NAME after MARK,
# counted per stage and code, on one line ("12 x RCPT 451 4.3.5, ...").
reject_codes() {
    pf_log_since "$1" "$2" \
        | sed -n -E 's/.*(NOQUEUE: |: )(milter-)?reject: ([A-Z-]+) from [^:]*: ([0-9]{3} )?([0-9]\.[0-9]+\.[0-9]+) .*/\3 \4\5/p' \
        | sort | uniq -c | awk '{ n = $1; $1 = ""; printf "%s%s x%s", (NR > 1 ? ", " : ""), n, $0 }'
}

# deferred_figures NAME MARK: the deferrals in instance NAME's maillog
# after MARK: "M messages, A attempts (N x reason, ...)", the three most
# frequent reasons (the reply, without the recipient).
deferred_figures() {
    local lines
    lines=$(pf_log_since "$1" "$2" | grep -E 'status=deferred')
    if [ -z "$lines" ]; then
        echo "none"
        return
    fi
    printf '%s messages, %s attempts (%s)\n' \
        "$(printf '%s\n' "$lines" | sed -E 's/.*: ([0-9A-F]+): to=.*/\1/' | sort -u | wc -l)" \
        "$(printf '%s\n' "$lines" | wc -l)" \
        "$(printf '%s\n' "$lines" \
            | sed -E 's/.*status=deferred \((.*)\)$/\1/; s/^host [^ ]* said: //; s/ \(in reply to .*//; s/<[^>]*>: //' \
            | sort | uniq -c | sort -rn | head -3 \
            | awk '{ n = $1; $1 = ""; printf "%s%s x%s", (NR > 1 ? ", " : ""), n, $0 }')"
}

# expected_rcpts TAG UNIT: the recipients of phase TAG that live on UNIT.
expected_rcpts() { mailboxes "$1" | awk -v unit="$2" '$2 == unit { print $1 }'; }

# both_drained: the outside and the MX queues are empty.
both_drained() { pf_queue_is outside 0 && pf_queue_is mx 0; }

# --------------------------------------------------------------- directory

for u in "${units[@]}"; do sink_start "$u"; done
it_replica_paths
mkdir -p "$IT_WORK/mx"
chmod 0755 "$IT_WORK/mx"
directory_csv p m >"$IT_WORK/directory.csv"
{ ctl init && ctl import "$IT_WORK/directory.csv"; } >/dev/null || it_fatal "unitctl could not import the test directory"
it_publish

# --------------------------------------------------------------- the MX

up_start
sed -e "s|^listen = .*|listen = unix:$IT_WORK/mx/unitmilter|" \
    -e "s|^trusted_networks = .*|trusted_networks =|" \
    -e "s|^user = .*|user = nobody|" \
    -e "s|^socket_mode = .*|socket_mode = 0666|" -e "/^socket_group = /d" \
    "$IT_EXAMPLES/unitmilter.conf" >"$IT_WORK/mx/unitmilter.conf" || it_fatal "cannot write unitmilter.conf"
printf '%s\n' "db = $IT_REPLICA" "hostname = mx.it.invalid" >>"$IT_WORK/mx/unitmilter.conf"
um_start

pf_new mx
pf_main_fragment mx "$IT_EXAMPLES/mx/main.cf" \
    "s|unix:private/unitpolicy|unix:$IT_WORK/mx/unitpolicy|g" \
    "s|unix:private/unitmap|unix:$IT_WORK/mx/unitmap|g" \
    "s|unix:private/unitmilter|unix:$IT_WORK/mx/unitmilter|g"
pf_master_fragment mx "$IT_EXAMPLES/mx/master.cf"
# Mail the MX itself defers (a transport_maps lookup error) is retried
# within seconds, not after the default 300 s. This MX serves no local
# domain: its postmaster's notices (notify_classes: a table that fails is a
# "software" error) are discarded, not bounced, and counted.
pf_main mx "queue_run_delay = 2s" "minimal_backoff_time = 2s" "maximal_backoff_time = 4s" \
    "default_transport = discard:postmaster-notice"
it_expect_eq "mx: the example's policy and milter settings" \
    "check_policy_service unix:$IT_WORK/mx/unitpolicy|451 4.3.5 Recipient check temporarily unavailable|unix:$IT_WORK/mx/unitmilter|tempfail" \
    "$(postconf -c "${PF_CONF[mx]}" -h smtpd_recipient_restrictions smtpd_policy_service_default_action \
        smtpd_milters milter_default_action | paste -sd '|')"
pf_start mx
it_diag "mx: smtpd_policy_service_$(postconf -c "${PF_CONF[mx]}" smtpd_policy_service_try_limit \
    smtpd_policy_service_retry_delay smtpd_policy_service_timeout | sed -e 's/^smtpd_policy_service_//' \
    | paste -sd ',' | sed -e 's/,/, /g')"

# --------------------------------------------------------------- the Internet

# The outside instance accepts anything from smtp-source (mynetworks) and
# relays it to the MX from 127.0.0.2, a client the MX does not trust. It
# keeps what the MX defers and retries every few seconds.
pf_new outside
pf_main outside "default_transport = smtp" "relayhost = [127.0.0.1]:${PF_PORT[mx]}" \
    "smtp_bind_address = 127.0.0.2" \
    "queue_run_delay = 2s" "minimal_backoff_time = 2s" "maximal_backoff_time = 4s"
pf_start outside
it_diag "set-up: $(elapsed "$started") s"

# --------------------------------------------------------------- one phase

# phase TAG LABEL KILL RESTART: sends $messages messages to
# 1TAG@example.com .. through the outside instance; once a tenth of them
# have arrived, runs KILL, waits $outage s, runs RESTART, then waits until
# everything has arrived and both queues are empty. Asserts and prints the
# figures.
phase() {
    local tag=$1 label=$2 kill=$3 restart=$4
    local base out_mark mx_mark kill_out kill_mx restart_out restart_mx
    local t0 t_kill t_restart t_done before_kill pending_at_kill src_pid src_status

    base=$(delivered)
    out_mark=$(pf_log_mark outside)
    mx_mark=$(pf_log_mark mx)
    PHASE_MX_MARK=$mx_mark
    t0=$(now)
    it_spawn "$IT_WORK/smtp-source.$tag.log" smtp-source -4 -N -s 8 -m "$messages" \
        -f "$from" -t "$tag@example.com" -S "$label" "127.0.0.1:${PF_PORT[outside]}"
    src_pid=$IT_LAST_PID

    # The kill comes while mail flows: some has arrived, most has not.
    if ! it_wait_until 60 delivered_at_least $((base + messages / 10)); then
        it_not_ok "$label: mail flows before the kill" "$(($(delivered) - base)) of $messages arrived in 60 s"
        return
    fi
    before_kill=$(($(delivered) - base))
    pending_at_kill=$((messages - before_kill))
    kill_out=$(pf_log_mark outside)
    kill_mx=$(pf_log_mark mx)
    t_kill=$(now)
    "$kill"
    sleep "$outage"
    restart_out=$(pf_log_mark outside)
    restart_mx=$(pf_log_mark mx)
    "$restart"
    t_restart=$(now)

    it_reap "$src_pid"
    src_status=$?
    it_expect_eq "$label: the outside instance accepted all $messages messages (smtp-source status)" 0 "$src_status"
    it_check "$label: all $messages messages arrive" \
        '$(($(delivered) - base)) of $messages arrived within $drain_limit s of the restart' \
        it_wait_until "$drain_limit" delivered_at_least $((base + messages))
    t_done=$(now)
    it_check "$label: both queues drain" \
        'outside holds $(pf_queue_count outside), mx $(pf_queue_count mx)' \
        it_wait_until 20 both_drained

    local out_deferred out_deferred_outage mx_4xx_outage codes
    out_deferred=$(log_count outside "$out_mark" 'status=deferred')
    out_deferred_outage=$(pf_log_since outside "$kill_out" | head -n $((restart_out - kill_out)) \
        | grep -cE 'status=deferred')
    mx_4xx_outage=$(pf_log_since mx "$kill_mx" | head -n $((restart_mx - kill_mx)) \
        | grep -cE 'reject: [A-Z-]+ from [^:]*: (4[0-9]{2} )?4\.[0-9]+\.[0-9]+ ')
    codes=$(reject_codes mx "$mx_mark")
    it_check "$label: the outside instance saw deferrals during the outage" \
        'none of its $(log_count outside "$out_mark" "status=") delivery attempts was deferred' \
        eval '[ "$out_deferred_outage" -gt 0 ]'
    it_check "$label: the MX answered 4xx during the outage" 'rejects: $codes' \
        eval '[ "$mx_4xx_outage" -gt 0 ]'
    it_check "$label: the MX answered no 5xx" 'rejects: $codes' \
        it_not eval 'printf "%s\n" "$codes" | grep -E "x [A-Z-]+ (5[0-9]{2} )?5\\." >/dev/null'

    it_diag "$label: $messages messages sent (smtp-source -N -s 8) to 1$tag@example.com .. $messages$tag@example.com" \
        "$label: $before_kill arrived before the kill, $pending_at_kill were still on their way" \
        "$label: the daemon was down $(awk -v a="$t_kill" -v b="$t_restart" 'BEGIN { printf "%.1f", b - a }') s" \
        "$label: deferrals seen by the outside instance: $out_deferred in all, $out_deferred_outage during the outage" \
        "$label: the outside instance deferred $(deferred_figures outside "$out_mark")" \
        "$label: 4xx answered by the MX: $mx_4xx_outage during the outage; in all: $codes" \
        "$label: the MX deferred in its own queue $(deferred_figures mx "$mx_mark")" \
        "$label: drained $(awk -v a="$t_restart" -v b="$t_done" 'BEGIN { printf "%.1f", b - a }') s after the restart, $(elapsed "$t0") s after the first message"
}

# kill_policy / restart_policy, kill_milter / restart_milter: SIGKILL, as a
# crash would, and a fresh start over the socket the dead daemon left.
# Before unitpolicy dies the MX's queue manager is paused for a second: the
# MX goes on accepting mail, which it routes only once the socketmap is
# gone (at full speed a message waits for routing a few milliseconds, and
# the kill may or may not fall on one).
kill_policy() {
    local qmgr
    qmgr=$(pf_daemon_pids mx qmgr)
    [ -n "$qmgr" ] || it_fatal "no qmgr process in instance mx"
    # shellcheck disable=SC2064 # the pid now: a stopped qmgr would outlive its master
    trap "kill -CONT $qmgr 2>/dev/null; it_cleanup" EXIT
    kill -STOP "$qmgr"
    sleep 1
    it_crash "$UP_PID"
    kill -CONT "$qmgr"
    trap it_cleanup EXIT
    probe_policy_start
    it_check "policy kill: the dead daemon's sockets are left, refusing connections" 'they are gone or answer' \
        eval 'unix_refuses "$IT_WORK/mx/unitpolicy" && unix_refuses "$IT_WORK/mx/unitmap"'
}
# The probe: a client in mynetworks (a unit sending back to the MX pool)
# passes smtpd_relay_restrictions without a table lookup and meets
# check_policy_service while unitpolicy is dead. smtpd tries the service
# smtpd_policy_service_try_limit times, smtpd_policy_service_retry_delay
# apart, then answers smtpd_policy_service_default_action. (The outside
# instance, not in mynetworks, meets reject_unauth_destination first, whose
# relay_domains lookup fails: 451 4.3.0.) It runs while the daemon is down.
probe_policy_start() {
    it_spawn "$IT_WORK/probe.out" timeout 60 swaks --server 127.0.0.1 --port "${PF_PORT[mx]}" \
        --local-interface 127.0.0.1 --helo unit1.it.invalid --from "$from" --to 1p@example.com \
        --quit-after RCPT --timeout 30
    PROBE_PID=$IT_LAST_PID
}
probe_policy_check() {
    it_reap "$PROBE_PID"
    IT_SMTP_OUT=$(cat "$IT_WORK/probe.out")
    it_expect_match "policy kill: a client in mynetworks gets 451 4.3.5 at RCPT" \
        '^451 4\.3\.5 <1p@example\.com>: Recipient address rejected: Recipient check temporarily unavailable' \
        "$(it_rcpt_reply 1p@example.com)"
}
restart_policy() {
    probe_policy_check
    up_start
}
kill_milter() {
    it_crash "$UM_PID"
    it_check "milter kill: the dead filter's socket is left, refusing connections" 'it is gone or answers' \
        unix_refuses "$IT_WORK/mx/unitmilter"
}
restart_milter() { um_start; }

# =============================================================== the phases

phase p "policy kill" kill_policy restart_policy
resolver_deferred=$(log_count mx "$PHASE_MX_MARK" 'status=deferred \(address resolver failure\)')
it_check "policy kill: mail the MX had accepted was deferred in its queue, not bounced" \
    'the MX deferred nothing for a lookup error: $(reject_codes mx "$PHASE_MX_MARK")' \
    eval '[ "$resolver_deferred" -gt 0 ]'
phase m "milter kill" kill_milter restart_milter

# =============================================================== every message, once

it_diag "sent: $((2 * messages)) messages, $messages per phase, each to its own mailbox"

for u in "${units[@]}"; do
    sink_rcpts "$u" | tr 'A-Z' 'a-z' | sort >"$IT_WORK/got.$u"
    { expected_rcpts p "$u"; expected_rcpts m "$u"; } | sort >"$IT_WORK/want.$u"
    it_check "$u: every message for its mailboxes exactly once, nothing else" \
        'missing $(comm -13 "$IT_WORK/got.$u" "$IT_WORK/want.$u" | wc -l), unexpected or repeated $(comm -23 "$IT_WORK/got.$u" "$IT_WORK/want.$u" | wc -l): $(comm -3 "$IT_WORK/got.$u" "$IT_WORK/want.$u" | head -5 | tr "\n\t" "  ")' \
        cmp -s "$IT_WORK/got.$u" "$IT_WORK/want.$u"
    it_diag "$u: $(wc -l <"$IT_WORK/got.$u") messages arrived ($(wc -l <"$IT_WORK/want.$u") expected)"
done

bounces() {
    pf_log "$1" | grep -cE 'status=bounced|sender non-delivery notification|postfix/bounce\[|said: 5[0-9]{2} '
}
for name in outside mx; do
    it_expect_eq "$name: no bounce, no DSN, no 5xx in its maillog" 0 "$(bounces "$name")"
done
# null_sender_at_units: some unit received a message from <> (a DSN).
null_sender_at_units() {
    local u
    for u in "${units[@]}"; do sink_grep "$u" '^X-Mail-Args: <>' && return 0; done
    return 1
}
it_check "no message from <> (a DSN) at any unit" 'a sink received one' it_not null_sender_at_units
it_diag "bounces: $(($(bounces outside) + $(bounces mx)))"
it_expect_eq "mx: nothing but the postmaster's notices discarded" "" \
    "$(pf_log mx | grep -E 'postfix/discard\[' | grep -v 'to=<postmaster@mx\.it\.invalid>' | head -3)"
it_diag "postmaster: $(pf_log mx | grep -cE 'postfix/discard\[.*to=<postmaster@mx\.it\.invalid>') notices from the MX (notify_classes)"

# without_route UNIT: the files at UNIT's sink without an X-Unit-Route
# header, i.e. accepted by the MX without its filter.
without_route() {
    find "${SINK_DIR[$1]}" -maxdepth 1 -type f -name 'm.*' -print0 | xargs -0 -r grep -Li '^X-Unit-Route: hop=1;'
}
for u in "${units[@]}"; do
    it_expect_eq "$u: every message went through unitmilter (milter_default_action = tempfail)" 0 \
        "$(without_route "$u" | wc -l)"
done
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail outside 20; pf_log_tail mx 30; }
it_summary
