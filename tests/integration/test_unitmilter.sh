#!/bin/bash
# test_unitmilter.sh: unitmilter with real Postfix instances (issue 4). The
# instances are built from the administrator's files, examples/mx/,
# examples/unit/ and examples/unitmilter.conf (paths, ports and the settings
# under test substituted), so the examples stay true.
#
#   hygiene     an MX with unitpolicy and unitmilter (role mx, nobody
#               trusted): forged X-Unit-* headers from outside (any case,
#               folded, repeated) are gone at the unit's sink, replaced by
#               exactly one "X-Unit-Route: hop=1; ..."; a message to three
#               recipients on two units reaches both sinks with
#               units=unit1,unit2 and no recipient address in any header
#   loop        the same MX (reconfigured with SIGUSR1: trusted
#               127.0.0.0/8, max_hops 4) and a unit instance (role unit)
#               whose replicas disagree about a user: the message goes
#               MX -> unit3 -> MX -> unit3 -> MX, is refused there with
#               451 4.4.6, and stays deferred in unit3's queue (also after
#               a "postqueue -f"); nothing is bounced anywhere
#   converged   the MX's replica catches up: its generation reaches the
#               route's, so unit3's retry (hop=4) is taken and
#               delivered to unit2, without a bounce
#   local       sendmail(1) on unit3, which trusts 127.0.0.0/8: the
#               example's non_smtpd_milters runs the filter, which does not
#               trust Postfix's stand-in client (127.0.0.1, port 0): the
#               forged X-Unit-* headers are gone at unit2's sink and the
#               route counts from unit3's hop=1
#   filter down both filters stop with status 0 on SIGTERM; the MX then
#               answers 451 4.7.1 (milter_default_action = tempfail)
#
# UNITMILTER and UNITPOLICY (or BUILD_DIR) select the binaries; without them
# the script says "skip:" and passes.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IT_UNITPOLICY=${UNITPOLICY:-$IT_UNITPOLICY}
IT_UNITMILTER=${UNITMILTER:-$IT_BUILD/src/milter/unitmilter}
[ -x "$IT_UNITPOLICY" ] || it_skip_all "$IT_UNITPOLICY not built yet"
[ -x "$IT_UNITMILTER" ] || it_skip_all "$IT_UNITMILTER not built yet"
it_init "$@"

from=sender@sender.invalid

# --------------------------------------------------------------- helpers

# up_start NAME DB SOCKDIR [OPTION...]: unitpolicy on SOCKDIR/unitpolicy
# (policy) and SOCKDIR/unitmap (socketmap), logging to $IT_WORK/NAME.log;
# waits (10 s) until its socketmap answers.
declare -A UP_MAP
up_start() {
    local name=$1 db=$2 dir=$3
    shift 3
    rm -f "$dir/unitpolicy" "$dir/unitmap"
    it_spawn "$IT_WORK/$name.log" "$IT_UNITPOLICY" --db "$db" \
        --policy-listen "unix:$dir/unitpolicy" --socketmap-listen "unix:$dir/unitmap" \
        --hold-transport unithold --recipient-delimiter + \
        --socket-mode 0666 --user nobody --log stderr "$@"
    UP_MAP[$name]=$dir/unitmap
    if ! it_wait_until 10 up_answers "$name"; then
        it_diag "unitpolicy $name log:"
        tail -n 20 "$IT_WORK/$name.log" | sed -e 's/^/#   /'
        it_fatal "unitpolicy $name did not answer on ${UP_MAP[$name]}"
    fi
}

# up_answers NAME: the daemon's socketmap answers a lookup (found or not).
up_answers() {
    local err
    [ -S "${UP_MAP[$1]}" ] || return 1
    err=$(timeout 5 postmap -q '*' "socketmap:unix:${UP_MAP[$1]}:transportmx" 2>&1 >/dev/null)
    [ $? -le 1 ] && [ -z "$err" ]
}

# um_conf OUT SED-EXPRESSION...: a unitmilter configuration file made from
# examples/unitmilter.conf, each SED-EXPRESSION applied.
um_conf() {
    local out=$1 args=() e
    shift
    for e in "$@"; do args+=(-e "$e"); done
    sed "${args[@]}" "$IT_EXAMPLES/unitmilter.conf" >"$out" || it_fatal "cannot write $out"
}

# um_start NAME CONF: unitmilter --config CONF, logging to
# $IT_WORK/NAME.log; waits (10 s) until it says it serves.
declare -A UM_PID
um_start() {
    local name=$1 conf=$2
    it_spawn "$IT_WORK/$name.log" "$IT_UNITMILTER" --config "$conf" --log stderr --debug
    UM_PID[$name]=$IT_LAST_PID
    if ! it_wait_until 10 um_log_has "$name" 'starting: listen '; then
        it_diag "unitmilter $name log:"
        tail -n 20 "$IT_WORK/$name.log" | sed -e 's/^/#   /'
        it_fatal "unitmilter $name did not start"
    fi
}

# um_log_has NAME ERE: the filter's log has a line matching ERE.
um_log_has() { grep -E -- "$2" "$IT_WORK/$1.log" >/dev/null 2>&1; }

# um_log_count NAME ERE: how many lines of the filter's log match ERE.
um_log_count() { grep -cE -- "$2" "$IT_WORK/$1.log" 2>/dev/null; }

# um_log_tail NAME: the filter's log as diagnostics.
um_log_tail() {
    it_diag "unitmilter $1 log (last 15 lines):"
    tail -n 15 "$IT_WORK/$1.log" 2>/dev/null | sed -e 's/^/#   /'
}

# um_reload NAME CONF SED-EXPRESSION...: rewrites CONF and sends SIGUSR1;
# waits (10 s) for the filter to say it reloaded.
um_reload() {
    local name=$1 conf=$2 before
    shift 2
    um_conf "$conf" "$@"
    before=$(um_log_count "$name" 'reload: configuration reloaded')
    kill -USR1 "${UM_PID[$name]}" 2>/dev/null
    it_wait_until 10 eval '[ "$(um_log_count "'"$name"'" "reload: configuration reloaded")" -gt '"$before"' ]'
}

# um_stop NAME: SIGTERM, which must end the filter with status 0 (libmilter
# notices a stop within a few seconds).
um_stop() {
    it_stop_daemon "unitmilter $1" "${UM_PID[$1]}" 15
}

# it_publish_gen OUT: publishes $IT_DB to OUT (mode 0644) and prints the
# generation it has.
it_publish_gen() {
    local out
    out=$(ctl publish "$1") || it_fatal "unitctl publish $1 failed"
    chmod 0644 "$1"
    printf '%s\n' "$out" | sed -n -E 's/^published .* generation ([0-9]+) .*/\1/p'
}

# sink_file NAME ERE: the message file at sink NAME with a line matching ERE.
sink_file() {
    find "${SINK_DIR[$1]}" -maxdepth 1 -type f -name 'm.*' -print0 2>/dev/null \
        | xargs -0 -r grep -lE -- "$2" 2>/dev/null | head -n 1
}

# msg_headers FILE: the message's header section as the sink received it,
# one header per line (folded headers joined), without smtp-sink's own
# X-Client-Addr/X-Client-Proto/X-Helo-Args/X-Mail-Args/X-Rcpt-Args lines.
msg_headers() {
    [ -n "$1" ] && [ -f "$1" ] || return 0
    awk '
        { sub(/\r$/, "") }
        /^$/ { exit }
        /^[ \t]/ { cur = cur " " $0; next }
        { if (cur != "") print cur; cur = $0 }
        END { if (cur != "") print cur }' "$1" \
        | grep -Eiv '^(X-Client-Addr|X-Client-Proto|X-Helo-Args|X-Mail-Args|X-Rcpt-Args):'
}

# route_headers FILE: the X-Unit-Route lines of msg_headers (any case).
route_headers() { msg_headers "$1" | grep -i '^x-unit-route:'; }

# unit_headers FILE: every X-Unit-* line of msg_headers (any case).
unit_headers() { msg_headers "$1" | grep -i '^x-unit-'; }

# no_address_in HEADERS ADDRESS...: none of the addresses in HEADERS.
no_address_in() {
    local text=$1 a
    shift
    for a in "$@"; do
        printf '%s\n' "$text" | grep -iF -- "$a" >/dev/null && return 1
    done
    return 0
}

# pf_bounced NAME: the maillog shows a bounce or a DSN.
pf_bounced() { pf_log_has "$1" 0 'status=bounced|sender non-delivery notification|postfix/bounce\['; }

# --------------------------------------------------------------- instances and directory

sink_start unit1
sink_start unit2
pf_new mx
pf_new unit3
mxport=${PF_PORT[mx]}
u3port=${PF_PORT[unit3]}

IT_DB=$IT_WORK/primary.db
mkdir -p "$IT_WORK/mx" "$IT_WORK/u3"
chmod 0755 "$IT_WORK/mx" "$IT_WORK/u3"
mx_replica=$IT_WORK/mx/units.db
u3_replica=$IT_WORK/u3/units.db
{
    ctl init &&
    ctl domain add example.com &&
    ctl unit add unit1 --nexthop "[127.0.0.1]:${SINK_PORT[unit1]}" &&
    ctl unit add unit2 --nexthop "[127.0.0.1]:${SINK_PORT[unit2]}" &&
    ctl unit add unit3 --nexthop "[127.0.0.1]:$u3port" &&
    ctl mailbox add alice@example.com --unit unit1 &&
    ctl mailbox add carol@example.com --unit unit1 &&
    ctl mailbox add bob@example.com --unit unit2 &&
    ctl mailbox add loop@example.com --unit unit3
} >/dev/null || it_fatal "unitctl could not build the test directory"
# The MX's replica says loop@ is on unit3; unit3's, published after the
# move, says it is on unit2: unit3 sends it back to the MX pool.
gen_mx=$(it_publish_gen "$mx_replica")
{
    ctl move begin loop@example.com --to unit2 &&
    ctl move finish loop@example.com
} >/dev/null || it_fatal "unitctl could not move loop@example.com"
gen_u3=$(it_publish_gen "$u3_replica")
[ -n "$gen_mx" ] && [ -n "$gen_u3" ] || it_fatal "unitctl publish printed no generation"

# The MX: unitpolicy and unitmilter beside it, sockets in $IT_WORK/mx.
up_start mx "$mx_replica" "$IT_WORK/mx"
mx_conf=$IT_WORK/mx/unitmilter.conf
mx_seds=(
    "s|^listen = .*|listen = unix:$IT_WORK/mx/unitmilter|"
    "s|^trusted_networks = .*|trusted_networks =|"
    "s|^user = .*|user = nobody|"
    "\$a db = $mx_replica"
    "\$a hostname = mx.it.invalid"
)
um_conf "$mx_conf" "${mx_seds[@]}"
um_start mxmilter "$mx_conf"
it_check "mx: unitmilter trusts nobody" 'log: $(grep starting: "$IT_WORK/mxmilter.log")' \
    um_log_has mxmilter 'starting: listen unix:.*, role mx, .*trusted networks: none$'

mx_main_seds=(
    "s|unix:private/unitpolicy|unix:$IT_WORK/mx/unitpolicy|g"
    "s|unix:private/unitmap|unix:$IT_WORK/mx/unitmap|g"
    "s|unix:private/unitmilter|unix:$IT_WORK/mx/unitmilter|g"
)
pf_main_fragment mx "$IT_EXAMPLES/mx/main.cf" "${mx_main_seds[@]}"
pf_master_fragment mx "$IT_EXAMPLES/mx/master.cf"
it_expect_eq "mx: main.cf has the example's milter lines" \
    "unix:$IT_WORK/mx/unitmilter tempfail 6" \
    "$(postconf -c "${PF_CONF[mx]}" -h smtpd_milters milter_default_action milter_protocol | tr '\n' ' ' | sed 's/ $//')"
pf_start mx

# =============================================================== hygiene

# --- forged routing headers from outside: all gone, one hop=1 route added
cat >"$IT_WORK/forged.eml" <<'EOM'
From: <sender@sender.invalid>
To: undisclosed-recipients:;
Subject: forged route
Message-Id: <forged.1@sender.invalid>
X-Unit-Route: hop=5; gen=99; units=evil; by=forger.invalid
X-Unit-Other: x
x-unit-route: hop=3;
	gen=1; units=evil2
X-UNIT-OTHER: folded
 continuation
X-Unit-Route: hop=40; by=forger.invalid

forged routing headers
EOM
mark=$(pf_log_mark mx)
it_smtp "$mxport" "$from" alice@example.com --data "$IT_WORK/forged.eml"
it_expect_match "forged: accepted by the MX" '^250 ' "$(it_data_reply)"
it_check "forged: delivered to unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 eval '[ -n "$(sink_file unit1 "^Message-Id: <forged\.1@")" ]'
f=$(sink_file unit1 '^Message-Id: <forged\.1@')
it_expect_eq "forged: exactly one X-Unit-Route, hop=1, this MX's generation" \
    "X-Unit-Route: hop=1; gen=$gen_mx; units=unit1; by=mx.it.invalid" "$(route_headers "$f")"
it_expect_eq "forged: no X-Unit-* header but the route" \
    "X-Unit-Route" "$(unit_headers "$f" | sed 's/:.*//' | tr '\n' ' ' | sed 's/ $//')"
it_check "forged: nothing of the forged values is left" 'headers: $(msg_headers "$f" | tr "\n" "|")' \
    it_not grep -Ei 'forger\.invalid|evil|continuation|^X-Unit-Other' "$f"
it_check "forged: no address in the X-Unit headers" 'X-Unit: $(unit_headers "$f")' \
    it_not eval 'unit_headers "$f" | grep @ >/dev/null'
it_check "forged: the filter logged the removal" 'log: $(tail -n 5 "$IT_WORK/mxmilter.log")' \
    um_log_has mxmilter ': removed 5 X-Unit-\* header\(s\) from untrusted client=.*\[127\.0\.0\.2\]$'
it_check "forged: the queue id is in the filter's log" 'log: $(tail -n 5 "$IT_WORK/mxmilter.log")' \
    eval 'um_log_has mxmilter "^unitmilter\[[0-9]+\]: [0-9A-F]+: removed"'

# --- three recipients on two units: no address in any header at either sink
cat >"$IT_WORK/three.eml" <<'EOM'
From: <sender@sender.invalid>
To: undisclosed-recipients:;
Subject: three recipients
Message-Id: <three.1@sender.invalid>

one message, three recipients, two units
EOM
it_smtp "$mxport" "$from" alice@example.com,carol@example.com,bob@example.com --data "$IT_WORK/three.eml"
it_expect_match "three: accepted by the MX" '^250 ' "$(it_data_reply)"
it_check "three: a copy at unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 eval '[ -n "$(sink_file unit1 "^Message-Id: <three\.1@")" ]'
it_check "three: a copy at unit2" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 20 eval '[ -n "$(sink_file unit2 "^Message-Id: <three\.1@")" ]'
f1=$(sink_file unit1 '^Message-Id: <three\.1@')
f2=$(sink_file unit2 '^Message-Id: <three\.1@')
it_expect_eq "three: unit1 got alice and carol" "alice@example.com carol@example.com" \
    "$(grep -h '^X-Rcpt-Args:' "$f1" | sed 's/.*<\(.*\)>.*/\1/' | sort | tr '\n' ' ' | sed 's/ $//')"
it_expect_eq "three: unit2 got bob" "bob@example.com" \
    "$(grep -h '^X-Rcpt-Args:' "$f2" | sed 's/.*<\(.*\)>.*/\1/' | sort | tr '\n' ' ' | sed 's/ $//')"
for n in 1 2; do
    f=$(eval echo "\$f$n")
    it_expect_eq "three: unit$n's copy has one route, units=unit1,unit2" \
        "X-Unit-Route: hop=1; gen=$gen_mx; units=unit1,unit2; by=mx.it.invalid" "$(route_headers "$f")"
    it_check "three: unit$n's copy has no recipient address in any header" \
        'headers: $(msg_headers "$f" | tr "\n" "|")' \
        no_address_in "$(msg_headers "$f")" alice@example.com carol@example.com bob@example.com
done
it_check "three: unit2's copy names neither alice nor carol anywhere" 'copy: $(head -c 600 "$f2")' \
    it_not grep -iE 'alice|carol' "$f2"
it_check "three: unit1's copy does not name bob anywhere" 'copy: $(head -c 600 "$f1")' \
    it_not grep -iE 'bob' "$f1"
it_check "hygiene: mx queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20
it_check "hygiene: no milter warning in the MX's maillog" 'maillog: $(pf_log mx | grep -i milter | head -3)' \
    it_not pf_log_has mx 0 'warning:.*milter'
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail mx 20; um_log_tail mxmilter; }

# =============================================================== loop

# unit3: a Postfix unit built from examples/unit, with its own unitpolicy
# (role unit, mx_relay the MX) and unitmilter (role unit) on its replica.
up_start unit3 "$u3_replica" "$IT_WORK/u3" --unit unit3 --mx-relay "smtp:[127.0.0.1]:$mxport"
u3_conf=$IT_WORK/u3/unitmilter.conf
loop_seds=(
    "s|^trusted_networks =.*|trusted_networks = 127.0.0.0/8|"
    "s|^user = .*|user = nobody|"
)
um_conf "$u3_conf" "${loop_seds[@]}" "\$a max_hops = 4" \
    "s|^listen = .*|listen = unix:$IT_WORK/u3/unitmilter|" \
    "\$a role = unit" "\$a unit = unit3" \
    "\$a db = $u3_replica" "\$a hostname = unit3.it.invalid"
um_start u3milter "$u3_conf"
pf_main_fragment unit3 "$IT_EXAMPLES/unit/main.cf" \
    "s|unix:private/unitpolicy|unix:$IT_WORK/u3/unitpolicy|g" \
    "s|unix:private/unitmap|unix:$IT_WORK/u3/unitmap|g" \
    "s|unix:private/unitmilter|unix:$IT_WORK/u3/unitmilter|g"
pf_master_fragment unit3 "$IT_EXAMPLES/unit/master.cf"
it_expect_eq "unit3: main.cf has the example's milter lines" \
    "unix:$IT_WORK/u3/unitmilter tempfail 6" \
    "$(postconf -c "${PF_CONF[unit3]}" -h smtpd_milters milter_default_action milter_protocol | tr '\n' ' ' | sed 's/ $//')"
it_expect_eq "unit3: main.cf runs the filter on local submissions" "unix:$IT_WORK/u3/unitmilter" \
    "$(postconf -c "${PF_CONF[unit3]}" -h non_smtpd_milters)"
pf_start unit3

# The MX's filter now trusts loopback (unit3 and the MX itself), max_hops 4.
it_check "mx: unitmilter reloads on SIGUSR1" 'log: $(tail -n 3 "$IT_WORK/mxmilter.log")' \
    um_reload mxmilter "$mx_conf" "${mx_seds[@]}" "${loop_seds[@]}" "\$a max_hops = 4"
it_check "mx: the reloaded filter is the same process" "unitmilter mx exited" kill -0 "${UM_PID[mxmilter]}"

mxmark=$(pf_log_mark mx)
u3mark=$(pf_log_mark unit3)
it_smtp "$mxport" "$from" loop@example.com --header "Subject: loop" --header "Message-Id: <loop.1@sender.invalid>"
it_expect_match "loop: accepted by the MX" '^250 ' "$(it_data_reply)"
# hop 1 (MX) -> 2 (unit3) -> 3 (MX) -> 4 (unit3) -> refused by the MX: 4 >= max_hops
it_check "loop: the MX refuses hop 4 with 451 4.4.6" 'maillog mx: $(pf_log_since mx "$mxmark" | grep -i milter | head -3)' \
    pf_log_wait mx "$mxmark" 'milter-reject: END-OF-MESSAGE from [^ ]*\[127\.0\.0\.1\]: 4\.4\.6 routing loop: directory replicas disagree' 40
it_check "loop: unit3's queue holds the message, deferred" 'queue unit3: $(pf_queue unit3 | head -c 400)' \
    pf_wait_queue unit3 1 deferred 20
it_check "loop: unit3's maillog shows 451 4.4.6" 'maillog unit3: $(pf_log_since unit3 "$u3mark" | grep loop@ | tail -2)' \
    pf_log_wait unit3 "$u3mark" 'to=<loop@example\.com>.*status=deferred .*said: 451 4\.4\.6 routing loop' 10
pq=$(timeout 20 postqueue -c "${PF_CONF[unit3]}" -p 2>&1)
it_expect_match "loop: postqueue -p on unit3 shows it, with 451 4.4.6" '451 4\.4\.6 routing loop' "$pq"
it_expect_match "loop: postqueue -p on unit3 names loop@example.com" '^ +loop@example\.com$' "$pq"
it_expect_match "loop: the queued message is the original, not a DSN" '"sender": *"sender@sender\.invalid"' \
    "$(pf_queue unit3)"
it_expect_eq "loop: the MX relayed it to unit3 twice" 2 \
    "$(pf_log_since mx "$mxmark" | grep -cE "to=<loop@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$u3port.*status=sent")"
it_expect_eq "loop: unit3 sent it back to the MX once" 1 \
    "$(pf_log_since unit3 "$u3mark" | grep -cE "to=<loop@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$mxport.*status=sent")"
it_check "loop: the MX's queue is empty" 'queue mx: $(pf_queue mx | head -c 400)' pf_wait_drained mx 10
it_check "loop: the MX's filter logged the loop" 'log: $(tail -n 5 "$IT_WORK/mxmilter.log")' \
    um_log_has mxmilter 'warning: [0-9A-Z]+: reject: routing loop: hop 4 from client=.*\[127\.0\.0\.1\] reaches max_hops 4: 451 4\.4\.6'
it_check "loop: unit3's filter logged the recipient going back" 'log: $(tail -n 5 "$IT_WORK/u3milter.log")' \
    um_log_has u3milter ': not on unit unit3: to=<loop@example\.com>: unit unit2: back to the MX pool$'
it_check "loop: unit3's filter counted hop 2 and 4" 'log: $(grep Route "$IT_WORK/u3milter.log" | tail -n 3)' \
    eval 'um_log_has u3milter "X-Unit-Route: hop=2; gen=$gen_u3; units=unit2; by=unit3\.it\.invalid from trusted" &&
          um_log_has u3milter "X-Unit-Route: hop=4; gen=$gen_u3; units=unit2; by=unit3\.it\.invalid from trusted"'

# A retry is refused again: still deferred, still no bounce.
u3mark=$(pf_log_mark unit3)
pf_flush unit3
it_check "loop: after postqueue -f, refused again" 'maillog unit3: $(pf_log_since unit3 "$u3mark" | tail -3)' \
    pf_log_wait unit3 "$u3mark" 'to=<loop@example\.com>.*status=deferred .*451 4\.4\.6' 20
it_check "loop: after postqueue -f, still deferred in unit3's queue" 'queue unit3: $(pf_queue unit3 | head -c 400)' \
    pf_wait_queue unit3 1 deferred 10
it_check "loop: the MX's queue is still empty" 'queue mx: $(pf_queue mx | head -c 400)' pf_queue_is mx 0
it_check "loop: nothing bounced on the MX" 'maillog mx: $(pf_log mx | grep -E "bounce" | head -2)' it_not pf_bounced mx
it_check "loop: nothing bounced on unit3" 'maillog unit3: $(pf_log unit3 | grep -E "bounce" | head -2)' \
    it_not pf_bounced unit3

# =============================================================== converged

# The replicas converge (the MX learns that loop@ is on unit2), and unit3
# retries. The message still carries unit3's hop=4, but the MX's directory
# has caught up with the generation unit3 stamped it with: the loop is over,
# the MX takes it (hop=5) and delivers it to unit2. Nothing is bounced.
gen_conv=$(it_publish_gen "$mx_replica")
route2="smtp:[127.0.0.1]:${SINK_PORT[unit2]}"
mx_route_is() {
    [ "$(timeout 5 postmap -q loop@example.com "socketmap:unix:${UP_MAP[mx]}:transportmx" 2>/dev/null)" = "$route2" ]
}
it_check "converged: the MX's unitpolicy routes loop@ to unit2" 'answer: $(postmap -q loop@example.com "socketmap:unix:${UP_MAP[mx]}:transportmx" 2>&1)' \
    it_wait_until 5 mx_route_is
# unitmilter is a process of its own, with its own check of the file: the
# MX has converged once it serves the new generation too (its verdict is
# then recorded, and every pooled connection switches at its next lookup).
it_check "converged: the MX's unitmilter serves generation $gen_conv" 'log: $(grep replica "$IT_WORK/mxmilter.log" | tail -2)' \
    it_wait_until 10 um_log_has mxmilter "replica: switched to generation $gen_conv\$"
# Traffic through the MX, so that its queue manager's cached resolution
# (30 s, one entry) is not the old route of loop@.
before=$(sink_rcpt_count unit2 bob@example.com)
it_smtp "$mxport" "$from" bob@example.com --header "Subject: traffic"
it_wait_until 20 eval '[ "$(sink_rcpt_count unit2 bob@example.com)" -gt '"$before"' ]' \
    || it_diag "the message to bob did not arrive"
u3mark=$(pf_log_mark unit3)
pf_flush unit3
pf_log_wait unit3 "$u3mark" 'to=<loop@example\.com>.*status=(sent|deferred)' 20
it_check "converged: the retry reaches unit2" \
    'unit2 has: $(sink_list unit2); maillog unit3: $(pf_log_since unit3 "$u3mark" | grep loop@ | tail -1)' \
    it_wait_until 20 sink_has_rcpt unit2 loop@example.com
it_check "converged: the MX logged the loop as over" 'log: $(grep -i loop "$IT_WORK/mxmilter.log" | tail -2)' \
    grep -q 'routing loop over at hop 4' "$IT_WORK/mxmilter.log"
hop=5
f=$(sink_file unit2 '^Message-Id: <loop\.1@')
it_expect_match "converged: unit2's copy carries one route, from the MX" \
    "^X-Unit-Route: hop=$hop; gen=$gen_conv; units=unit2; by=mx\\.it\\.invalid\$" "$(route_headers "$f")"
it_expect_eq "converged: unit2's copy carries exactly one route header" 1 "$(route_headers "$f" | grep -c .)"
it_check "converged: every queue is empty" 'queues: $(pf_queue mx | head -c 200) $(pf_queue unit3 | head -c 200)' \
    eval 'pf_wait_drained unit3 20 && pf_wait_drained mx 20'
it_check "converged: nothing bounced on the MX" 'maillog mx: $(pf_log mx | grep -E "bounce" | head -2)' \
    it_not pf_bounced mx
it_check "converged: nothing bounced on unit3" 'maillog unit3: $(pf_log unit3 | grep -E "bounce" | head -2)' \
    it_not pf_bounced unit3
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail mx 20; pf_log_tail unit3 20; um_log_tail mxmilter; um_log_tail u3milter; }

# =============================================================== local

# A local user on unit3 submits with sendmail(1) a message carrying a forged
# route and another X-Unit-* header. unit3's filter (trusted_networks
# 127.0.0.0/8) sees Postfix's stand-in client, localhost[127.0.0.1] with
# port 0, and trusts it not: both headers go and hop=1 is stamped; bob@ is
# on unit2, so unit3 sends it to the MX (trusting loopback), which counts
# hop=2 and relays it to unit2.
cat >"$IT_WORK/local.eml" <<'EOM'
From: <sender@sender.invalid>
To: <bob@example.com>
Subject: local submission
Message-Id: <local.1@sender.invalid>
X-Unit-Route: hop=3; gen=1; units=unit9; by=local.forger.invalid
X-Unit-Note: forged locally

submitted with sendmail(1)
EOM
timeout 20 sendmail -C "${PF_CONF[unit3]}" -f "$from" -i bob@example.com <"$IT_WORK/local.eml"
it_expect_eq "local: sendmail on unit3 takes the message" 0 "$?"
it_check "local: delivered to unit2" 'unit2 has: $(sink_list unit2); maillog unit3: $(pf_log unit3 | grep -i "local\.1\|milter" | tail -2)' \
    it_wait_until 30 eval '[ -n "$(sink_file unit2 "^Message-Id: <local\.1@")" ]'
f=$(sink_file unit2 '^Message-Id: <local\.1@')
it_expect_eq "local: one route, counted from unit3's hop=1" \
    "X-Unit-Route: hop=2; gen=$gen_conv; units=unit2; by=mx.it.invalid" "$(route_headers "$f")"
it_expect_eq "local: no X-Unit-* header but the route" \
    "X-Unit-Route" "$(unit_headers "$f" | sed 's/:.*//' | tr '\n' ' ' | sed 's/ $//')"
it_check "local: nothing of the forged values is left" 'headers: $(msg_headers "$f" | tr "\n" "|")' \
    it_not grep -Ei 'forger\.invalid|unit9|forged locally' "$f"
it_check "local: unit3's filter removed both as from an untrusted client" 'log: $(grep -i "local\|removed" "$IT_WORK/u3milter.log" | tail -n 3)' \
    um_log_has u3milter ': removed 2 X-Unit-\* header\(s\) from untrusted client=localhost\[127\.0\.0\.1\] \(local submission\)$'
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail unit3 20; um_log_tail u3milter; }

# =============================================================== refused replica

# A FIFO renamed over the MX's replica: the milter refuses it without
# opening it, logs it once (not once per pooled connection), and keeps
# serving the last good snapshot; a good replica after it is taken.
mkfifo "$IT_WORK/fifo" && mv -f "$IT_WORK/fifo" "$mx_replica"
sleep 0.3
for n in 1 2 3; do
    before=$(sink_rcpt_count unit2 bob@example.com)
    it_smtp "$mxport" "$from" bob@example.com --header "Subject: fifo $n"
    it_wait_until 20 eval '[ "$(sink_rcpt_count unit2 bob@example.com)" -gt '"$before"' ]' \
        || it_diag "message $n to bob did not arrive"
done
it_expect_eq "refused replica: the milter logs the FIFO once" 1 \
    "$(grep -c "warning: replica: refused $mx_replica: not_regular: not a regular file" "$IT_WORK/mxmilter.log")"
it_check "refused replica: mail still flows from the last good snapshot" 'unit2 has: $(sink_list unit2)' \
    sink_has_rcpt unit2 bob@example.com
gen_after=$(it_publish_gen "$mx_replica")
[ -n "$gen_after" ] || it_fatal "unitctl publish printed no generation"
[ "$IT_FAILED" -gt 0 ] && um_log_tail mxmilter

um_stop u3milter
um_stop mxmilter

# =============================================================== filter down

# milter_default_action = tempfail (the examples): without the filter the
# MX defers every message, it never accepts one unfiltered.
mark=$(pf_log_mark mx)
it_smtp "$mxport" "$from" alice@example.com --header "Subject: filter down"
it_expect_match "filter down: the MX answers 451 4.7.1" '^<[-~*]* *451 4\.7\.1 ' "$IT_SMTP_OUT"
it_check "filter down: nothing queued on the MX" 'queue holds $(pf_queue_count mx)' pf_queue_is mx 0
it_check "filter down: the maillog names the milter" 'maillog: $(pf_log_since mx "$mark" | grep -i milter | head -2)' \
    pf_log_has mx "$mark" 'warning: connect to Milter service unix:.*/unitmilter'
[ "$IT_FAILED" -gt 0 ] && pf_log_tail mx 10
it_summary
