#!/bin/bash
# test_unitpolicy.sh: unitpolicy with a real Postfix (issue 3). Every
# Postfix instance is built from the administrator's fragments in
# examples/mx/ and examples/unit/ (paths and ports substituted), so the
# examples stay true.
#
#   MX role     policy + socketmap tables: unknown, known, user+tag, alias
#               fan-out, aliases with disabled targets, a moving mailbox and a unit that is down (held on
#               the MX; postqueue -f during the move sends nothing and bounces
#               nothing; released by the daemon's held-mail watcher, with no
#               command, after the change: seconds measured), suspended, disabled, a
#               database deleted while running, a daemon started on a
#               missing database (451, then mail flows once it appears)
#   socketmap   postmap -q against every map
#   spawn(8)    unitpolicy --stdio as a Postfix spawn service
#   unit role   transportunit: own users to the local transport, the others
#               back to the MX relay
#
# UNITPOLICY=/path/to/unitpolicy (or BUILD_DIR) selects the binary; without
# one the script says "skip:" and passes.
set -uo pipefail
IT_TIME_LIMIT=${IT_TIME_LIMIT:-240}  # the held-mail releases wait out qmgr's 30 s cache
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IT_UNITPOLICY=${UNITPOLICY:-$IT_UNITPOLICY}
if [ ! -x "$IT_UNITPOLICY" ]; then
    it_skip_all "$IT_UNITPOLICY not built yet"
fi
it_init "$@"

from=sender@sender.invalid

# --------------------------------------------------------------- helpers

# up_start NAME DB SOCKDIR [OPTION...]: a unitpolicy daemon listening on
# SOCKDIR/unitpolicy (policy) and SOCKDIR/unitmap (socketmap), logging to
# $IT_WORK/NAME.log; waits (10 s) until its socketmap answers.
declare -A UP_PID UP_MAP UP_POLICY
up_start() {
    local name=$1 db=$2 dir=$3
    shift 3
    rm -f "$dir/unitpolicy" "$dir/unitmap" "$IT_WORK/$name.control"
    it_spawn "$IT_WORK/$name.log" "$IT_UNITPOLICY" --db "$db" \
        --policy-listen "unix:$dir/unitpolicy" \
        --socketmap-listen "unix:$dir/unitmap" \
        --control "$IT_WORK/$name.control" \
        --hold-transport unithold --recipient-delimiter + \
        --socket-mode 0666 --user nobody --log stderr "$@"
    UP_PID[$name]=$IT_LAST_PID
    UP_MAP[$name]=$dir/unitmap
    UP_POLICY[$name]=$dir/unitpolicy
    if ! it_wait_until 10 up_answers "$name"; then
        it_diag "unitpolicy $name log:"
        sed -e 's/^/#   /' "$IT_WORK/$name.log" | tail -20
        it_fatal "unitpolicy $name did not answer on ${UP_MAP[$name]}"
    fi
}

# up_answers NAME: the daemon's socketmap answers a lookup (any answer).
up_answers() {
    [ -S "${UP_MAP[$1]}" ] && [ -S "${UP_POLICY[$1]}" ] || return 1
    case $(up_map "$1" transportmx '*') in
        OK* | NOTFOUND | TEMP*) return 0 ;;
    esac
    return 1
}

# up_stop NAME: SIGTERM, which must end the daemon with status 0.
up_stop() {
    it_stop_daemon "unitpolicy $1" "${UP_PID[$1]}" 5
}

# up_map NAME MAP KEY: postmap -q KEY socketmap:unix:SOCKET:MAP, printed as
# "OK value", "NOTFOUND" or "TEMP message" (a lookup error).
up_map() {
    local out err rc
    err=$IT_WORK/postmap.err
    out=$(timeout 10 postmap -q "$3" "socketmap:unix:${UP_MAP[$1]}:$2" 2>"$err")
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "OK $out"
    elif [ "$rc" -eq 1 ] && [ ! -s "$err" ]; then
        echo "NOTFOUND"
    else
        echo "TEMP $(tr '\n' ' ' <"$err")"
    fi
}

# up_map_is NAME MAP KEY ANSWER: up_map prints ANSWER.
up_map_is() { [ "$(up_map "$1" "$2" "$3")" = "$4" ]; }

# up_wait_map NAME MAP KEY ANSWER [SECONDS]: waits until the daemon answers
# ANSWER (it notices a published replica by itself).
up_wait_map() { it_wait_until "${5:-5}" up_map_is "$1" "$2" "$3" "$4"; }

# expect_map NAME MAP KEY ANSWER: one "postmap -q" assertion.
expect_map() {
    it_expect_eq "postmap -q $3 $2 ($1)" "$4" "$(up_map "$1" "$2" "$3")"
}

# up_policy NAME RECIPIENT: one policy delegation request (protocol_state
# RCPT) on the daemon's policy socket; prints the action, e.g. "DUNNO".
up_policy() { it_policy_rcpt "${UP_POLICY[$1]}" "$2"; }

# up_log_tail NAME: the daemon's log as diagnostics.
up_log_tail() {
    it_diag "unitpolicy $1 log (last 15 lines):"
    tail -n 15 "$IT_WORK/$1.log" 2>/dev/null | sed -e 's/^/#   /'
}

# held_route UNIT: the transport answer of a held recipient of UNIT.
held_route() { echo "OK unithold:unix:/dev/null/unitpolicy-held/$1"; }

# up_counter NAME COUNTER: one integer of the daemon's control socket.
up_counter() {
    "$IT_UNITPOLICY" --db "$IT_REPLICA" --dump --control "$IT_WORK/$1.control" 2>/dev/null \
        | sed -n "s/^  $2: //p" | head -n 1
}

# seconds_since T0: seconds (0.1 s) since T0, a "date +%s.%N" value.
seconds_since() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }

# No unitmilter runs in these scenarios (test_unitmilter.sh has its own):
# the examples' smtpd_milters and non_smtpd_milters lines are emptied.
no_milter_sed='s|^\(non_\)\{0,1\}smtpd_milters = .*|\1smtpd_milters =|'

# mx_fragment_seds DIR: sed expressions pointing the example's private/
# sockets at DIR (Postfix takes an absolute path in unix:/abs/path).
mx_fragment_seds() {
    printf '%s\n' "s|unix:private/unitpolicy|unix:$1/unitpolicy|g" \
        "s|unix:private/unitmap|unix:$1/unitmap|g" "$no_milter_sed"
}

# --------------------------------------------------------------- directory

sink_start unit1
sink_start unit2
sink_start unit3
it_replica_paths
{
    ctl init &&
    ctl domain add example.com &&
    ctl unit add unit1 --nexthop "[127.0.0.1]:${SINK_PORT[unit1]}" &&
    ctl unit add unit2 --nexthop "[127.0.0.1]:${SINK_PORT[unit2]}" &&
    ctl unit add unit3 --nexthop "[127.0.0.1]:${SINK_PORT[unit3]}" &&
    ctl mailbox add alice@example.com --unit unit1 &&
    ctl mailbox add bob@example.com --unit unit2 &&
    ctl mailbox add carol@example.com --unit unit1 &&
    ctl mailbox add dave@example.com --unit unit3 &&
    ctl mailbox add erin@example.com --unit unit1 &&
    ctl mailbox set erin@example.com --state suspended &&
    ctl mailbox add frank@example.com --unit unit2 &&
    ctl mailbox set frank@example.com --state disabled &&
    ctl alias add team@example.com alice@example.com bob@example.com &&
    ctl alias add offlist@example.com frank@example.com &&
    ctl alias add mixed@example.com frank@example.com alice@example.com
} >/dev/null || it_fatal "unitctl could not build the test directory"
it_publish
route1="smtp:[127.0.0.1]:${SINK_PORT[unit1]}"
route2="smtp:[127.0.0.1]:${SINK_PORT[unit2]}"
route3="smtp:[127.0.0.1]:${SINK_PORT[unit3]}"

# =============================================================== MX role

mxsock=$IT_WORK/mx
mkdir -p "$mxsock"
chmod 0755 "$mxsock"
pf_new mx
# The held-mail watcher scans this instance's queue every 2 s.
held_opts=(--held-mail-interval 2 --postfix-config-directory "${PF_CONF[mx]}")
up_start mx "$IT_REPLICA" "$mxsock" "${held_opts[@]}"
it_ok "unitpolicy mx answers on $mxsock"

mapfile -t seds < <(mx_fragment_seds "$mxsock")
pf_main_fragment mx "$IT_EXAMPLES/mx/main.cf" "${seds[@]}"
pf_master_fragment mx "$IT_EXAMPLES/mx/master.cf"
pf_start mx
port=${PF_PORT[mx]}

# --- postmap -q against every map
expect_map mx domain example.com "OK example.com"
expect_map mx domain EXAMPLE.COM. "OK example.com"
expect_map mx domain example.org NOTFOUND
expect_map mx recipient alice@example.com "OK alice@example.com"
expect_map mx recipient Alice+tag@Example.COM "OK alice@example.com"
expect_map mx recipient team@example.com "OK team@example.com"
expect_map mx recipient erin@example.com "OK erin@example.com"
expect_map mx recipient nobody@example.com NOTFOUND
expect_map mx recipient frank@example.com NOTFOUND
expect_map mx recipient alice@example.org NOTFOUND
expect_map mx transportmx alice@example.com "OK $route1"
expect_map mx transportmx bob@example.com "OK $route2"
expect_map mx transportmx bob+x@example.com "OK $route2"
expect_map mx transportmx erin@example.com "$(held_route unit1)"
expect_map mx transportmx nobody@example.com NOTFOUND
expect_map mx transportmx frank@example.com NOTFOUND
expect_map mx transportmx '*' NOTFOUND
expect_map mx alias team@example.com "OK alice@example.com,bob@example.com"
expect_map mx alias alice@example.com NOTFOUND
expect_map mx alias offlist@example.com NOTFOUND
expect_map mx recipient offlist@example.com NOTFOUND
expect_map mx alias mixed@example.com "OK alice@example.com"
expect_map mx alias nobody@example.com NOTFOUND

# --- the policy protocol itself
it_expect_eq "policy: alice is DUNNO" DUNNO "$(up_policy mx alice@example.com)"
it_expect_eq "policy: a foreign domain is DUNNO" DUNNO "$(up_policy mx someone@example.org)"
it_expect_eq "policy: unknown" "550 5.1.1 User unknown" "$(up_policy mx nobody@example.com)"
it_expect_eq "policy: suspended" "450 4.2.1 Mailbox temporarily unavailable" "$(up_policy mx erin@example.com)"
it_expect_eq "policy: disabled" "550 5.2.1 Mailbox disabled" "$(up_policy mx frank@example.com)"
it_check "unitpolicy --dump --control" 'dump: $("$IT_UNITPOLICY" --db "$IT_REPLICA" --dump --control "$IT_WORK/mx.control" 2>&1 | head -3)' \
    eval '"$IT_UNITPOLICY" --db "$IT_REPLICA" --dump --control "$IT_WORK/mx.control" | grep . >/dev/null'

# --- unknown recipient: 550 5.1.1 at RCPT, nothing queued
it_smtp "$port" "$from" nobody@example.com
it_expect_match "mx unknown: 550 5.1.1 at RCPT" \
    '^550 5\.1\.1 <nobody@example.com>: Recipient address rejected: User unknown' \
    "$(it_rcpt_reply nobody@example.com)"
it_check "mx unknown: nothing queued" 'queue holds $(pf_queue_count mx)' pf_queue_is mx 0

# --- requests per message (examples/mx): smtpd's address resolution
# (relay_domains: its resolver, unitrewrite, asks no transport_maps), the
# policy, cleanup's virtual_alias_maps, the queue manager's resolution
# (relay_domains, transport_maps): 1 + 4. No virtual_alias_domains lookup,
# no smtpd recipient-table check (2 + 2 more before), no route for smtpd
# (1 more). Up to 3 more that are not per message: each trivial-rewrite
# process of the "rewrite" service that starts meanwhile (for cleanup or
# the queue manager: this is their first message) probes transport_maps
# with "*" (two did in the run that set this bound), and a new smtpd
# process may resolve the sender's domain first. tests/bench/requests.sh
# counts per message without them.
policy0=$(up_counter mx policy_requests)
socketmap0=$(up_counter mx socketmap_requests)
it_smtp "$port" "$from" Alice+count@example.com --header "Subject: requests"
it_expect_match "mx requests: accepted" '^250 ' "$(it_data_reply)"
it_check "mx requests: delivered to unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 sink_has_rcpt unit1 Alice+count@example.com
pf_wait_drained mx 20
policy1=$(up_counter mx policy_requests)
socketmap1=$(up_counter mx socketmap_requests)
it_diag "mx requests for one message: $((policy1 - policy0)) policy, $((socketmap1 - socketmap0)) socketmap"
it_expect_eq "mx requests: 1 policy request" 1 "$((policy1 - policy0))"
it_check "mx requests: 4 socketmap requests (7 with the probes and the sender's)" \
    "$((socketmap1 - socketmap0)) socketmap requests" \
    eval '[ "$((socketmap1 - socketmap0))" -ge 4 ] && [ "$((socketmap1 - socketmap0))" -le 7 ]'

# --- known recipients: each at its unit's sink
it_smtp "$port" "$from" alice@example.com --header "Subject: alice"
it_expect_match "mx alice: accepted" '^250 ' "$(it_data_reply)"
it_smtp "$port" "$from" bob@example.com --header "Subject: bob"
it_expect_match "mx bob: accepted" '^250 ' "$(it_data_reply)"
it_check "mx alice: delivered to unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 sink_has_rcpt unit1 alice@example.com
it_check "mx bob: delivered to unit2" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 20 sink_has_rcpt unit2 bob@example.com
it_check "mx alice: not at unit2" 'unit2 has: $(sink_list unit2)' it_not sink_has_rcpt unit2 alice@example.com
it_check "mx: queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20

# --- User+tag@DOMAIN: the same mailbox
it_smtp "$port" "$from" Alice+tag@example.com --header "Subject: alice+tag"
it_expect_match "mx Alice+tag: accepted" '^250 ' "$(it_data_reply)"
it_check "mx Alice+tag: delivered to unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 sink_has_rcpt unit1 Alice+tag@example.com

# --- an alias over two units: one copy at each sink
before1=$(sink_rcpt_count unit1 alice@example.com)
before2=$(sink_rcpt_count unit2 bob@example.com)
it_smtp "$port" "$from" team@example.com --header "Subject: team"
it_expect_match "mx alias: accepted" '^250 ' "$(it_data_reply)"
pf_wait_drained mx 20
it_check "mx alias: one copy at unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 10 eval '[ "$(sink_rcpt_count unit1 alice@example.com)" -eq $((before1 + 1)) ]'
it_check "mx alias: one copy at unit2" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 10 eval '[ "$(sink_rcpt_count unit2 bob@example.com)" -eq $((before2 + 1)) ]'

# --- the counters after these messages: Postfix asks a socketmap table for
# full addresses only (mail_addr_find's partial keys go to fixed tables
# only), and with the example's empty virtual_alias_domains the address
# resolver no longer asks the alias table for a domain: no partial key and
# no malformed address reaches the daemon
counters=$("$IT_UNITPOLICY" --db "$IT_REPLICA" --dump --control "$IT_WORK/mx.control" 2>&1)
counter() { printf '%s\n' "$counters" | sed -n "s/^  $1: //p" | head -n 1; }
it_diag "mx counters: socketmap_requests $(counter socketmap_requests)," \
    "socketmap_partial_keys $(counter socketmap_partial_keys), outcome_malformed $(counter outcome_malformed)"
it_expect_eq "mx counters: no malformed address from Postfix's own lookups" 0 "$(counter outcome_malformed)"
it_expect_eq "mx counters: no partial key from Postfix" 0 "$(counter socketmap_partial_keys)"

# --- a malformed address in a served domain (a local part too long for
# the directory): the policy service refuses it, as relay_recipient_maps
# did before the examples dropped it; nothing is queued to bounce later
long_rcpt=$(printf 'a%.0s' $(seq 1 330))@example.com
it_smtp "$port" "$from" "$long_rcpt"
it_expect_match "mx malformed in a served domain: 550 5.1.1 at RCPT" \
    '^550 5\.1\.1 .*Recipient address rejected: User unknown' "$(it_rcpt_reply "$long_rcpt")"
it_check "mx malformed: nothing queued" 'queue holds $(pf_queue_count mx)' pf_queue_is mx 0
it_check "mx malformed: counted as malformed" 'outcome_malformed: $(up_counter mx outcome_malformed)' \
    eval '[ "$(up_counter mx outcome_malformed)" -gt 0 ]'

# --- suspended: 450 4.2.1; disabled: 550 5.2.1
it_smtp "$port" "$from" erin@example.com
it_expect_match "mx suspended: 450 4.2.1 at RCPT" '^450 4\.2\.1 ' "$(it_rcpt_reply erin@example.com)"
it_smtp "$port" "$from" frank@example.com
it_expect_match "mx disabled: 550 5.2.1 at RCPT" '^550 5\.2\.1 ' "$(it_rcpt_reply frank@example.com)"
it_check "mx suspended/disabled: nothing queued" 'queue holds $(pf_queue_count mx)' pf_queue_is mx 0

# --- an alias answers for its targets (issue 12): an alias whose only
# target is disabled is refused at RCPT as the mailbox is, 550 5.2.1, and
# nothing is queued, delivered or bounced; an alias with a live target
# reaches it, and its disabled target neither gets mail nor bounces
mark=$(pf_log_mark mx)
it_expect_eq "policy: an alias to a disabled mailbox" "550 5.2.1 Mailbox disabled" "$(up_policy mx offlist@example.com)"
it_smtp "$port" "$from" offlist@example.com --header "Subject: offlist"
it_expect_match "mx dead alias: 550 5.2.1 at RCPT" \
    '^550 5\.2\.1 <offlist@example.com>: Recipient address rejected: Mailbox disabled' \
    "$(it_rcpt_reply offlist@example.com)"
it_check "mx dead alias: nothing queued" 'queue: $(pf_queue mx | head -c 300)' pf_queue_is mx 0
before1=$(sink_rcpt_count unit1 alice@example.com)
it_smtp "$port" "$from" mixed@example.com --header "Subject: mixed"
it_expect_match "mx alias with a disabled target: accepted" '^250 ' "$(it_data_reply)"
it_check "mx alias with a disabled target: the live target gets it" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 eval '[ "$(sink_rcpt_count unit1 alice@example.com)" -eq $((before1 + 1)) ]'
it_check "mx alias with a disabled target: queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20
it_check "mx dead targets: nothing at the disabled mailbox's unit" 'unit2 has: $(sink_list unit2)' \
    it_not sink_has_rcpt unit2 frank@example.com
it_check "mx dead targets: nothing bounced" 'maillog: $(pf_log_since mx "$mark" | grep -E "bounced|frank" | head -3)' \
    it_not pf_log_has mx "$mark" 'status=bounced|sender non-delivery notification|to=<frank@example.com>'

# --- a moving mailbox: accepted, held on the MX; "postqueue -f" during the
# move sends it nowhere (the hold route is an lmtp clone to a socket under
# /dev/null) and bounces nothing; once the finished move is published, the
# daemon's watcher releases it to the new unit with no command
it_check "mx: the hold transport is the examples' lmtp clone" 'master.cf: $(grep "^unithold" "${PF_CONF[mx]}/master.cf")' \
    grep -Eq '^unithold +unix +- +- +n +- +- +lmtp$' "${PF_CONF[mx]}/master.cf"
ctl move begin carol@example.com --to unit2 >/dev/null || it_fatal "move begin failed"
it_publish
it_check "mx moving: the daemon notices the new replica" 'answer: $(up_map mx transportmx carol@example.com)' \
    up_wait_map mx transportmx carol@example.com "$(held_route unit1)"
held1=$(sink_count unit1)
held2=$(sink_count unit2)
it_smtp "$port" "$from" carol@example.com --header "Subject: carol moving"
it_expect_match "mx moving: accepted" '^250 ' "$(it_data_reply)"
it_check "mx moving: deferred on the MX" 'queue: $(pf_queue mx | head -c 300)' \
    pf_wait_queue mx 1 deferred 20
it_check "mx moving: reason 'deferred transport'" 'queue: $(pf_queue mx | head -c 300)' \
    pf_queue_has mx 'deferred transport'
it_check "mx moving: the watcher counts it held for unit1" 'held_messages: $(up_counter mx held_messages)' \
    it_wait_until 10 eval '[ "$(up_counter mx held_messages)" = 1 ]'
mark=$(pf_log_mark mx)
pf_flush mx
it_check "mx moving: postqueue -f defers it again at the hold nexthop" 'queue: $(pf_queue mx | head -c 300)' \
    it_wait_until 20 pf_queue_has mx 'unitpolicy-held/unit1\]: Not a directory'
it_check "mx moving: the flush went to the lmtp clone and was deferred" 'maillog: $(pf_log_since mx "$mark" | grep carol)' \
    pf_log_has mx "$mark" 'postfix/unithold/lmtp\[.*to=<carol@example.com>.*status=deferred'
sleep 2
it_check "mx moving: still held after the flush" 'queue: $(pf_queue mx | head -c 300)' pf_queue_is mx 1 deferred
it_expect_eq "mx moving: nothing sent to unit1" "$held1" "$(sink_count unit1)"
it_expect_eq "mx moving: nothing sent to unit2" "$held2" "$(sink_count unit2)"
it_check "mx moving: nothing bounced" 'maillog: $(pf_log_since mx "$mark" | grep -E "bounced|non-delivery")' \
    it_not pf_log_has mx "$mark" 'status=bounced|sender non-delivery notification'
ctl move finish carol@example.com >/dev/null || it_fatal "move finish failed"
mark=$(pf_log_mark mx)
released=$(up_counter mx held_released)
t0=$(date +%s.%N)
it_publish
it_check "mx moved: the daemon routes to unit2" 'answer: $(up_map mx transportmx carol@example.com)' \
    up_wait_map mx transportmx carol@example.com "OK $route2"
it_check "mx moved: delivered to unit2 with no command" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 45 sink_has_rcpt unit2 carol@example.com
it_diag "held mail for carol reached unit2 $(seconds_since "$t0") s after the publish (flushed just before; qmgr caches a resolution 30 s)"
it_check "mx moved: not at unit1" 'unit1 has: $(sink_list unit1)' it_not sink_has_rcpt unit1 carol@example.com
it_check "mx moved: queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20
it_check "mx moved: sent by smtp, not through unithold" 'maillog: $(pf_log_since mx "$mark" | grep carol)' \
    pf_log_has mx "$mark" 'postfix/smtp\[.*to=<carol@example.com>.*status=sent'
it_check "mx moved: the watcher released it" 'held_released: $(up_counter mx held_released) (was $released)' \
    it_wait_until 5 eval '[ "$(up_counter mx held_released)" -gt "$released" ]'
it_check "mx moved: nothing held any more" 'held_messages: $(up_counter mx held_messages)' \
    it_wait_until 10 eval '[ "$(up_counter mx held_messages)" = 0 ]'

# --- a unit that is down: its mail is held, and released by the watcher,
# with no command, when the unit is active again
ctl unit set unit3 --state down >/dev/null || it_fatal "unit set down failed"
it_publish
it_check "mx unit down: the daemon holds unit3" 'answer: $(up_map mx transportmx dave@example.com)' \
    up_wait_map mx transportmx dave@example.com "$(held_route unit3)"
it_smtp "$port" "$from" dave@example.com --header "Subject: dave, unit3 down"
it_expect_match "mx unit down: accepted" '^250 ' "$(it_data_reply)"
it_check "mx unit down: deferred on the MX" 'queue: $(pf_queue mx | head -c 300)' \
    pf_wait_queue mx 1 deferred 20
sleep 1
it_expect_eq "mx unit down: nothing sent to unit3" 0 "$(sink_count unit3)"
ctl unit set unit3 --state active >/dev/null || it_fatal "unit set active failed"
mark=$(pf_log_mark mx)
t0=$(date +%s.%N)
it_publish
it_check "mx unit up: the daemon routes to unit3" 'answer: $(up_map mx transportmx dave@example.com)' \
    up_wait_map mx transportmx dave@example.com "OK $route3"
it_check "mx unit up: delivered to unit3 with no command" 'unit3 has: $(sink_list unit3)' \
    it_wait_until 45 sink_has_rcpt unit3 dave@example.com
it_diag "held mail for dave reached unit3 $(seconds_since "$t0") s after the publish (no flush)"
it_check "mx unit up: queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20
it_check "mx unit up: sent by smtp, not through unithold" 'maillog: $(pf_log_since mx "$mark" | grep dave)' \
    pf_log_has mx "$mark" 'postfix/smtp\[.*to=<dave@example.com>.*status=sent'

# --- the database deleted while the daemon runs: it keeps answering
rm -f "$IT_REPLICA"
sleep 1.5
expect_map mx transportmx alice@example.com "OK $route1"
before1=$(sink_rcpt_count unit1 alice@example.com)
it_smtp "$port" "$from" alice@example.com --header "Subject: alice, database deleted"
it_expect_match "mx database deleted: accepted" '^250 ' "$(it_data_reply)"
it_check "mx database deleted: delivered to unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 eval '[ "$(sink_rcpt_count unit1 alice@example.com)" -gt $before1 ]'
it_smtp "$port" "$from" nobody@example.com
it_expect_match "mx database deleted: unknown still 550 5.1.1" '^550 5\.1\.1 ' "$(it_rcpt_reply nobody@example.com)"
it_publish

it_check "mx: the daemon logged its releases" 'log: $(grep "held mail" "$IT_WORK/mx.log" | head -3)' \
    grep -q 'held mail: released [0-9]* message' "$IT_WORK/mx.log"
# The daemon starts before Postfix (whose tables it serves): its first scan
# may find the mail system down, said once, then "works again".
mx_watcher_recovered() {
    local warnings
    warnings=$(grep -c 'warning: held mail' "$IT_WORK/mx.log")
    [ "$warnings" -eq 0 ] || { [ "$warnings" -eq 1 ] && grep -q 'held mail: postqueue works again' "$IT_WORK/mx.log"; }
}
it_check "mx: postqueue failed for the watcher at most before Postfix started" \
    'log: $(grep "held mail" "$IT_WORK/mx.log" | grep -v released | head -3)' mx_watcher_recovered

mx_bounces() { pf_log_has mx 0 'status=bounced|sender non-delivery notification'; }
it_check "mx: nothing bounced" '$(pf_log mx | grep -E "status=bounced" | head -2)' it_not mx_bounces
up_stop mx

# --- a daemon started on a missing database: 451 4.3.0, nothing bounced;
# the database renamed into place: mail flows within 1 s, no restart
late=$IT_WORK/late
mkdir -p "$late"
chmod 0755 "$late"
up_start late "$late/units.db" "$mxsock" "${held_opts[@]}"
pf_reload mx
it_expect_eq "missing database: policy answers 451 4.3.0" "451 4.3.0 Directory temporarily unavailable" \
    "$(up_policy late alice@example.com)"
it_expect_match "missing database: postmap -q recipient is a lookup error" '^TEMP ' \
    "$(up_map late recipient alice@example.com)"
expect_map late transportmx '*' NOTFOUND
mark=$(pf_log_mark mx)
it_smtp "$port" "$from" alice@example.com
it_expect_match "missing database: 451 4.3.0 at RCPT" '^451 4\.3\.0 ' "$(it_rcpt_reply alice@example.com)"
it_smtp "$port" "$from" nobody@example.com
it_expect_match "missing database: unknown is 451 4.3.0 too, never 5xx" '^451 4\.3\.0 ' \
    "$(it_rcpt_reply nobody@example.com)"
it_check "missing database: nothing queued" 'queue holds $(pf_queue_count mx)' pf_queue_is mx 0
it_check "missing database: nothing bounced" 'maillog: $(pf_log_since mx "$mark" | grep bounced)' \
    it_not pf_log_has mx "$mark" 'status=bounced|sender non-delivery notification'
it_publish "$late/units.db.new"
mv "$late/units.db.new" "$late/units.db"
sleep 1
# bob, not alice: smtpd keeps a per-process cache of address resolutions
# (100 entries, failures included, for the life of the process), so the
# smtpd that just answered 451 for alice would answer it again from cache.
before2=$(sink_rcpt_count unit2 bob@example.com)
it_smtp "$port" "$from" bob@example.com --header "Subject: bob, database appeared"
it_expect_match "database appeared: accepted 1 s after the rename" '^250 ' "$(it_data_reply)"
it_check "database appeared: delivered to unit2" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 20 eval '[ "$(sink_rcpt_count unit2 bob@example.com)" -gt $before2 ]'
expect_map late recipient alice@example.com "OK alice@example.com"
it_check "database appeared: same daemon process" "unitpolicy late exited" kill -0 "${UP_PID[late]}"
up_stop late
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail mx 30; up_log_tail mx; up_log_tail late; }
pf_teardown mx

# =============================================================== spawn(8)

# The daemon still serves the socketmap tables; the policy protocol comes
# from "unitpolicy --stdio" under spawn(8): the examples' commented-out
# alternative, uncommented (in main.cf it comes later, so it wins).
up_start maps "$IT_REPLICA" "$mxsock" --held-mail-interval 0
spawn_seds=(
    "${seds[@]}"
    's|^#\(smtpd_recipient_restrictions = check_policy_service unix:private/policy\)$|\1|'
    's|^#\(policy_time_limit = .*\)$|\1|'
)
pf_new spawn
pf_main_fragment spawn "$IT_EXAMPLES/mx/main.cf" "${spawn_seds[@]}"
pf_master_fragment spawn "$IT_EXAMPLES/mx/master.cf" \
    '/^#policy /,/^#  user=/s|^#||' \
    "s|/usr/local/sbin/unitpolicy|$IT_UNITPOLICY|" \
    "s|/var/lib/unitpolicy/units.db|$IT_REPLICA|"
it_check "spawn: master.cf has the policy service" 'master.cf: $(grep -A1 "^policy" "${PF_CONF[spawn]}/master.cf")' \
    grep -q "argv=$IT_UNITPOLICY --stdio --db $IT_REPLICA" "${PF_CONF[spawn]}/master.cf"
it_check "spawn: main.cf uses private/policy" 'restrictions: $(postconf -c "${PF_CONF[spawn]}" -h smtpd_recipient_restrictions)' \
    eval '[ "$(postconf -c "${PF_CONF[spawn]}" -h smtpd_recipient_restrictions)" = "check_policy_service unix:private/policy" ]'
pf_start spawn
sport=${PF_PORT[spawn]}
mark=$(pf_log_mark spawn)
it_smtp "$sport" "$from" nobody@example.com
it_expect_match "spawn unknown: 550 5.1.1 at RCPT" '^550 5\.1\.1 .*User unknown' "$(it_rcpt_reply nobody@example.com)"
it_smtp "$sport" "$from" erin@example.com
it_expect_match "spawn suspended: 450 4.2.1 at RCPT" '^450 4\.2\.1 ' "$(it_rcpt_reply erin@example.com)"
before2=$(sink_rcpt_count unit2 bob@example.com)
it_smtp "$sport" "$from" Bob+spawn@example.com,nobody@example.com --header "Subject: bob via spawn"
it_expect_match "spawn: a known and an unknown recipient, one rejected" '^550 5\.1\.1 ' \
    "$(it_rcpt_reply nobody@example.com)"
it_expect_match "spawn bob: accepted" '^250 ' "$(it_data_reply)"
it_check "spawn bob: delivered to unit2" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 20 sink_has_rcpt unit2 Bob+spawn@example.com
it_check "spawn: no warnings from spawn or smtpd" 'maillog: $(pf_log_since spawn "$mark" | grep -E "warning|fatal" | head -3)' \
    it_not pf_log_has spawn "$mark" 'postfix/(spawn|smtpd)\[[0-9]+\]: (warning|fatal)'
[ "$IT_FAILED" -gt 0 ] && pf_log_tail spawn 30
pf_teardown spawn
up_stop maps

# =============================================================== unit role

# unit1's Postfix, with the examples' literal private/ paths: the daemon
# listens inside this instance's queue directory, as on a real unit. Its
# local store is a pipe transport ("unitlocal") writing one file per
# recipient; mail for other units goes back to an smtp-sink standing in
# for the MX pool.
sink_start mxpool
localdir=$IT_WORK/local
mkdir -p "$localdir"
chown nobody:nogroup "$localdir"
cat >"$IT_WORK/mda.sh" <<'EOF'
#!/bin/sh
# mda.sh DIR RECIPIENT: stores the message on stdin as DIR/m.*, in
# smtp-sink's dump format (X-Rcpt-Args names the recipient).
n=$(date +%s%N).$$
{ echo "X-Rcpt-Args: TO:<$2>"; cat; } >"$1/tmp.$n" && mv "$1/tmp.$n" "$1/m.$n"
EOF
chmod 0755 "$IT_WORK/mda.sh"
SINK_DIR[local]=$localdir

pf_new unit1
pf_main_fragment unit1 "$IT_EXAMPLES/unit/main.cf" "$no_milter_sed"
pf_master_fragment unit1 "$IT_EXAMPLES/unit/master.cf"
pf_master unit1 "unitlocal unix - n n - - pipe" \
    "  flags=R user=nobody argv=$IT_WORK/mda.sh $localdir \${recipient}"
pf_start unit1
uport=${PF_PORT[unit1]}
private=${PF_DIR[unit1]}/queue/private
up_start unit "$IT_REPLICA" "$private" --unit unit1 --local-transport unitlocal \
    --mx-relay "smtp:[127.0.0.1]:${SINK_PORT[mxpool]}" --postfix-config-directory "${PF_CONF[unit1]}"
pf_reload unit1   # daemons that looked up "*" before unitpolicy was there

expect_map unit transportunit alice@example.com "OK unitlocal"
expect_map unit transportunit Alice+x@example.com "OK unitlocal"
expect_map unit transportunit bob@example.com "OK smtp:[127.0.0.1]:${SINK_PORT[mxpool]}"
expect_map unit transportunit nobody@example.com NOTFOUND
expect_map unit transportunit frank@example.com NOTFOUND
expect_map unit transportunit '*' NOTFOUND
expect_map unit domain example.com "OK example.com"
expect_map unit recipient bob@example.com "OK bob@example.com"

it_smtp "$uport" "$from" alice@example.com --header "Subject: alice on unit1"
it_expect_match "unit alice: accepted" '^250 ' "$(it_data_reply)"
it_check "unit alice: delivered by the local transport" 'local has: $(sink_list local)' \
    it_wait_until 20 sink_has_rcpt local alice@example.com
it_smtp "$uport" "$from" Alice+tag@example.com --header "Subject: alice+tag on unit1"
it_check "unit Alice+tag: delivered by the local transport" 'local has: $(sink_list local)' \
    it_wait_until 20 sink_has_rcpt local Alice+tag@example.com
it_smtp "$uport" "$from" bob@example.com --header "Subject: bob via unit1"
it_expect_match "unit bob: accepted" '^250 ' "$(it_data_reply)"
it_check "unit bob: relayed to the MX pool" 'mxpool has: $(sink_list mxpool)' \
    it_wait_until 20 sink_has_rcpt mxpool bob@example.com
it_check "unit bob: not delivered locally" 'local has: $(sink_list local)' it_not sink_has_rcpt local bob@example.com
it_check "unit alice: not relayed to the MX pool" 'mxpool has: $(sink_list mxpool)' \
    it_not sink_has_rcpt mxpool alice@example.com
it_smtp "$uport" "$from" nobody@example.com
it_expect_match "unit unknown: 550 5.1.1 at RCPT" '^550 5\.1\.1 ' "$(it_rcpt_reply nobody@example.com)"
it_check "unit: queue drained" '$(pf_queue_count unit1) messages left' pf_wait_drained unit1 20
it_check "unit: the watcher scans unit1's queue" 'held_scan_errors: $(up_counter unit held_scan_errors), log: $(grep "held mail" "$IT_WORK/unit.log" | head -2)' \
    eval '[ "$(up_counter unit held_scan_errors)" = 0 ] && ! grep -q "warning: held mail" "$IT_WORK/unit.log"'
it_check "unit: nothing bounced" 'maillog: $(pf_log unit1 | grep bounced | head -2)' \
    it_not pf_log_has unit1 0 'status=bounced|sender non-delivery notification'
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail unit1 30; up_log_tail unit; }
up_stop unit

it_summary
