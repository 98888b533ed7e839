#!/bin/bash
# tests/bench/header_flood.sh: what a flood of routing headers costs a real
# Postfix with unitmilter (issue 13), beside the same number of ordinary
# headers measured in the same run.
#
# One Postfix instance on loopback (tests/integration/lib.sh) relays
# example.com to an smtp-sink, with unitmilter as its smtpd_milters
# (milter_default_action = tempfail, trusted_networks = 127.0.0.3/32, its
# configuration otherwise examples/unitmilter.conf). Each case is one SMTP
# transaction whose message carries COUNT copies of one header:
#
#   ordinary  "X-Filler: ..."      from 127.0.0.2 (untrusted): the baseline
#   forged    "X-Unit-Route: ..."  from 127.0.0.2 (untrusted)
#   trusted   "X-Unit-Route: ..."  from 127.0.0.3 (a trusted peer)
#
# For each case it prints the reply to the end of data, the time from DATA
# to that reply, and the CPU time of Postfix's cleanup service (the live
# cleanup processes of the instance, from /proc/PID/schedstat, plus any
# child of its master that exited meanwhile, as a cleanup that aborts, from
# the master's cutime and cstime, in clock ticks) and of unitmilter (all
# its threads, in clock ticks); then
# the ratio of each case's cleanup CPU to the baseline's, and any panic,
# fatal, signal or milter-reject line of the maillog.
#
# Usage: header_flood.sh [--count N] [--before UNITMILTER]
#   --count     headers per message (default 20000)
#   --before    also measure this unitmilter binary (e.g. one built from an
#               older commit), first, in the same run: every case with it
#               ("before"), then with the build's ("after")
# Needs root (a throwaway Postfix instance). BUILD_DIR (default build)
# names the build with unitctl and unitmilter; UNITMILTER names the
# "after" binary directly. Run it under the integration lock:
#   flock /tmp/unitpolicy-integration.lock bash tests/bench/header_flood.sh
set -uo pipefail
export IT_TIME_LIMIT=${IT_TIME_LIMIT:-600}
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
after_bin=${UNITMILTER:-$IT_BUILD/src/milter/unitmilter}

count=20000
before_bin=
args=("$@")
while [ $# -gt 0 ]; do
    case $1 in
        --count) count=$2; shift 2 ;;
        --before) before_bin=$2; shift 2 ;;
        *)
            sed -n '/^# Usage:/,/^# Needs root/p' "${BASH_SOURCE[0]}" | sed -e 's/^# \{0,1\}//' >&2
            exit 2 ;;
    esac
done
[[ $count =~ ^[0-9]+$ ]] || { echo "header_flood: --count: a number" >&2; exit 2; }
[ -x "$after_bin" ] || it_skip_all "$after_bin not built"
[ -z "$before_bin" ] || [ -x "$before_bin" ] || it_skip_all "$before_bin is not a program"
command -v smtp-sink >/dev/null || it_skip_all "smtp-sink not installed"
it_init "${args[@]}"

say() { echo "header_flood: $*"; }

# The directory: alice@ on unit1, the sink.
sink_start unit1
IT_DB=$IT_WORK/primary.db
{
    ctl init &&
    ctl domain add example.com &&
    ctl unit add unit1 --nexthop "[127.0.0.1]:${SINK_PORT[unit1]}" &&
    ctl mailbox add alice@example.com --unit unit1 &&
    ctl publish "$IT_WORK/units.db"
} >/dev/null || it_fatal "unitctl could not build the directory"
chmod 0644 "$IT_WORK/units.db"

conf=$IT_WORK/unitmilter.conf
sed -e "s|^listen = .*|listen = unix:$IT_WORK/unitmilter|" \
    -e "s|^trusted_networks = .*|trusted_networks = 127.0.0.3/32|" \
    -e "s|^user = .*|user = nobody|" \
    -e "s|^socket_mode = .*|socket_mode = 0666|" -e "/^socket_group = /d" \
    "$IT_EXAMPLES/unitmilter.conf" >"$conf" || it_fatal "cannot write $conf"
printf '%s\n' "db = $IT_WORK/units.db" "hostname = mx.it.invalid" >>"$conf"

pf_new mx
pf_main mx "relay_domains = example.com" \
    "transport_maps = inline:{example.com=smtp:[127.0.0.1]:${SINK_PORT[unit1]}}" \
    "smtpd_milters = unix:$IT_WORK/unitmilter" "milter_default_action = tempfail" "milter_protocol = 6"
pf_start mx
master_pid=$(sed -n '1s/[^0-9]//gp' "${PF_DIR[mx]}/queue/pid/master.pid")
[ -n "$master_pid" ] || it_fatal "no master pid"

milter_pid=
# filter_start BIN: unitmilter BIN on the socket, logging to $IT_WORK/milter.log.
filter_start() {
    rm -f "$IT_WORK/unitmilter"
    it_spawn "$IT_WORK/milter.log" "$1" --config "$conf" --log stderr
    milter_pid=$IT_LAST_PID
    it_wait_until 10 eval '[ -S "$IT_WORK/unitmilter" ]' || it_fatal "$1 did not start: $(tail -n 3 "$IT_WORK/milter.log")"
}
filter_stop() { it_kill_pid "$milter_pid"; }

# one_case KIND: sends the message; prints "REPLY|SECONDS|CLEANUP_CPU|MILTER_CPU".
one_case() {
    local source=127.0.0.2 name=X-Filler
    case $1 in
        forged) name=X-Unit-Route ;;
        trusted) name=X-Unit-Route; source=127.0.0.3 ;;
    esac
    python3 - "${PF_PORT[mx]}" "$source" "$name" "$count" "$master_pid" "$milter_pid" <<'PYTHON'
import os, smtplib, sys, time

port, source, name, count, master, milter = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
tick = os.sysconf("SC_CLK_TCK")

def ran_ns(pid):
    # CPU time of a live process, in nanoseconds (the scheduler's account).
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return 0

def process_ns(pid):
    # CPU time of a live process and all its threads (utime + stime), in ns.
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // tick
    except (OSError, IndexError, ValueError):
        return 0

def reaped_ns(pid):
    # CPU time of the reaped children of a process (cutime + cstime), in ns.
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) * 1_000_000_000 // tick
    except (OSError, IndexError, ValueError):
        return 0

def cleanup_ns():
    # Live cleanup processes of this instance, plus every child of its
    # master that exited meanwhile (the master reaps them).
    total = reaped_ns(master)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        ppid = text.rsplit(")", 1)[1].split()[1]
        if comm == "cleanup" and ppid == master:
            total += ran_ns(pid)
    return total

lines = ["From: <flood@sender.invalid>", "To: <alice@example.com>", "Subject: header flood",
         f"Message-Id: <flood.{time.time_ns()}@sender.invalid>"]
lines += [f"{name}: hop={i % 5}; gen=1; units=unit1; by=forger.invalid" for i in range(count)]
message = "\r\n".join(lines) + "\r\n\r\nbody\r\n"

smtp = smtplib.SMTP("127.0.0.1", int(port), source_address=(source, 0), timeout=600)
smtp.ehlo("client.it.invalid")
smtp.mail("flood@sender.invalid")
smtp.rcpt("alice@example.com")
c0, m0, t0 = cleanup_ns(), process_ns(milter), time.monotonic()
code, text = smtp.data(message)
seconds = time.monotonic() - t0
time.sleep(0.3)  # let the cleanup process finish its bookkeeping
c1, m1 = cleanup_ns(), process_ns(milter)
try:
    smtp.quit()
except smtplib.SMTPException:
    pass
reply = f"{code} {text.decode(errors='replace')}".replace("\n", " ").replace("|", "/")
print(f"{reply}|{seconds:.3f}|{(c1 - c0) / 1e9:.3f}|{(m1 - m0) / 1e9:.3f}")
PYTHON
}

declare -A CLEANUP
# measure LABEL BIN: every case with that filter.
measure() {
    local label=$1 bin=$2 kind out reply seconds cpu mcpu mark
    filter_start "$bin"
    say "$label: unitmilter $bin"
    for kind in ordinary forged trusted; do
        mark=$(pf_log_mark mx)
        out=$(one_case "$kind") || out="client failed: $out|0|0|0"
        IFS='|' read -r reply seconds cpu mcpu <<<"$out"
        CLEANUP[$label.$kind]=$cpu
        say "$label: $kind: $count headers: \"$reply\" after $seconds s; cleanup CPU $cpu s, unitmilter CPU $mcpu s"
        pf_log_since mx "$mark" | grep -E 'panic:|fatal:|signal [0-9]+|milter-reject' | head -n 3 \
            | sed -e "s/^/header_flood: $label: $kind: maillog: /"
    done
    for kind in forged trusted; do
        say "$label: $kind/ordinary cleanup CPU: $(awk -v a="${CLEANUP[$label.$kind]}" -v b="${CLEANUP[$label.ordinary]}" \
            'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a (baseline 0)" }')"
    done
    filter_stop
}

[ -z "$before_bin" ] || measure before "$before_bin"
measure after "$after_bin"
if [ -n "$before_bin" ]; then
    for kind in ordinary forged trusted; do
        say "after/before cleanup CPU, $kind: $(awk -v a="${CLEANUP[after.$kind]}" -v b="${CLEANUP[before.$kind]}" \
            'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a (before 0)" }')"
    done
fi
