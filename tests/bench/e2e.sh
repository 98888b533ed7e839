#!/bin/bash
# tests/bench/e2e.sh: end-to-end throughput (DESIGN §8): smtp-source sends
# to a real Postfix MX on loopback, which relays every message to an
# smtp-sink standing in for the units. Three MX configurations are measured
# in the same run, with the same directory, message count, size and
# concurrency:
#
#   a  no recipient checks: relay_domains lists the domain, no
#      relay_recipient_maps, every recipient relayed by relay_transport
#   b  Postfix's own sqlite: tables (tests/integration/baseline/):
#      relay_domains, relay_recipient_maps, virtual_alias_maps and
#      transport_maps read from the published replica
#   c  unitpolicy and unitmilter as in examples/mx/: check_policy_service,
#      socketmap relay_domains / virtual_alias_maps / transport_maps,
#      smtpd_milters
#
# One run: smtp-source -N (each message to a different recipient, all of
# them mailboxes of the directory) with SESSIONS parallel sessions; the
# clock stops when the maillog shows every message sent to the sink. A run
# in which any message is deferred, bounced or rejected fails the script.
# Each configuration is run REPEATS times, in a rotating order (abc, bca,
# cab, ...), after one unmeasured warm-up run; the medians are reported,
# with the ratios c/a (goal >= 0.95) and c/b (no goal: DESIGN §8).
#
# A fourth configuration, d, is measured on request (--configs abcd): c
# without unitmilter, to tell the milter's share of c's cost from the
# lookups'.
#
# The requests Postfix makes to unitpolicy per message are counted twice:
# during the measured runs of c and d, from unitpolicy's counters read
# between runs (policy and socketmap requests per message, by
# configuration); and, unmeasured, by sending 100 messages through a copy
# of c whose own unitpolicy logs every request (--debug yes): the requests
# per message by map and by the form of the key (full address, @domain,
# domain, ...), which says which Postfix lookup asked for each.
#
# Usage: e2e.sh [--messages N] [--sessions S] [--size BYTES] [--repeats R]
#               [--mailboxes N] [--configs abc] [--json FILE]
#   defaults: 1000 messages of 1024 bytes, 8 sessions, 3 repeats, a
#   directory of 100,000 mailboxes; --json appends one JSON line per
#   configuration (tests/bench/README.md).
# Needs root (throwaway Postfix instances, tests/integration/lib.sh).
# BUILD_DIR (default build) names the build with unitctl, unitpolicy and
# unitmilter.
set -uo pipefail
export IT_TIME_LIMIT=${IT_TIME_LIMIT:-900}
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
IT_UNITMILTER=$IT_BUILD/src/milter/unitmilter

messages=1000
sessions=8
size=1024
repeats=3
mailboxes=100000
configs=abc
json=/dev/null
args=("$@")
while [ $# -gt 0 ]; do
    case $1 in
        --messages) messages=$2; shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --repeats) repeats=$2; shift 2 ;;
        --mailboxes) mailboxes=$2; shift 2 ;;
        --configs) configs=$2; shift 2 ;;
        --json) json=$2; shift 2 ;;
        *)
            sed -n '/^# Usage:/,/^# Needs root/p' "${BASH_SOURCE[0]}" | sed -e 's/^# \{0,1\}//' >&2
            exit 2 ;;
    esac
done
case $json in /*) ;; *) json=$PWD/$json ;; esac
[ "$mailboxes" -ge "$messages" ] || mailboxes=$messages
[[ $configs =~ ^[abcd]+$ ]] || { echo "e2e: --configs: letters among a, b, c, d" >&2; exit 2; }
read -r -a names <<<"$(grep -o . <<<"$configs" | tr '\n' ' ')"
for tool in smtp-source smtp-sink; do
    command -v "$tool" >/dev/null || it_skip_all "$tool not installed"
done
[ -x "$IT_UNITPOLICY" ] || it_skip_all "$IT_UNITPOLICY not built"
[ -x "$IT_UNITMILTER" ] || it_skip_all "$IT_UNITMILTER not built"
it_init "${args[@]}"

say() { echo "e2e: $*"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# median: the median of the numbers on stdin, one per line.
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------- the sink

# One smtp-sink for every configuration; it keeps nothing (no -d): the
# maillog's status=sent lines count the deliveries.
sinkport=
it_alloc_port sinkport
it_spawn "$IT_WORK/sink.log" smtp-sink -4 -u nobody -h sink.invalid "127.0.0.1:$sinkport" 256
it_wait_until 10 it_port_open "$sinkport" || it_fatal "smtp-sink did not listen on 127.0.0.1:$sinkport"

# ---------------------------------------------------------------- the directory

# Mailboxes 1user@e2e.example .. Nuser@e2e.example are the recipients
# smtp-source -N generates; user1@ .. fill the directory up to --mailboxes.
# Ten units, all routed to the sink.
IT_DB=$IT_WORK/primary.db
IT_REPLICA=$IT_WORK/replica/units.db
mkdir -p "$IT_WORK/replica"
chmod 0755 "$IT_WORK/replica"
python3 - "$IT_WORK/e2e.csv" "$messages" "$mailboxes" "$sinkport" <<'EOF'
import sys
path, messages, mailboxes, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(path, "w") as csv:
    csv.write("kind,address,value,state\ndomain,e2e.example,,\n")
    for u in range(1, 11):
        csv.write(f"unit,unit{u:02d},smtp:[127.0.0.1]:{port},active\n")
    for i in range(1, messages + 1):
        csv.write(f"mailbox,{i}user@e2e.example,unit{i % 10 + 1:02d},active\n")
    for i in range(1, mailboxes - messages + 1):
        csv.write(f"mailbox,user{i}@e2e.example,unit{i % 10 + 1:02d},active\n")
EOF
{ ctl init && ctl import "$IT_WORK/e2e.csv"; } >/dev/null || it_fatal "unitctl could not import the directory"
it_publish "$IT_REPLICA"
say "directory: $mailboxes mailboxes on 10 units, all routed to the sink on 127.0.0.1:$sinkport"

# ---------------------------------------------------------------- the MX instances

declare -A LABEL=(
    [a]="no recipient checks"
    [b]="Postfix sqlite: tables"
    [c]="unitpolicy + socketmap + unitmilter"
    [d]="unitpolicy + socketmap, no milter"
)

# Every instance treats 127.0.0.1 (smtp-source) as an outside client.
common=("mynetworks = 127.0.0.2/32" "smtpd_policy_service_timeout = 100s")

pf_new a
pf_main a "${common[@]}" "relay_domains = e2e.example" "relay_recipient_maps =" \
    "relay_transport = relay:[127.0.0.1]:$sinkport"
pf_start a

maps=$IT_WORK/maps
mkdir -p "$maps"
for f in "$IT_ROOT"/tests/integration/baseline/*.cf; do
    sed -e "s|@DB@|$IT_REPLICA|" "$f" >"$maps/$(basename "$f")"
done
chmod 0644 "$maps"/*.cf
pf_new b
pf_main b "${common[@]}"
pf_main_fragment b "$IT_ROOT/tests/integration/baseline/main.cf" "s|@DIR@|$maps|"
pf_master_fragment b "$IT_EXAMPLES/mx/master.cf"
pf_start b

sock=$IT_WORK/c
mkdir -p "$sock"
chmod 0755 "$sock"
it_spawn "$IT_WORK/unitpolicy.log" "$IT_UNITPOLICY" --db "$IT_REPLICA" \
    --policy-listen "unix:$sock/unitpolicy" --socketmap-listen "unix:$sock/unitmap" --control "$sock/control" \
    --hold-transport unithold --recipient-delimiter + \
    --socket-mode 0666 --user nobody --log stderr
up_pid=$IT_LAST_PID
sed -e "s|^listen = .*|listen = unix:$sock/unitmilter|" \
    -e "s|^trusted_networks = .*|trusted_networks =|" \
    -e "s|^user = .*|user = nobody|" \
    -e "s|^socket_mode = .*|socket_mode = 0666|" -e "s|^socket_group = |#&|" \
    -e "\$a db = $IT_REPLICA" -e "\$a hostname = mx.e2e.invalid" \
    "$IT_EXAMPLES/unitmilter.conf" >"$sock/unitmilter.conf"
it_spawn "$IT_WORK/unitmilter.log" "$IT_UNITMILTER" --config "$sock/unitmilter.conf" --log stderr
um_pid=$IT_LAST_PID
it_wait_until 10 test -S "$sock/unitpolicy" -a -S "$sock/unitmap" -a -S "$sock/unitmilter" ||
    it_fatal "unitpolicy or unitmilter did not listen in $sock: $(tail -n 5 "$IT_WORK"/unit*.log)"
# unitpolicy_mx_at NAME DIR [MAIN.CF-LINE...]: an instance made from
# examples/mx/, unitpolicy's sockets in DIR, unitmilter's in $sock, then
# the given settings. unitpolicy_mx NAME [...]: the same with DIR $sock.
unitpolicy_mx_at() {
    local name=$1 dir=$2
    shift 2
    pf_new "$name"
    pf_main "$name" "${common[@]}"
    pf_main_fragment "$name" "$IT_EXAMPLES/mx/main.cf" \
        "s|unix:private/unitpolicy|unix:$dir/unitpolicy|g" \
        "s|unix:private/unitmap|unix:$dir/unitmap|g" \
        "s|unix:private/unitmilter|unix:$sock/unitmilter|g"
    [ $# -eq 0 ] || pf_main "$name" "$@"
    pf_master_fragment "$name" "$IT_EXAMPLES/mx/master.cf"
    pf_start "$name"
}
unitpolicy_mx() { unitpolicy_mx_at "$1" "$sock" "${@:2}"; }
unitpolicy_mx c
[[ $configs != *d* ]] || unitpolicy_mx d "smtpd_milters =" "non_smtpd_milters ="

# The counting copy of c (n): its own unitpolicy, logging every request.
count_dir=$IT_WORK/n
if [[ $configs == *[cd]* ]]; then
    mkdir -p "$count_dir"
    chmod 0755 "$count_dir"
    it_spawn "$IT_WORK/unitpolicy-count.log" "$IT_UNITPOLICY" --db "$IT_REPLICA" \
        --policy-listen "unix:$count_dir/unitpolicy" --socketmap-listen "unix:$count_dir/unitmap" \
        --hold-transport unithold --recipient-delimiter + \
        --socket-mode 0666 --user nobody --log stderr --debug yes
    it_wait_until 10 test -S "$count_dir/unitpolicy" -a -S "$count_dir/unitmap" ||
        it_fatal "the counting unitpolicy did not listen in $count_dir: $(tail -n 5 "$IT_WORK/unitpolicy-count.log")"
    unitpolicy_mx_at n "$count_dir"
fi

# ---------------------------------------------------------------- one run

# log_size NAME: the maillog's size in bytes (a mark for log_after).
log_size() { stat -c %s "${PF_DIR[$1]}/log/maillog" 2>/dev/null || echo 0; }

# log_after NAME OFFSET: the maillog from byte OFFSET on (this run's lines
# only, so that polling stays cheap).
log_after() { tail -c "+$(($2 + 1))" "${PF_DIR[$1]}/log/maillog" 2>/dev/null; }

# run_one NAME COUNT: sends COUNT messages and waits until the maillog
# shows all of them sent (polled every 0.2 s); sets RUN_RATE (end to end)
# and RUN_ACCEPT (until smtp-source is done), in messages per second.
run_one() {
    local name=$1 count=$2 offset t0 t1 t2 out sent=0 failed
    offset=$(log_size "$name")
    t0=$(now)
    if ! out=$(timeout --foreground 300 smtp-source -4 -s "$sessions" -m "$count" -l "$size" -N \
        -M client.e2e.invalid -f sender@sender.invalid -t user@e2e.example \
        "127.0.0.1:${PF_PORT[$name]}" 2>&1); then
        pf_log_tail "$name" 20
        it_fatal "configuration $name: smtp-source failed: $out"
    fi
    t1=$(now)
    local deadline=$((SECONDS + 300))
    while :; do
        read -r sent failed < <(log_after "$name" "$offset" | awk '
            /status=sent/ { s++ }
            /status=(deferred|bounced)|reject:/ { f++ }
            END { print s + 0, f + 0 }')
        [ "$sent" -ge "$count" ] && break
        if [ "$failed" -gt 0 ] || [ "$SECONDS" -ge "$deadline" ]; then
            log_after "$name" "$offset" | grep -E 'status=(deferred|bounced)|reject:' | head -5 | sed -e 's/^/# /'
            it_fatal "configuration $name: $sent of $count messages delivered, $failed failed"
        fi
        sleep 0.2
    done
    t2=$(now)
    RUN_RATE=$(calc "$count / ($t2 - $t0)")
    RUN_ACCEPT=$(calc "$count / ($t1 - $t0)")
}

# counters: unitpolicy's policy and socketmap request counters, "P S".
counters() {
    "$IT_UNITPOLICY" --db "$IT_REPLICA" --dump --control "$sock/control" 2>/dev/null |
        awk '$1 == "policy_requests:" { p = $2 } $1 == "socketmap_requests:" { s = $2 }
             END { if (p != "" && s != "") print p, s }'
}

declare -A RATES ACCEPTS POLICY SOCKETMAP
for name in "${names[@]}"; do
    run_one "$name" $((messages / 10 + 1))   # warm-up: processes started, tables opened
done
order=("${names[@]}")
for rep in $(seq 1 "$repeats"); do
    for name in "${order[@]}"; do
        before=$(counters)
        run_one "$name" "$messages"
        after=$(counters)
        # Only c and d ask unitpolicy; the runs are one at a time, so the
        # counters' growth during a run is that run's.
        if [ -n "$before" ] && [ -n "$after" ]; then
            read -r p0 s0 <<<"$before"
            read -r p1 s1 <<<"$after"
            POLICY[$name]=$((${POLICY[$name]:-0} + p1 - p0))
            SOCKETMAP[$name]=$((${SOCKETMAP[$name]:-0} + s1 - s0))
        fi
        RATES[$name]+="$RUN_RATE "
        ACCEPTS[$name]+="$RUN_ACCEPT "
        printf 'e2e: run %d %s %-38s %7.1f msg/s (accepted at %7.1f msg/s)\n' \
            "$rep" "$name" "(${LABEL[$name]})" "$RUN_RATE" "$RUN_ACCEPT"
    done
    order=("${order[@]:1}" "${order[0]}")
done

declare -A MEDIAN
# shellcheck disable=SC2086 # RATES and ACCEPTS hold blank-separated numbers
for name in "${names[@]}"; do
    MEDIAN[$name]=$(printf '%s\n' ${RATES[$name]} | median)
    accept=$(printf '%s\n' ${ACCEPTS[$name]} | median)
    printf 'e2e: %s %-38s median %7.1f msg/s over %d runs of %d messages, %d sessions\n' \
        "$name" "(${LABEL[$name]})" "${MEDIAN[$name]}" "$repeats" "$messages" "$sessions"
    rates=$(printf '%.1f,' ${RATES[$name]})
    printf '{"kind":"e2e","config":"%s","label":"%s","messages":%d,"sessions":%d,"size":%d,' \
        "$name" "${LABEL[$name]}" "$messages" "$sessions" "$size" >>"$json"
    printf '"mailboxes":%d,"rate":%.1f,"rates":[%s],"accept_rate":%.1f}\n' \
        "$mailboxes" "${MEDIAN[$name]}" "${rates%,}" "$accept" >>"$json"
done
# ratio X Y: MEDIAN[X] / MEDIAN[Y], or "-" when either was not measured.
ratio() {
    if [ -n "${MEDIAN[$1]:-}" ] && [ -n "${MEDIAN[$2]:-}" ]; then
        printf '%.2f' "$(calc "${MEDIAN[$1]} / ${MEDIAN[$2]}")"
    else
        echo -
    fi
}
echo "e2e: c/a = $(ratio c a) (goal >= 0.95)   c/b = $(ratio c b)   b/a = $(ratio b a)" \
    "$([[ $configs != *d* ]] || echo "  d/a = $(ratio d a) (goal >= 0.97)   c/d = $(ratio c d) (goal >= 0.97)")"

# What Postfix asked unitpolicy for each message, by configuration: every
# request is a round trip, and Postfix looks some tables up for several
# forms of each address.
for name in "${names[@]}"; do
    if [[ $name != [cd] ]] || [ -z "${POLICY[$name]:-}" ]; then continue; fi
    served=$((repeats * messages))
    printf 'e2e: %s: unitpolicy answered %.2f policy and %.2f socketmap requests per message\n' "$name" \
        "$(calc "${POLICY[$name]} / $served")" "$(calc "${SOCKETMAP[$name]} / $served")"
    printf '{"kind":"e2e_lookups","config":"%s","messages":%d,"policy_requests":%d,"socketmap_requests":%d}\n' \
        "$name" "$served" "${POLICY[$name]}" "${SOCKETMAP[$name]}" >>"$json"
done

# The same, by map and key form, from the counting copy of c: COUNTED
# messages (not timed), every request logged.
if [ -n "${PF_DIR[n]:-}" ]; then
    counted=100
    offset=$(stat -c %s "$IT_WORK/unitpolicy-count.log")
    run_one n "$counted"
    sleep 1   # the last lookups (qmgr's) may follow the last status=sent line by a moment
    tail -c "+$((offset + 1))" "$IT_WORK/unitpolicy-count.log" |
        python3 -c '
import json, re, sys
messages, domain = int(sys.argv[1]), sys.argv[2]
counts = {}
def add(protocol, what, key):
    k = (protocol, what, key)
    counts[k] = counts.get(k, 0) + 1
for line in sys.stdin:
    m = re.search(r"socketmap: (\w+) to=<([^>]*)>:", line)
    if m:
        key = m.group(2)
        form = ("@domain" if key.startswith("@") else "address") if "@" in key else \
               ".domain" if key.startswith(".") else "domain" if key == domain else "local part"
        add("socketmap", m.group(1), form)
        continue
    m = re.search(r"socketmap: (\w+) (\S+): ", line)
    if m:
        key = m.group(2)  # a domain, or the "*" probe (an address is logged as to=<...>)
        add("socketmap", m.group(1), "*" if key == "*" else "domain" if key == domain else
            ".domain" if key.startswith(".") else "other domain")
        continue
    m = re.search(r": (?:dunno|reject): (\S+) from ", line) or re.search(r"policy: (\S+) without a recipient", line)
    if m:
        add("policy", m.group(1), "recipient")
rows = [{"protocol": p, "map": w, "key": k, "count": c} for (p, w, k), c in sorted(counts.items())]
print(json.dumps({"kind": "e2e_requests", "config": "c", "messages": messages, "requests": rows},
                 separators=(",", ":")))
for r in rows:
    print("e2e: per message: %s %s (%s): %.2f" % (r["protocol"], r["map"], r["key"], r["count"] / messages),
          file=sys.stderr)
' "$counted" e2e.example >>"$json"
fi

# The daemons must have served the whole run without a fault.
kill -0 "$up_pid" 2>/dev/null || it_fatal "unitpolicy died during the run"
kill -0 "$um_pid" 2>/dev/null || it_fatal "unitmilter died during the run"
