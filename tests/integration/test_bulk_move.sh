#!/bin/bash
# test_bulk_move.sh: moving many mailboxes at once through a real Postfix MX
# (issue 15). One MX built from examples/mx/, three units: unit1 and unit2
# speak SMTP, unit3 LMTP (an smtp-sink in LMTP mode: a message sent to it
# over SMTP would fail, so a delivery there proves the route was used).
#
#   before   mail for eight mailboxes of unit1 reaches unit1
#   begin    `move begin --file` moves the eight to unit3 in one
#            transaction; `fleet wait` is the barrier before mail is counted
#   during   mail arrives (single and multi-recipient, with a recipient
#            that is not moving): held on the MX; `postqueue -f` sends
#            nothing to unit1 or unit3 and bounces nothing; the MX's
#            metrics count the held mail for unit1
#   finish   `move finish --file` + publish: the held mail reaches unit3 by
#            itself (the daemon's held-mail watcher), no command run; the
#            time from the MX serving the new generation to the last
#            delivery is measured and must stay under 30 s
#   after    new mail goes straight to unit3
#   totals   every message reached its unit exactly once, none reached the
#            old unit after the move began, none bounced, the queue is empty
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ ! -x "$IT_UNITPOLICY" ] || [ ! -x "$IT_UNITCTL" ]; then
    it_skip_all "unitpolicy or unitctl not built yet"
fi
it_init "$@"
command -v curl >/dev/null || it_skip_all "curl not installed (bash tools/install-deps.sh)"

from=sender@sender.invalid
movers=()
for i in 01 02 03 04 05 06 07 08; do movers+=("user$i@example.com"); done
keep=keep@example.com

# --------------------------------------------------------------- directory

sink_start unit1
sink_start unit2
sink_start unit3 lmtp
it_replica_paths
{
    ctl init &&
    ctl domain add example.com &&
    ctl unit add unit1 --nexthop "[127.0.0.1]:${SINK_PORT[unit1]}" &&
    ctl unit add unit2 --nexthop "[127.0.0.1]:${SINK_PORT[unit2]}" &&
    ctl unit add unit3 --nexthop "[127.0.0.1]:${SINK_PORT[unit3]}" --transport lmtp &&
    ctl mailbox add "$keep" --unit unit1 &&
    for m in "${movers[@]}"; do ctl mailbox add "$m" --unit unit1 || exit 1; done
} >/dev/null || it_fatal "unitctl could not build the test directory"
printf '%s\n' "${movers[@]}" >"$IT_WORK/movers.txt"
it_publish

# --------------------------------------------------------------- the MX

mxsock=$IT_WORK/mx
mkdir -p "$mxsock"
chmod 0755 "$mxsock"
pf_new mx
pf_main_fragment mx "$IT_EXAMPLES/mx/main.cf" \
    "s|unix:private/unitpolicy|unix:$mxsock/unitpolicy|g" \
    "s|unix:private/unitmap|unix:$mxsock/unitmap|g" \
    's|^\(non_\)\{0,1\}smtpd_milters = .*|\1smtpd_milters =|'
pf_master_fragment mx "$IT_EXAMPLES/mx/master.cf"
pf_start mx
port=${PF_PORT[mx]}

it_alloc_port metrics
it_spawn "$IT_WORK/unitpolicy.log" "$IT_UNITPOLICY" --db "$IT_REPLICA" \
    --policy-listen "unix:$mxsock/unitpolicy" --socketmap-listen "unix:$mxsock/unitmap" \
    --metrics "inet:127.0.0.1:$metrics" --hold-transport unithold --recipient-delimiter + \
    --held-mail-interval 2 --postfix-config-directory "${PF_CONF[mx]}" \
    --socket-mode 0666 --user nobody --log stderr
up_pid=$IT_LAST_PID
it_wait_until 10 eval '[ -S "$mxsock/unitmap" ] && it_port_open "$metrics"' ||
    it_fatal "unitpolicy did not start: $(tail -n 5 "$IT_WORK/unitpolicy.log")"
echo "mx http://127.0.0.1:$metrics/metrics" >"$IT_WORK/fleet.hosts"

# fleet_wait: unitctl's replica barrier: every host (here the MX) serves the
# primary's generation.
fleet_wait() { ctl fleet wait --hosts "$IT_WORK/fleet.hosts" --timeout 20 >"$IT_WORK/wait.out" 2>&1; }

# send SUBJECT RCPT[,RCPT...]: one message through the MX, accepted.
send() {
    it_smtp "$port" "$from" "$2" --header "Subject: $1"
    [[ $(it_data_reply) =~ ^250 ]] || it_not_ok "send $1" "not accepted: $(it_data_reply)"
}

# at UNIT ADDRESS: how many times ADDRESS reached UNIT.
at() { sink_rcpt_count "$1" "$2"; }

# all_at UNIT N: every mover reached UNIT exactly N times.
all_at() {
    local m
    for m in "${movers[@]}"; do [ "$(at "$1" "$m")" -eq "$2" ] || return 1; done
}

# counts UNIT: "address=count" for every mover (diagnostics).
counts() {
    local m
    for m in "${movers[@]}"; do printf '%s=%s ' "${m%@*}" "$(at "$1" "$m")"; done
}

bounced() { pf_log_has mx 0 'status=bounced|sender non-delivery notification'; }

# held_metric UNIT: the MX's count of messages held for UNIT.
held_metric() {
    curl -s -m 5 "http://127.0.0.1:$metrics/metrics" |
        sed -n "s/^unitpolicy_held_messages{unit=\"$1\"} \([0-9]*\).*/\1/p"
}

# --------------------------------------------------------------- before

for m in "${movers[@]}"; do send "before $m" "$m"; done
it_check "before: every mailbox's mail at unit1" 'unit1: $(counts unit1)' it_wait_until 30 all_at unit1 1
it_check "before: queue drained" '$(pf_queue_count mx) left' pf_wait_drained mx 20

# --------------------------------------------------------------- begin

it_check "move begin --file: the eight mailboxes in one call" 'unitctl failed' \
    eval 'ctl move begin --file "$IT_WORK/movers.txt" --to unit3 >/dev/null'
it_publish
it_check "move begin: fleet wait returns once the MX serves it" '$(cat "$IT_WORK/wait.out")' fleet_wait

# --------------------------------------------------------------- during

mark=$(pf_log_mark mx)
for m in "${movers[@]}"; do send "during $m" "$m"; done
send "during, to all" "$(IFS=,; echo "${movers[*]}"),$keep"
held=$((${#movers[@]} + 1))
it_check "during: $held messages held on the MX" 'queue: $(pf_queue_count mx deferred) deferred' \
    pf_wait_queue mx "$held" deferred 30
it_check "during: the one not moving is delivered" 'unit1 keep: $(at unit1 "$keep")' \
    it_wait_until 20 eval '[ "$(at unit1 "$keep")" -eq 1 ]'
pf_flush mx
sleep 3
pf_wait_settled mx 20
it_check "during: postqueue -f sends nothing to unit1" 'unit1: $(counts unit1)' all_at unit1 1
it_check "during: postqueue -f sends nothing to unit3" 'unit3: $(counts unit3)' all_at unit3 0
it_check "during: still held after postqueue -f" 'queue: $(pf_queue_count mx) messages' pf_queue_is mx "$held"
it_check "during: nothing bounced" '$(pf_log mx | grep -E "status=bounced" | head -2)' it_not bounced
it_check "during: the MX counts the held mail for unit1" 'metric: $(held_metric unit1)' \
    it_wait_until 10 eval '[ "$(held_metric unit1)" = "$held" ]'
status=$(ctl fleet status --hosts "$IT_WORK/fleet.hosts" 2>&1)
it_diag "fleet status during the move:" "$status"
it_expect_match "during: fleet status shows the held mail" "unit1[ =:]+$held" "$status"

# --------------------------------------------------------------- finish

it_check "move finish --file" 'unitctl failed' eval 'ctl move finish --file "$IT_WORK/movers.txt" >/dev/null'
it_publish
published=$(date +%s.%N)
it_check "move finish: fleet wait returns once the MX serves it" '$(cat "$IT_WORK/wait.out")' fleet_wait
served=$(date +%s.%N)
it_check "finish: the held mail reaches unit3 with no command" 'unit3: $(counts unit3)' \
    it_wait_until 60 all_at unit3 2
released=$(date +%s.%N)
seconds=$(awk -v a="$served" -v b="$released" 'BEGIN { printf "%.1f", b - a }')
it_diag "held mail delivered $seconds s after the MX served the finished move" \
    "($(awk -v a="$published" -v b="$released" 'BEGIN { printf "%.1f", b - a }') s after the publish)"
it_check "finish: released within 30 s" "took $seconds s" awk -v s="$seconds" 'BEGIN { exit !(s < 30) }'
it_check "finish: queue drained" '$(pf_queue_count mx) left' pf_wait_drained mx 20
it_check "finish: delivered over LMTP" 'maillog: $(pf_log_since mx "$mark" | grep "status=sent" | head -2)' \
    pf_log_has mx "$mark" 'postfix/lmtp\[.*to=<user01@example.com>.*relay=127\.0\.0\.1.*status=sent'

# --------------------------------------------------------------- after

for m in "${movers[@]}"; do send "after $m" "$m"; done
it_check "after: new mail goes straight to unit3" 'unit3: $(counts unit3)' it_wait_until 30 all_at unit3 3

# --------------------------------------------------------------- totals

it_check "totals: unit3 got each message once" 'unit3: $(counts unit3)' all_at unit3 3
it_check "totals: unit1 got only the mail from before the move" 'unit1: $(counts unit1)' all_at unit1 1
it_check "totals: unit2 got none" 'unit2: $(sink_list unit2)' sink_count_is unit2 0
it_expect_eq "totals: the mailbox that stayed got its one, once" 1 "$(at unit1 "$keep")"
it_check "totals: nothing bounced" '$(pf_log mx | grep -E "status=bounced" | head -2)' it_not bounced
it_check "totals: queue empty" '$(pf_queue_count mx) left' pf_queue_is mx 0
it_check "totals: the held count is back to zero" 'metric: $(held_metric unit1)' \
    it_wait_until 10 eval '[ "$(held_metric unit1)" = 0 ] || [ -z "$(held_metric unit1)" ]'

it_stop_daemon unitpolicy "$up_pid" 5
[ "$IT_FAILED" -gt 0 ] && { pf_log_tail mx 40; tail -n 20 "$IT_WORK/unitpolicy.log" | sed 's/^/#   /'; }
pf_teardown mx
it_summary
