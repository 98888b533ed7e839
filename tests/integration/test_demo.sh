#!/bin/bash
# test_demo.sh: runs examples/demo.sh, the README's live demo, and checks
# what it shows a person:
#
#   table       each recipient's destination: alice in unit1's Maildir, bob
#               and bob+news in unit2's, the alias sales@ in both, carol
#               (moving) and dave (unit down) held on the MX, erin refused
#               450 4.2.1, frank 550 5.2.1, nobody 550 5.1.1 User unknown
#   milters     alice's stored copy carries one X-Unit-Route, hop=2
#   the move    once carol's move is finished, her held message reaches
#               unit2's Maildir
#   --dump      the MX daemon's counters: 2 rejects, 1 deferral, a switch
#               to the new replica
#   clean-up    nothing left running (no process of the demo, no listener
#               on its ports), its directory removed, /etc/postfix/main.cf
#               untouched (no instance registered)
#   time        the demo, built already, ends within 2 minutes
#
# The demo runs on ports chosen free at run time (DEMO_PORT); it uses the
# programs of BUILD_DIR (default build) and is not run when they are not
# built (the demo would build them).
set -uo pipefail
IT_TIME_LIMIT=${IT_TIME_LIMIT:-240}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for program in "$IT_UNITPOLICY" "$IT_UNITCTL" "$IT_BUILD/src/milter/unitmilter"; do
    [ -x "$program" ] || it_skip_all "$program not built yet"
done
it_init "$@"

# free_port_run N: the first of N consecutive free ports on 127.0.0.1.
free_port_run() {
    python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
def free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(500):
    base = random.randint(20000, 32000 - n)
    if all(free(base + i) for i in range(n)):
        print(base)
        sys.exit(0)
sys.exit(1)
EOF
}

# row ADDRESS: the "where the message ended up" column of ADDRESS's row in
# the demo's table (the last row for ADDRESS: carol has two). The table's
# columns are 22 and 32 characters wide, each followed by a space.
row() {
    printf '%s\n' "$out" | awk -v a="$1" '$1 == a { line = $0 } END { print substr(line, 57) }'
}

# demo_processes: the processes that belong to the demo: its daemons (their
# command lines name its directory) and Postfix's (their environment does,
# in MAIL_CONFIG). The pattern escapes the dot, so that grep does not find
# its own command line.
demo_processes() {
    local pattern
    pattern=$(printf '%s' "$demo" | sed 's/\./\\./g')
    grep -alsE -- "$pattern" /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null |
        sed 's|^/proc/\([0-9]*\)/.*|\1|' | sort -u | while read -r pid; do
            printf '%s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
        done
}

base=$(free_port_run 5) || it_fatal "no 5 free consecutive ports on 127.0.0.1"
main_cf_before=$(md5sum /etc/postfix/main.cf)
started_ns=$(date +%s%N)
out=$(BUILD_DIR="$IT_BUILD" DEMO_PORT=$base timeout -k 30 150 bash "$IT_ROOT/examples/demo.sh" 2>&1)
status=$?
elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
it_diag "examples/demo.sh (DEMO_PORT=$base): exit status $status, $elapsed_ms ms"
printf '%s\n' "$out" | sed -e 's/^/#   /'
demo=$(printf '%s\n' "$out" | sed -n 's/^working directory: //p' | head -n 1)

it_expect_eq "demo: exit status 0" 0 "$status"
# DEMO_TIME_LIMIT (seconds, default 120) is raised for sanitized programs.
demo_limit=${DEMO_TIME_LIMIT:-120}
it_check "demo: ends within $demo_limit s" "it took $elapsed_ms ms" [ "$elapsed_ms" -lt $((demo_limit * 1000)) ]
it_expect_match "demo: names its working directory" '^/var/tmp/unitpolicy-demo\.' "$demo"

# --- the table
it_expect_eq "alice: in unit1's Maildir" "unit1 maildir example.com/alice/" "$(row alice@example.com)"
it_expect_eq "bob: in unit2's Maildir" "unit2 maildir example.com/bob/" "$(row bob@example.com)"
it_expect_eq "bob+news: in bob's Maildir on unit2" "unit2 maildir example.com/bob/" "$(row bob+news@example.com)"
it_expect_eq "sales (alias): one copy on each unit" \
    "unit1 maildir example.com/alice/, unit2 maildir example.com/bob/" "$(row sales@example.com)"
it_expect_eq "dave (unit down): held on the MX" \
    'held on the MX (unit4 is down): "deferred transport"' "$(row dave@example.net)"
it_expect_match "erin (suspended): 450 4.2.1 at RCPT" \
    '^refused at RCPT TO: 450 4\.2\.1 <erin@example\.com>: Recipient address rejected: Mailbox temporarily unavailable$' \
    "$(row erin@example.com)"
it_expect_match "frank (disabled): 550 5.2.1 at RCPT" \
    '^refused at RCPT TO: 550 5\.2\.1 <frank@example\.com>: Recipient address rejected: Mailbox disabled$' \
    "$(row frank@example.com)"
it_expect_match "nobody (unknown): 550 5.1.1 at RCPT" \
    '^refused at RCPT TO: 550 5\.1\.1 <nobody@example\.com>: Recipient address rejected: User unknown$' \
    "$(row nobody@example.com)"
it_expect_match "carol (moving): held on the MX" \
    '^carol@example\.com +a mailbox moving unit1 -> unit2 +held on the MX \(moving from unit1 to unit2\): "deferred transport"$' \
    "$out"
it_expect_match "milters: alice's copy carries one route stamp, hop 2 on unit1" \
    '^  X-Unit-Route: hop=2; gen=[0-9]+; units=unit1; by=unit1\.demo\.invalid$' "$out"

# --- the move, then the MX daemon's --dump
it_expect_match "every host's unitpolicy answers carol's new route without a restart" \
    "routes carol@example\\.com to smtp:\\[127\\.0\\.0\\.1\\]:$((base + 2)) [0-9]+ ms after the copy" "$out"
it_expect_eq "carol, once moved: in unit2's Maildir" "unit2 maildir example.com/carol/" "$(row carol@example.com)"
it_expect_match "--dump: the MX daemon rejected 2 recipients (frank, nobody)" '^  policy_reject: 2$' "$out"
it_expect_match "--dump: the MX daemon deferred 1 (erin)" '^  policy_defer: 1$' "$out"
it_expect_match "--dump: the MX daemon switched to the new replica" '^  replica_switches: [1-9][0-9]*$' "$out"
it_expect_match "--dump: no temporary failure" '^  policy_tempfail: 0$' "$out"

# --- nothing left
it_expect_eq "clean-up: the demo says it stopped everything" "stopped 3 Postfix instances and 6 daemons" \
    "$(printf '%s\n' "$out" | grep '^stopped ')"
if [ -n "$demo" ]; then
    left=$(demo_processes)
    it_expect_eq "clean-up: no process of the demo left" "" "$left"
    it_check "clean-up: its directory is removed" "$demo exists" it_not [ -e "$demo" ]
fi
for p in $base $((base + 1)) $((base + 2)); do
    it_check "clean-up: nothing listens on 127.0.0.1:$p" "port $p is open" it_not it_port_open "$p"
done
it_expect_eq "clean-up: /etc/postfix/main.cf unchanged (no instance registered)" \
    "$main_cf_before" "$(md5sum /etc/postfix/main.cf)"

it_summary
