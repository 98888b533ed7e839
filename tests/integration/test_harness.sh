#!/bin/bash
# test_harness.sh: proves the integration harness (lib.sh) with Postfix
# alone, no unitpolicy: an MX instance relays a served domain to two
# smtp-sink "units" with Postfix's own sqlite: tables read from a database
# made with unitctl (the baseline configuration (b), tests/integration/
# baseline/), and holds mail on the unithold transport (defer_transports,
# an lmtp clone to a socket that cannot exist) until its route changes.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init "$@"

# --- the directory: two units on sinks, three mailboxes, an alias
sink_start unit1
sink_start unit2
it_replica_paths
{
    ctl init &&
    ctl domain add example.com &&
    ctl unit add unit1 --nexthop "[127.0.0.1]:${SINK_PORT[unit1]}" &&
    ctl unit add unit2 --nexthop "[127.0.0.1]:${SINK_PORT[unit2]}" &&
    ctl mailbox add alice@example.com --unit unit1 &&
    ctl mailbox add bob@example.com --unit unit2 &&
    ctl mailbox add carol@example.com --unit unit1 &&
    ctl mailbox add dave@example.com --unit unit2 &&
    ctl alias add team@example.com alice@example.com bob@example.com
} >/dev/null || it_fatal "unitctl could not build the test directory"
it_publish

# --- the MX: baseline sqlite: tables plus the example's unithold service
maps=$IT_WORK/maps
mkdir -p "$maps"
for f in "$IT_ROOT"/tests/integration/baseline/*.cf; do
    [ "$(basename "$f")" = main.cf ] && continue
    sed -e "s|@DB@|$IT_REPLICA|" "$f" >"$maps/$(basename "$f")"
done
chmod 0644 "$maps"/*.cf
pf_new mx
pf_main_fragment mx "$IT_ROOT/tests/integration/baseline/main.cf" "s|@DIR@|$maps|"
pf_master_fragment mx "$IT_EXAMPLES/mx/master.cf"
pf_start mx
port=${PF_PORT[mx]}
it_ok "postfix instance mx listens on 127.0.0.1:$port"

from=sender@sender.invalid

# --- a known user on each unit arrives at that unit's sink, only there
it_smtp "$port" "$from" alice@example.com --header "Subject: to alice"
it_expect_match "alice: accepted" '^250 ' "$(it_data_reply)"
it_smtp "$port" "$from" bob@example.com --header "Subject: to bob"
it_expect_match "bob: accepted" '^250 ' "$(it_data_reply)"
sink_wait_count unit1 1 && sink_wait_count unit2 1
it_check "alice: delivered to unit1" 'unit1 has: $(sink_list unit1)' sink_has_rcpt unit1 alice@example.com
it_check "bob: delivered to unit2" 'unit2 has: $(sink_list unit2)' sink_has_rcpt unit2 bob@example.com
it_check "alice: not at unit2" "unit2 got alice" it_not sink_has_rcpt unit2 alice@example.com
it_check "queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20

# --- an address extension: Postfix's own tables strip it (recipient_delimiter)
it_smtp "$port" "$from" Alice+tag@example.com
it_expect_match "Alice+tag: accepted" '^250 ' "$(it_data_reply)"
it_check "Alice+tag: delivered to unit1" 'unit1 has: $(sink_list unit1)' \
    it_wait_until 20 sink_has_rcpt unit1 Alice+tag@example.com

# --- an unknown recipient: 550 at RCPT, nothing queued
mark=$(pf_log_mark mx)
it_smtp "$port" "$from" nobody@example.com
it_expect_match "unknown: 550 5.1.1 at RCPT" '^550 5\.1\.1 .*Recipient address rejected' \
    "$(it_rcpt_reply nobody@example.com)"
it_check "unknown: nothing queued" 'the queue holds $(pf_queue_count mx)' pf_queue_is mx 0
it_check "unknown: logged as NOQUEUE reject" "no NOQUEUE line in the maillog" \
    pf_log_wait mx "$mark" 'NOQUEUE: reject: RCPT from .*nobody@example.com' 5

# --- a foreign domain from outside mynetworks: relay denied
it_smtp "$port" "$from" someone@elsewhere.invalid
it_expect_match "foreign domain: relay access denied" '^554 5\.7\.1 ' \
    "$(it_rcpt_reply someone@elsewhere.invalid)"

# --- an alias over two units: one copy at each
before1=$(sink_count unit1)
before2=$(sink_count unit2)
alice1=$(sink_rcpt_count unit1 alice@example.com)
bob2=$(sink_rcpt_count unit2 bob@example.com)
it_smtp "$port" "$from" team@example.com --header "Subject: to team"
it_expect_match "alias: accepted" '^250 ' "$(it_data_reply)"
sink_wait_count unit1 $((before1 + 1)) && sink_wait_count unit2 $((before2 + 1))
pf_wait_drained mx 20
it_expect_eq "alias: one copy at unit1" $((alice1 + 1)) "$(sink_rcpt_count unit1 alice@example.com)"
it_expect_eq "alias: one copy at unit2" $((bob2 + 1)) "$(sink_rcpt_count unit2 bob@example.com)"

# --- the hold transport: carol moves from unit1 to unit2
ctl move begin carol@example.com --to unit2 >/dev/null || it_fatal "move begin failed"
it_publish
pf_reload mx   # sqlite: keeps reading the replaced file until reload
before1=$(sink_count unit1)
before2=$(sink_count unit2)
mark=$(pf_log_mark mx)
it_smtp "$port" "$from" carol@example.com --header "Subject: to carol while moving"
it_expect_match "moving: accepted" '^250 ' "$(it_data_reply)"
it_check "moving: deferred on the MX" 'queue: $(pf_queue mx | head -c 300)' \
    pf_wait_queue mx 1 deferred 20
it_check "moving: reason 'deferred transport'" 'queue: $(pf_queue mx | head -c 300)' \
    pf_queue_has mx 'deferred transport'
it_check "moving: logged status=deferred" "maillog has no deferred line for carol" \
    pf_log_wait mx "$mark" 'to=<carol@example.com>.*status=deferred \(deferred transport\)' 10
sleep 2
it_expect_eq "moving: nothing reached unit1" "$before1" "$(sink_count unit1)"
it_expect_eq "moving: nothing reached unit2" "$before2" "$(sink_count unit2)"
it_check "moving: still deferred after 2 s" 'queue: $(pf_queue mx | head -c 300)' \
    pf_queue_is mx 1 deferred

ctl move finish carol@example.com >/dev/null || it_fatal "move finish failed"
it_publish
# The reload also empties the queue manager's resolve cache (its last
# answer, kept 30 s), which would otherwise still say unithold for carol.
pf_reload mx
mark=$(pf_log_mark mx)
pf_flush mx
it_check "moved: delivered to unit2 after postqueue -f" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 20 sink_has_rcpt unit2 carol@example.com
it_check "moved: not at unit1" "unit1 got carol" it_not sink_has_rcpt unit1 carol@example.com
it_check "moved: queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20
it_check "moved: logged relay=unit2's sink" "no sent line" \
    pf_log_wait mx "$mark" "to=<carol@example.com>.*relay=127.0.0.1\[127.0.0.1\]:${SINK_PORT[unit2]}.*status=sent" 10

# --- a unit that is down: its mail waits, and leaves when the unit is back
ctl unit set unit2 --state down >/dev/null || it_fatal "unit set down failed"
it_publish
pf_reload mx
before2=$(sink_count unit2)
it_smtp "$port" "$from" dave@example.com --header "Subject: to dave while unit2 is down"
it_expect_match "unit down: accepted" '^250 ' "$(it_data_reply)"
it_check "unit down: deferred on the MX" 'queue: $(pf_queue mx | head -c 300)' \
    pf_wait_queue mx 1 deferred 20
sleep 2
it_check "unit down: still deferred after 2 s" 'queue: $(pf_queue mx | head -c 300)' \
    pf_queue_is mx 1 deferred
it_expect_eq "unit down: nothing reached unit2" "$before2" "$(sink_count unit2)"
ctl unit set unit2 --state active >/dev/null || it_fatal "unit set active failed"
it_publish
pf_reload mx
mark=$(pf_log_mark mx)
pf_flush mx
it_check "unit up: delivered to unit2 after postqueue -f" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 20 sink_has_rcpt unit2 dave@example.com
it_check "unit up: queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20
it_check "unit up: sent by smtp, not unithold" 'maillog: $(pf_log_since mx "$mark" | grep dave)' \
    pf_log_has mx "$mark" 'postfix/smtp\[.*to=<dave@example.com>.*status=sent'

# --- a fact the design depends on: "postqueue -f" (like "sendmail -q")
# overrides defer_transports: mail still routed to unithold is then handed
# to unithold, an lmtp clone whose nexthop is a socket under /dev/null,
# and is deferred again (Not a directory): never sent, never bounced.
ctl unit set unit2 --state down >/dev/null || it_fatal "unit set down failed"
it_publish
pf_reload mx
before2=$(sink_count unit2)
it_smtp "$port" "$from" dave@example.com --header "Subject: to dave, flushed while held"
it_check "held mail: deferred" 'queue: $(pf_queue mx | head -c 300)' pf_wait_queue mx 1 deferred 20
mark=$(pf_log_mark mx)
pf_flush mx
it_check "held mail: postqueue -f only defers it again at the hold nexthop" \
    'maillog: $(pf_log_since mx "$mark" | grep dave)' \
    pf_log_wait mx "$mark" 'postfix/unithold/lmtp\[.*to=<dave@example.com>.*status=deferred .*unitpolicy-held/unit2\]: Not a directory' 20
it_check "held mail: still deferred" 'queue: $(pf_queue mx | head -c 300)' pf_queue_is mx 1 deferred
it_expect_eq "held mail: nothing reached unit2" "$before2" "$(sink_count unit2)"
ctl unit set unit2 --state active >/dev/null
it_publish
pf_reload mx
pf_flush mx
it_check "held mail: delivered once unit2 is back" 'unit2 has: $(sink_list unit2)' \
    it_wait_until 20 eval '[ "$(sink_count unit2)" -gt "$before2" ]'
it_check "held mail: queue drained" '$(pf_queue_count mx) messages left' pf_wait_drained mx 20

# --- nothing bounced, nothing went anywhere else
it_check "no bounces" '$(pf_log mx | grep -E "status=bounced|sender non-delivery" | head -3)' \
    it_not pf_log_has mx 0 'status=bounced|sender non-delivery notification'
it_check "no fatal errors in the maillog" '$(pf_log mx | grep -E "fatal:|panic:" | head -3)' \
    it_not pf_log_has mx 0 'fatal:|panic:'

[ "$IT_FAILED" -gt 0 ] && pf_log_tail mx 40
it_summary
