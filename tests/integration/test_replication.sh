#!/bin/bash
# test_replication.sh: the replication walkthrough of README.md, as a test.
# The primary is changed with unitctl, "unitctl publish" writes a snapshot,
# and rsync(1) copies it into the replica directories of two hosts, where a
# running unitpolicy reads each copy:
#
#   change      a mailbox added and another moved on the primary, published
#   rsync       "rsync -t SNAPSHOT HOST/units.db", rsync's default: it writes
#               a temporary file beside the replica and renames it over it,
#               so the replica gets a new inode, which is what the readers
#               watch for (they then validate the new file before switching
#               to it, and a reader sees either the old file or the new one,
#               complete); -t keeps the modification time, so that the next
#               run skips an unchanged snapshot instead of replacing it (and
#               the two publishes here fall in one second: unitctl stamps
#               the second a second later, or rsync would skip it)
#   within 1 s  each daemon answers from the new generation within 1 s of
#               its rsync (measured and printed)
#   --dump      "unitpolicy --dump --control" on each host: the generation,
#               its age and the daemon's replica switches
#   cut off     a host that stops receiving snapshots: past reject_max_age an
#               unknown recipient is 450 4.1.1 instead of 550 5.1.1, past
#               max_replica_age every lookup is 451 4.3.0; the next snapshot
#               brings it back within 1 s
#   --inplace   the wrong way: "rsync --inplace" writes into the file the
#               reader has open; the inode stays, so the daemon is not told
#               and validates nothing, and SQLite keeps the pages it has
#               cached, because every published snapshot of the same size
#               has the same header: the running daemon goes on answering
#               a moved mailbox's old route, while a new reader of the same
#               file answers the new one; and "rsync -t" then skips the
#               file (same size and time) until the next snapshot. (Part-way
#               through such a copy a reader would also read a file half
#               old, half new.)
#
# Needs root (the daemons drop to nobody), rsync and postmap (Postfix's
# socketmap client); without rsync the script says "skip:" and passes.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IT_UNITPOLICY=${UNITPOLICY:-$IT_UNITPOLICY}
[ -x "$IT_UNITPOLICY" ] || it_skip_all "$IT_UNITPOLICY not built yet"
command -v rsync >/dev/null 2>&1 || it_skip_all "rsync not installed (bash tools/install-deps.sh)"
it_init "$@"

# --------------------------------------------------------------- helpers

# host_start NAME [OPTION...]: unitpolicy on $IT_WORK/NAME/units.db, with
# its policy and socketmap sockets and its control socket in $IT_WORK/NAME,
# two worker threads, running as nobody, logging to $IT_WORK/NAME.log;
# waits (10 s) until its socketmap answers.
declare -A HOST_PID
host_start() {
    local name=$1 dir=$IT_WORK/$1
    shift
    it_spawn "$IT_WORK/$name.log" "$IT_UNITPOLICY" --db "$dir/units.db" \
        --policy-listen "unix:$dir/policy" --socketmap-listen "unix:$dir/map" \
        --control "$dir/control" --threads 2 --recipient-delimiter + \
        --user nobody --log stderr "$@"
    HOST_PID[$name]=$IT_LAST_PID
    if ! it_wait_until 10 host_answers "$name"; then
        it_diag "unitpolicy $name log:"
        tail -n 20 "$IT_WORK/$name.log" | sed -e 's/^/#   /'
        it_fatal "unitpolicy $name did not answer"
    fi
}

# host_answers NAME: the socketmap answers a lookup (found or not).
host_answers() {
    [ -S "$IT_WORK/$1/map" ] || return 1
    case $(host_map "$1" transportmx '*') in NOTFOUND) return 0 ;; esac
    return 1
}

# host_map NAME MAP KEY: postmap -q, printed as "OK value", "NOTFOUND" or
# "TEMP message".
host_map() {
    local out err=$IT_WORK/postmap.$1.err rc
    out=$(timeout 10 postmap -q "$3" "socketmap:unix:$IT_WORK/$1/map:$2" 2>"$err")
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "OK $out"
    elif [ "$rc" -eq 1 ] && [ ! -s "$err" ]; then
        echo NOTFOUND
    else
        echo "TEMP $(tr '\n' ' ' <"$err")"
    fi
}

# host_policy NAME RECIPIENT: the policy action at RCPT TO for RECIPIENT.
host_policy() { it_policy_rcpt "$IT_WORK/$1/policy" "$2" 192.0.2.1; }
host_policy_is() { [ "$(host_policy "$1" "$2")" = "$3" ]; }

# host_dump NAME: unitpolicy --dump --control on NAME's replica and daemon.
host_dump() {
    "$IT_UNITPOLICY" --db "$IT_WORK/$1/units.db" --dump --control "$IT_WORK/$1/control" 2>&1
}

# dump_value DUMP KEY: the value of "  KEY: value" in a --dump output.
dump_value() { printf '%s\n' "$1" | sed -n "s/^  $2: //p" | head -n 1; }

# publish: unitctl publish into $published (mode 0644); prints the generation.
publish() {
    local out
    out=$(ctl publish "$published") || it_fatal "unitctl publish failed"
    chmod 0644 "$published"
    printf '%s\n' "$out" | sed -n -E 's/^published .* generation ([0-9]+) .*/\1/p'
}

# time_to_answer NAME COMMAND CHECK...: runs the shell COMMAND (a copy of
# the snapshot), then polls NAME's socketmap every 5 ms until every CHECK
# ("MAP KEY EXPECTED-REPLY") is answered as expected on five new connections
# in a row (so every worker thread has answered), and prints the
# milliseconds from the end of COMMAND to the first of them; "none" when
# that did not happen within 5 s, "failed" when COMMAND failed. The poller
# starts first and queries all along, from 0.5 s before COMMAND, so that
# neither its own start-up nor an idle daemon (which checks the file at
# the first lookup) flatters the figure.
time_to_answer() {
    local name=$1 command=$2
    shift 2
    timeout 30 python3 - "$IT_WORK/$name/map" "$command" "$@" <<'EOF_PY'
import socket, subprocess, sys, threading, time

path, command = sys.argv[1], sys.argv[2]
checks = [c.split(" ", 2) for c in sys.argv[3:]]

def lookup(name, key):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    request = ("%s %s" % (name, key)).encode()
    s.sendall(b"%d:%s," % (len(request), request))
    reply = b""
    while not reply.endswith(b","):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    return reply.partition(b":")[2][:-1].decode(errors="replace")

def answered():
    return all(lookup(name, key) == want for name, key, want in checks)

# Traffic all along, as on a busy host, from 0.5 s before the copy: every
# worker checks the file at most 250 ms before each lookup, so the figure
# includes the wait for that check.
polls, stop = [], threading.Event()
def traffic():
    while not stop.is_set() and len(polls) < 100000:
        start = time.monotonic()
        polls.append((start, answered()))
        time.sleep(0.005)
poller = threading.Thread(target=traffic)
poller.start()
time.sleep(0.5)
status = subprocess.run(command, shell=True).returncode
since = time.monotonic()

def answered_since():
    """Milliseconds from the copy to the first of 5 fresh answers in a row."""
    first, streak = None, 0
    for start, fresh in list(polls):
        if start < since:
            continue
        if not fresh:
            first, streak = None, 0
            continue
        first = start if first is None else first
        streak += 1
        if streak == 5:
            return int((first - since) * 1000)
    return None

result = None
while status == 0 and result is None and time.monotonic() < since + 5:
    time.sleep(0.05)
    result = answered_since()
stop.set()
poller.join()
print("failed" if status != 0 else "none" if result is None else result)
EOF_PY
}

# age_phases NAME SECONDS: asks NAME, every 50 ms for up to SECONDS (one
# process: its start-up does not shift the timing), the policy verdict for
# alice@example.com and nobody@example.com and the recipient table's reply
# for nobody@example.com, and prints each distinct state in the order seen,
# "alice=VERDICT|nobody=VERDICT|table=REPLY", until every verdict is a 451.
age_phases() {
    timeout $(($2 + 20)) python3 - "$IT_WORK/$1" "$2" <<'EOF_PY'
import socket, sys, time

directory, seconds = sys.argv[1], float(sys.argv[2])

def talk(path, request, end):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(request)
    reply = b""
    while not reply.endswith(end):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    return reply.decode(errors="replace")

def verdict(recipient):
    reply = talk(directory + "/policy", ("request=smtpd_access_policy\nprotocol_state=RCPT\n"
                 "client_address=192.0.2.1\nrecipient=%s\n\n" % recipient).encode(), b"\n\n")
    return reply.split("\n")[0].removeprefix("action=")

def table(key):
    request = ("recipient %s" % key).encode()
    reply = talk(directory + "/map", b"%d:%s," % (len(request), request), b",")
    return reply.partition(":")[2][:-1].split(" ")[0]

last, deadline = None, time.monotonic() + seconds
while time.monotonic() < deadline:
    state = "alice=%s|nobody=%s|table=%s" % (verdict("alice@example.com"),
                                              verdict("nobody@example.com"), table("nobody@example.com"))
    if state != last:
        print(state, flush=True)
        last = state
    if state.startswith("alice=451") and "|nobody=451" in state:
        break
    time.sleep(0.05)
EOF_PY
}

# rsync_to NAME [RSYNC-OPTION...]: the command that copies the published
# snapshot onto NAME's replica, as a provisioning host runs it.
rsync_to() {
    local name=$1
    shift
    printf 'rsync -t %s %q %q' "$*" "$published" "$IT_WORK/$name/units.db"
}

# copy_to NAME [RSYNC-OPTION...]: runs that command.
copy_to() { eval "$(rsync_to "$@")" || it_fatal "rsync to $1 failed"; }

# publish_command: the command that publishes the primary (mode 0644).
publish_command() {
    printf '%q --db %q publish %q >/dev/null && chmod 0644 %q' "$IT_UNITCTL" "$IT_DB" "$published" "$published"
}

# under_1s NAME WHAT MS: the assertion on a time_to_answer figure.
under_1s() {
    it_diag "$1: $2 $3 ms after the copy"
    it_check "$1: $2 within 1 s of the copy" "it took $3 ms" is_under_1000 "$3"
}
is_under_1000() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -lt 1000 ]; }

# --------------------------------------------------------------- the primary and two hosts

IT_DB=$IT_WORK/primary.db
mkdir -p "$IT_WORK/published"
published=$IT_WORK/published/units.db
{ ctl init && ctl import "$IT_ROOT/examples/sample/sample.csv"; } >/dev/null \
    || it_fatal "unitctl could not load the sample"
gen0=$(publish)
for h in hostA hostB; do
    mkdir -p "$IT_WORK/$h"
    chmod 0755 "$IT_WORK/$h"
    copy_to "$h"
    host_start "$h"
done
for h in hostA hostB; do
    it_expect_eq "$h: before the change, newbie@ is unknown" NOTFOUND "$(host_map "$h" recipient newbie@example.com)"
    it_expect_eq "$h: before the change, bob@ is on unit2" "OK smtp:[unit2.example.com]" \
        "$(host_map "$h" transportmx bob@example.com)"
    it_expect_eq "$h: --dump shows generation $gen0" "$gen0" "$(dump_value "$(host_dump "$h")" generation)"
done

# --------------------------------------------------------------- the change, published and copied

{
    ctl mailbox add newbie@example.com --unit unit2 &&
    ctl move begin bob@example.com --to unit3 &&
    ctl move finish bob@example.com
} >/dev/null || it_fatal "unitctl could not change the primary"
gen1=$(publish)
it_check "publish: the generation grew ($gen0 -> $gen1)" 'generations $gen0 -> $gen1' \
    eval '[ "${gen1:-0}" -gt "$gen0" ]'

for h in hostA hostB; do
    inode_before=$(stat -c %i "$IT_WORK/$h/units.db")
    ms=$(time_to_answer "$h" "$(rsync_to "$h")" \
        "recipient newbie@example.com OK newbie@example.com" \
        "transportmx bob@example.com OK smtp:[unit3.example.com]")
    inode_after=$(stat -c %i "$IT_WORK/$h/units.db")
    it_check "$h: rsync renamed a new file into place (inode $inode_before -> $inode_after)" \
        'the inode stayed $inode_before' it_not [ "$inode_before" = "$inode_after" ]
    under_1s "$h" "generation $gen1 answered" "$ms"
done

for h in hostA hostB; do
    dump=$(host_dump "$h")
    it_diag "$h: unitpolicy --dump --control:" \
        "$(printf '%s\n' "$dump" | grep -E '^  (generation|published_at|age_seconds|replica_switches|replica_refusals):')"
    it_expect_eq "$h: --dump shows generation $gen1" "$gen1" "$(dump_value "$dump" generation)"
    it_expect_match "$h: --dump shows the snapshot's age" '^[0-9]+$' "$(dump_value "$dump" age_seconds)"
    it_check "$h: --dump shows the daemon's switch to the new file" \
        'replica_switches: $(dump_value "$dump" replica_switches)' \
        eval '[ "$(dump_value "$dump" replica_switches)" -ge 1 ]'
    it_expect_eq "$h: --dump shows no refused file" 0 "$(dump_value "$dump" replica_refusals)"
    it_check "$h: the same daemon process" "unitpolicy $h exited" kill -0 "${HOST_PID[$h]}"
done

# --------------------------------------------------------------- a host cut off from provisioning

# hostC gets the snapshots until it is cut off, then ages: reject_max_age 4s
# and max_replica_age 15s stand for the usual hours and days. The age is the
# time since "unitctl publish" stamped the snapshot (not since the copy), so
# a primary with nothing to change still publishes regularly.
mkdir -p "$IT_WORK/hostC"
chmod 0755 "$IT_WORK/hostC"
publish >/dev/null
copy_to hostC
host_start hostC --reject-max-age 4s --max-replica-age 15s
phases=$(age_phases hostC 30)
it_diag "hostC, as its replica ages (alice's and nobody's verdicts, the recipient table for nobody):" \
    "$(printf '%s\n' "$phases" | sed 's/^/  /')"
# field_history N: the successive values of field N (1 alice, 2 nobody, 3
# the table) in the states seen, without repeats, joined by " > ". (A state
# seen just as a threshold passed may mix the two sides of it: each field
# is checked on its own, and the unconfirmed state as a whole.)
field_history() {
    printf '%s\n' "$phases" | awk -F'|' -v n="$1" '
        { v = $n; sub(/^[a-z]*=/, "", v) }
        v != last { out = out (out == "" ? "" : " > ") v; last = v }
        END { print out }'
}
it_expect_eq "cut off: alice is DUNNO, then 451 4.3.0 past max_replica_age" \
    "DUNNO > 451 4.3.0 Directory temporarily unavailable" "$(field_history 1)"
it_expect_match "cut off: nobody is 550 5.1.1, 450 4.1.1 past reject_max_age, 451 4.3.0 past max_replica_age" \
    '^(550 5\.1\.1 User unknown > )?450 4\.1\.1 Recipient not confirmed by an up-to-date directory, try again later > 451 4\.3\.0 Directory temporarily unavailable$' \
    "$(field_history 2)"
it_expect_match "cut off: the recipient table answers TEMP for nobody past reject_max_age" '^(NOTFOUND > )?TEMP$' \
    "$(field_history 3)"
it_check "cut off: past reject_max_age, a mailbox is still DUNNO while the unknown is 450" \
    'states: $(printf "%s" "$phases" | tr "\n" " ")' \
    grep -qxF 'alice=DUNNO|nobody=450 4.1.1 Recipient not confirmed by an up-to-date directory, try again later|table=TEMP' \
    <<<"$phases"
it_expect_match "cut off: past max_replica_age, the tables answer TEMP" '^TEMP ' \
    "$(host_map hostC transportmx alice@example.com)"
it_diag "hostC: $(host_dump hostC | grep -E '^  (age_seconds|tempfail_stale):' | tr -s ' ' | tr '\n' ' ')"
ms=$(time_to_answer hostC "$(publish_command) && $(rsync_to hostC)" \
    "transportmx alice@example.com OK smtp:[unit1.example.com]" \
    "recipient nobody@example.com NOTFOUND ")
under_1s hostC "the next snapshot answered (a route for alice, NOTFOUND for the unknown)" "$ms"

# --------------------------------------------------------------- the wrong way: rsync --inplace

# hostB's two workers (one connection each, in turn) have answered alice's
# route (unit1) from generation $gen1; alice moves to unit3, and the
# snapshot is copied onto hostB with --inplace.
for worker in 1 2; do
    it_expect_eq "--inplace: hostB routes alice to unit1 before (connection $worker)" \
        "OK smtp:[unit1.example.com]" "$(host_map hostB transportmx alice@example.com)"
done
{
    ctl move begin alice@example.com --to unit3 &&
    ctl move finish alice@example.com
} >/dev/null || it_fatal "unitctl could not move alice@example.com"
gen2=$(publish)
# The case where SQLite cannot tell: the same size, and so the same header.
it_expect_eq "--inplace: generation $gen2's snapshot has the size of hostB's replica" \
    "$(stat -c %s "$IT_WORK/hostB/units.db")" "$(stat -c %s "$published")"
inode_before=$(stat -c %i "$IT_WORK/hostB/units.db")
switches_before=$(dump_value "$(host_dump hostB)" replica_switches)
copy_to hostB --inplace
it_expect_eq "--inplace: the replica keeps its inode" "$inode_before" "$(stat -c %i "$IT_WORK/hostB/units.db")"
sleep 0.6   # past the 250 ms check interval of both workers
for worker in 1 2; do
    stale=$(host_map hostB transportmx alice@example.com)
    it_diag "hostB after rsync --inplace: transportmx alice@example.com: $stale"
    it_expect_eq "--inplace: the running reader still answers the old route (connection $worker)" \
        "OK smtp:[unit1.example.com]" "$stale"
done
it_expect_match "--inplace: a new reader of the same file answers the new one" \
    'socketmap transportmx +OK smtp:\[unit3\.example\.com\]' \
    "$("$IT_UNITPOLICY" --db "$IT_WORK/hostB/units.db" --query alice@example.com 2>&1)"
it_expect_eq "--inplace: the daemon saw no new file (nothing was validated)" "$switches_before" \
    "$(dump_value "$(host_dump hostB)" replica_switches)"
it_expect_eq "--inplace: afterwards, rsync -t skips the replica (same size and time)" "" \
    "$(rsync -t -i "$published" "$IT_WORK/hostB/units.db")"
# The next snapshot, copied the right way, repairs the replica.
ms=$(time_to_answer hostB "$(publish_command) && $(rsync_to hostB)" \
    "transportmx alice@example.com OK smtp:[unit3.example.com]")
under_1s hostB "the next snapshot, renamed into place, answered" "$ms"

for h in hostA hostB hostC; do
    it_stop_daemon "unitpolicy $h" "${HOST_PID[$h]}" 5
done
[ "$IT_FAILED" -gt 0 ] && for h in hostA hostB hostC; do
    it_diag "unitpolicy $h log (last 10 lines):"
    tail -n 10 "$IT_WORK/$h.log" | sed -e 's/^/#   /'
done
it_summary
