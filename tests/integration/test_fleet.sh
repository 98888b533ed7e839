#!/bin/bash
# test_fleet.sh: unitctl fleet status and fleet wait over three real
# unitpolicy daemons on loopback, each with its own replica file and
# metrics port: two serve the new generation and one lags (wait names it,
# then returns once the snapshot is copied to it); a replacement from
# another primary refused on one host and served, by takeover, on another
# (named by wait); a stopped daemon and silent hosts (not answering,
# reported concurrently within one timeout).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init "$@"

IT_DB=$IT_WORK/primary.db
{
    ctl init &&
    ctl domain add example.com &&
    ctl unit add unit1 --nexthop '[unit1.example.com]' &&
    ctl mailbox add alice@example.com --unit unit1
} >/dev/null || it_fatal "unitctl could not build the test directory"

# install SNAPSHOT HOST: copies a published snapshot to HOST's replica as an
# operator would (a copy beside it, then a rename).
install() { cp "$1" "$IT_WORK/$2.db.tmp" && chmod 0644 "$IT_WORK/$2.db.tmp" && mv "$IT_WORK/$2.db.tmp" "$IT_WORK/$2.db"; }
it_publish "$IT_WORK/old.db"
old_generation=$(sqlite3 "$IT_WORK/old.db" "SELECT value FROM meta WHERE key = 'generation'")

hosts=$IT_WORK/fleet.hosts
echo "# three MXs" >"$hosts"
declare -A pid port
for h in mx1 mx2 mx3; do
    install "$IT_WORK/old.db" "$h"
    it_alloc_port "port[$h]"
    it_spawn "$IT_WORK/$h.log" "$IT_UNITPOLICY" --db "$IT_WORK/$h.db" --log stderr \
        --socketmap-listen "unix:$IT_WORK/$h.map" --metrics "inet:127.0.0.1:${port[$h]}"
    pid[$h]=$IT_LAST_PID
    echo "$h http://127.0.0.1:${port[$h]}/metrics" >>"$hosts"
    it_check "$h: metrics port open" "nothing on ${port[$h]}: $(tail -n 3 "$IT_WORK/$h.log")" \
        it_wait_until 10 it_port_open "${port[$h]}"
done

# A new generation, copied to two hosts of three.
ctl mailbox add bob@example.com --unit unit1 >/dev/null || it_fatal "mailbox add failed"
it_publish "$IT_WORK/new.db"
generation=$(sqlite3 "$IT_WORK/new.db" "SELECT value FROM meta WHERE key = 'generation'")
primary_id=$(sqlite3 "$IT_WORK/new.db" "SELECT value FROM meta WHERE key = 'primary_id'")
install "$IT_WORK/new.db" mx1
install "$IT_WORK/new.db" mx2

out=$(ctl fleet wait --hosts "$hosts" --generation "$generation" --timeout 3 2>&1)
rc=$?
it_expect_eq "wait: exits 1 at the timeout while mx3 lags" 1 "$rc"
it_expect_match "wait: names mx3 with the generation it serves" "^mx3: serves generation $old_generation\$" "$out"
it_check "wait: names mx3 only" "$out" eval '! printf "%s\n" "$out" | grep -E "^mx[12]:" >/dev/null'

out=$(ctl fleet status --hosts "$hosts" 2>&1)
rc=$?
it_expect_eq "status: exits 0 when every host answered" 0 "$rc"
it_expect_match "status: mx1 serves the new generation" \
    "^mx1  unitpolicy  generation $generation  age [0-9]+s  primary ${primary_id:0:8}\$" "$out"
it_expect_match "status: mx3 serves the old one" "^mx3  unitpolicy  generation $old_generation  " "$out"

# The default generation is the primary's own; the hosts come from fleet_hosts.
echo "fleet_hosts = $hosts" >"$IT_WORK/unitctl.conf"
out=$(ctl --config "$IT_WORK/unitctl.conf" fleet wait --timeout 1 2>&1)
it_expect_match "wait: without --generation, the primary's generation" "^mx3: serves generation $old_generation\$" "$out"

# The copy reaches the lagging host: wait returns.
install "$IT_WORK/new.db" mx3
start=$SECONDS
out=$(ctl fleet wait --hosts "$hosts" --generation "$generation" --timeout 20 2>&1)
rc=$?
it_expect_eq "wait: exits 0 once every host serves the generation" 0 "$rc"
it_expect_match "wait: says how long it took" "^every host \(3\) serves generation $generation or later, after [0-9.]+ s\$" "$out"
it_check "wait: within a few seconds of the copy" "took $((SECONDS - start)) s" eval '[ $((SECONDS - start)) -le 8 ]'

# Another primary: refused on mx2 (a plain copy), served on mx3 (published with --takeover).
"$IT_UNITCTL" --db "$IT_WORK/other.db" init >/dev/null || it_fatal "second primary"
for _ in 1 2 3 4 5 6; do "$IT_UNITCTL" --db "$IT_WORK/other.db" domain add "d$_.example" >/dev/null; done
"$IT_UNITCTL" --db "$IT_WORK/other.db" publish "$IT_WORK/other-snapshot.db" >/dev/null || it_fatal "publish other"
install "$IT_WORK/other-snapshot.db" mx2
cp "$IT_WORK/mx3.db" "$IT_WORK/takeover.db"
"$IT_UNITCTL" --db "$IT_WORK/other.db" publish --takeover "$IT_WORK/takeover.db" >/dev/null || it_fatal "takeover"
install "$IT_WORK/takeover.db" mx3
other_id=$(sqlite3 "$IT_WORK/other.db" "SELECT value FROM meta WHERE key = 'primary_id'")
refused() { ctl fleet status --hosts "$hosts" 2>&1 | grep -E '^mx2 .*replacement refused \(foreign, [0-9]+s ago\)' >/dev/null; }
it_check "status: mx2's refusal of another primary's file, with its reason" \
    '$(ctl fleet status --hosts "$hosts" 2>&1)' it_wait_until 10 refused
taken() { ctl fleet status --hosts "$hosts" 2>&1 | grep -E "^mx3 .* primary ${other_id:0:8}" >/dev/null; }
it_check "status: mx3 serves the other primary" '$(ctl fleet status --hosts "$hosts" 2>&1)' it_wait_until 10 taken
out=$(ctl fleet wait --hosts "$hosts" --generation "$generation" --timeout 1 2>&1)
rc=$?
it_expect_eq "wait: a host of another primary lags" 1 "$rc"
it_expect_match "wait: names it (the primary most hosts serve)" "^mx3: serves another primary \(${other_id:0:8}, " "$out"
out=$(ctl fleet wait --hosts "$hosts" --timeout 1 2>&1)
it_expect_match "wait: names it (the primary's own identity)" "^mx3: serves another primary \(${other_id:0:8}, " "$out"

# A stopped daemon does not answer; nor do silent hosts, all within one timeout.
it_stop_daemon mx1 "${pid[mx1]}" 10
it_alloc_port silent
it_spawn "$IT_WORK/silent.log" python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $silent)); s.listen(64); time.sleep(60)"
it_wait_until 10 it_port_open "$silent"
cp "$hosts" "$IT_WORK/silent.hosts"
for i in 1 2 3 4 5 6; do echo "silent$i http://127.0.0.1:$silent/metrics" >>"$IT_WORK/silent.hosts"; done
start=$(date +%s.%N)
out=$(ctl fleet status --hosts "$IT_WORK/silent.hosts" --timeout 2 2>&1)
rc=$?
took=$(echo "$(date +%s.%N) - $start" | bc)
it_expect_eq "status: exits 1 when a host did not answer" 1 "$rc"
it_expect_match "status: the stopped daemon does not answer" '^mx1  no answer: connect: Connection refused$' "$out"
it_expect_match "status: a silent host is reported at its deadline" '^silent6  no answer: no answer within 2000 ms$' "$out"
it_expect_match "status: the others still answer" "^mx2  unitpolicy  generation $generation  " "$out"
it_expect_match "status: says how many did not answer" '^unitctl: fleet status: 7 of 9 hosts did not answer$' "$out"
it_check "status: six silent hosts take one timeout, not six" "took $took s" \
    eval '[ "$(echo "$took < 4" | bc)" = 1 ]'
out=$(ctl fleet wait --hosts "$hosts" --generation "$generation" --timeout 1 2>&1)
it_expect_match "wait: names the stopped daemon" '^mx1: no answer: connect: Connection refused$' "$out"

# Bad hosts files are usage the operator can fix: file and line.
printf 'mx1 http://a:1/\nmx1 https://b/\n' >"$IT_WORK/bad.hosts"
out=$(ctl fleet status --hosts "$IT_WORK/bad.hosts" 2>&1)
it_expect_match "status: a bad hosts file names its line" "^unitctl: $IT_WORK/bad.hosts:2: bad URL 'https://b/'" "$out"
out=$(ctl fleet status 2>&1)
rc=$?
it_expect_eq "status: no hosts file is bad usage" 2 "$rc"

it_summary
