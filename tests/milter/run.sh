#!/bin/bash
# tests/milter/run.sh: drives unitmilter through the milter protocol with
# Debian's miltertest(8), one Lua script per rule (tests/milter/*.lua).
#
# It makes a small directory with unitctl (domain example.com; units u1 and
# u2; a@ and b@ on u1, c@ on u2, d@ on u2 disabled; sales@ -> a@, c@;
# team@ -> a@, d@), publishes a replica, and starts five filters on unix sockets in a temporary directory:
#   sock_mx           role mx, trusted_networks 10.0.0.0/8 2001:db8::/32,
#                     max_hops 6, hostname mx.test
#   sock_alias        the same with expand_aliases
#   sock_nodb         a database that does not exist (tempfail_action tempfail)
#   sock_nodb_accept  the same with tempfail_action accept
#   sock_doubt        role mx with expand_aliases, whose replica is replaced
#                     by a FIFO once it serves (a replacement refused: the
#                     negatives of the snapshot it keeps are in doubt)
# Each script gets the sockets and the replica's generation (gen) as globals
# (-D). Prints "ok NAME" or "not ok NAME" with the script's output, then
#   milter: N passed, M failed
# and exits non-zero when anything failed. Last, the mx filter's replica is
# replaced twice with no mail: it must not keep the replaced files open.
# The filters are stopped (by pid) and the directory removed on exit; their
# stderr is shown for failures.
# BUILD_DIR selects the build (default build); UNITCTL and UNITMILTER name
# the binaries directly.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
unitctl=${UNITCTL:-$build/src/ctl/unitctl}
unitmilter=${UNITMILTER:-$build/src/milter/unitmilter}

for need in "$unitctl" "$unitmilter"; do
    if [ ! -x "$need" ]; then
        echo "not ok setup: $need is missing (build it, or set UNITCTL/UNITMILTER)"
        echo "milter: 0 passed, 1 failed"
        exit 1
    fi
done
if ! command -v miltertest >/dev/null; then
    echo "not ok setup: miltertest is not installed (apt-get install miltertest)"
    echo "milter: 0 passed, 1 failed"
    exit 1
fi

tmp=$(mktemp -d /tmp/unitmilter-test.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# The directory.
db=$tmp/units.db
{
    "$unitctl" --db "$db" init &&
    "$unitctl" --db "$db" domain add example.com &&
    "$unitctl" --db "$db" unit add u1 --nexthop '[u1.example.com]' &&
    "$unitctl" --db "$db" unit add u2 --nexthop '[u2.example.com]' &&
    "$unitctl" --db "$db" mailbox add a@example.com --unit u1 &&
    "$unitctl" --db "$db" mailbox add b@example.com --unit u1 &&
    "$unitctl" --db "$db" mailbox add c@example.com --unit u2 &&
    "$unitctl" --db "$db" alias add sales@example.com a@example.com c@example.com &&
    "$unitctl" --db "$db" mailbox add d@example.com --unit u2 &&
    "$unitctl" --db "$db" mailbox set d@example.com --state disabled &&
    "$unitctl" --db "$db" alias add team@example.com a@example.com d@example.com &&
    "$unitctl" --db "$db" publish "$tmp/replica.db"
} >"$tmp/setup.log" 2>&1
gen=$(sed -n -E 's/^published .* generation ([0-9]+) .*/\1/p' "$tmp/setup.log")
if [ -z "$gen" ]; then
    echo "not ok setup: cannot make the directory"
    sed 's/^/# /' "$tmp/setup.log"
    echo "milter: 0 passed, 1 failed"
    exit 1
fi

# The filters.
start() {
    local name=$1
    shift
    "$unitmilter" --listen "unix:$tmp/$name.sock" --log stderr --debug --hostname mx.test "$@" \
        2>"$tmp/$name.log" &
    pids+=($!)
}
common=(--db "$tmp/replica.db" --trusted-networks '10.0.0.0/8 2001:db8::/32' --max-hops 6)
start mx "${common[@]}"
start alias "${common[@]}" --expand-aliases
start nodb --db "$tmp/missing.db"
start nodb_accept --db "$tmp/missing.db" --tempfail-action accept
cp "$tmp/replica.db" "$tmp/doubt.db"
start doubt --db "$tmp/doubt.db" --trusted-networks '10.0.0.0/8' --expand-aliases
for name in mx alias nodb nodb_accept doubt; do
    for _ in $(seq 100); do
        [ -S "$tmp/$name.sock" ] && break
        sleep 0.1
    done
done
# One message makes the doubt filter serve its snapshot; then a replacement
# it cannot serve arrives.
cat >"$tmp/warm.lua" <<'LUA'
local conn = mt.connect("unix:" .. sock_doubt, 40, 0.25)
assert(conn and mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
assert(mt.rcptto(conn, "<a@example.com>") == nil and mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE)
mt.disconnect(conn)
LUA
miltertest -D sock_doubt="$tmp/doubt.sock" -s "$tmp/warm.lua" >"$tmp/warm.log" 2>&1 ||
    echo "# warming the doubt filter failed: $(cat "$tmp/warm.log")"
mkfifo "$tmp/fifo" && mv "$tmp/fifo" "$tmp/doubt.db"

passed=0
failed=0
report() {  # NAME STATUS OUTPUT
    if [ "$2" -eq 0 ]; then
        echo "ok $1"
        passed=$((passed + 1))
    else
        echo "not ok $1"
        printf '%s\n' "$3" | sed 's/^/# /'
        failed=$((failed + 1))
    fi
}
for script in "$here"/*.lua; do
    name=$(basename "$script" .lua)
    # miltertest exits 1 on a failed assert without saying which: print it.
    {
        echo 'local ok, err = pcall(function()'
        cat "$script"
        echo 'end)'
        echo 'if not ok then print("error: " .. tostring(err)) error(err) end'
    } >"$tmp/$name.lua"
    out=$(timeout 120 miltertest -D sock_mx="$tmp/mx.sock" -D sock_alias="$tmp/alias.sock" \
        -D sock_nodb="$tmp/nodb.sock" -D sock_nodb_accept="$tmp/nodb_accept.sock" -D sock_doubt="$tmp/doubt.sock" -D gen="$gen" -D gen_older="$((gen - 1))" -D gen_newer="$((gen + 1))" \
        -s "$tmp/$name.lua" 2>&1)
    report "$name" $? "$out"
done

# A 64 KiB header (Postfix sends each header in one packet, up to its
# header_size_limit of 100 KiB) crashes miltertest itself, so this one goes
# through a minimal milter client (raw_milter.py) from an untrusted client:
# the header must be deleted, the route added and the message accepted.
out=$(timeout 60 python3 - "$here" "$tmp/mx.sock" <<'PYTHON' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
from raw_milter import session
edits = session(sys.argv[2], b"outside.example.net", 25, b"192.0.2.10",
                [(b"X-Unit-Big", b"u1," * 21846)])  # 65538 bytes
deleted = any(c == b"m" and d[4:] == b"X-Unit-Big\0\0" for c, d in edits)
added = any(c == b"h" and d.startswith(b"X-Unit-Route\0hop=1;") for c, d in edits)
if not deleted or not added:
    sys.exit("deleted=%s added=%s" % (deleted, added))
PYTHON
)
report header_64k $? "$out"

# forged_flood.lua's rejections are logged with the queue id and the count.
grep -E 'warning: 4FL00D2: reject: 11 X-Unit-\* headers from untrusted client=peer\.example\.net\[192\.0\.2\.10\], more than max_stripped_headers \(10\): 550 5\.7\.1 too many forged routing headers$' \
    "$tmp/mx.log" >/dev/null
report forged_flood_log $? "$(grep -E 'FL00D|reject' "$tmp/mx.log" | tail -n 5)"

# alias_expand.lua's edits are logged with Postfix's field names: to=<...>
# for the recipient, orig_to=<...> for the alias a target was added for.
grep -E '(^|: )4AL1AS: alias: removed to=<sales@example\.com>$' "$tmp/alias.log" >/dev/null &&
    grep -E '(^|: )4AL1AS: alias: added to=<c@example\.com> orig_to=<sales@example\.com>$' "$tmp/alias.log" >/dev/null
report alias_expand_log $? "$(grep -E '4AL1AS' "$tmp/alias.log" | tail -n 5)"

# Mail without an SMTP client: Postfix's non_smtpd_milters present it as
# localhost, 127.0.0.1 and port 0 (cleanup_milter.c). miltertest always
# sends a port, so this goes through the same minimal client: a connect from
# 10.1.2.3 (inside trusted_networks) with port 0 is not trusted: its route
# is deleted and hop=1 added, not incremented to hop=3.
out=$(timeout 60 python3 - "$here" "$tmp/mx.sock" <<'PYTHON' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
from raw_milter import session
edits = session(sys.argv[2], b"localhost", 0, b"10.1.2.3",
                [(b"X-Unit-Route", b"hop=2; gen=1; units=u9; by=local.forger")])
deleted = any(c == b"m" and d[4:].startswith(b"X-Unit-Route\0\0") for c, d in edits)
added = any(c == b"h" and d.startswith(b"X-Unit-Route\0hop=1;") for c, d in edits)
if not deleted or not added or len(edits) != 2:
    sys.exit("port 0 from a trusted address: edits %r" % edits)
PYTHON
)
report local_submission_untrusted $? "$out"

# An idle filter lets go of a replaced replica: the mx filter has served
# messages from replica.db; after two replacements by rename and no mail,
# none of its descriptors may be left on a deleted file (each would pin the
# file's disk space until the next message).
"$unitctl" --db "$db" publish "$tmp/replica.db" >/dev/null 2>&1 &&
    "$unitctl" --db "$db" publish "$tmp/replica.db" >/dev/null 2>&1
held=
for _ in $(seq 50); do
    held=$(ls -l "/proc/${pids[0]}/fd" 2>/dev/null | grep -c 'replica\.db.* (deleted)')
    [ "$held" -eq 0 ] && break
    sleep 0.2
done
report idle_replaced_replica "$([ "$held" -eq 0 ]; echo $?)" "$held descriptor(s) of the idle filter on deleted replicas after 10 s"

# A pooled connection's lookups share one read transaction for up to 100 ms
# (snapshot_hold), and the idle ones end it: half a second after a message,
# a writer that does not wait for locks changes the replica in place at its
# first try, and the next message sees the change.
out=$(timeout 60 python3 - "$here" "$tmp/mx.sock" "$tmp/replica.db" <<'PYTHON' 2>&1
import sqlite3, sys, time
sys.path.insert(0, sys.argv[1])
from raw_milter import session
def route_units():
    edits = session(sys.argv[2], b"outside.example.net", 25, b"192.0.2.10", [])
    routes = [d for c, d in edits if c == b"h" and d.startswith(b"X-Unit-Route\0")]
    return routes[0].split(b"units=")[1].split(b";")[0] if routes else None
before = route_units()
time.sleep(0.5)
try:
    db = sqlite3.connect(sys.argv[3], timeout=0)
    db.execute("UPDATE mailboxes SET unit = 'u2' WHERE address = 'a@example.com'")
    db.commit()
    db.close()
except sqlite3.OperationalError as e:
    sys.exit("in-place write half a second after a message: %s" % e)
after = route_units()
if before != b"u1" or after != b"u2":
    sys.exit("route units before the change %r, after %r" % (before, after))
PYTHON
)
report in_place_change_seen $? "$out"

for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "not ok filter $pid died"
        failed=$((failed + 1))
    fi
done
if [ "$failed" -gt 0 ]; then
    for name in mx alias nodb nodb_accept doubt; do
        echo "# $name filter log:"
        tail -n 20 "$tmp/$name.log" | sed 's/^/#   /'
    done
fi
echo "milter: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
