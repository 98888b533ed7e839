#!/bin/bash
# tests/bench/baselines.sh: the two baselines of DESIGN §8, measured on the
# same directory as unitpolicy, in the same run (tests/bench/run.sh):
#
#   postmap-sqlite  Postfix's own sqlite: table, the query shapes of
#                   tests/integration/baseline/ (relay_recipients.cf for
#                   the recipient check, transport.cf for the route), read
#                   in one process by "postmap -q -" over a list of keys
#                   (existing and unknown addresses): no socket, no
#                   protocol, the lookup alone. Each batch is checked: the
#                   number of keys found must be the number that exist.
#   postfwd2        Debian's postfwd2 (Net::Server prefork) answering the
#                   policy delegation protocol on a Unix socket with one
#                   recipient rule: DUNNO for an address of the directory,
#                   "550 5.1.1 User unknown" for an unknown address of a
#                   served domain, looked up in a Perl hash of every
#                   address (an item plugin; postfwd's own file: lists are
#                   scanned item by item, hopeless at a million). Driven by
#                   the project's load generator (bench_lookup --target) at
#                   each connection count; CPU and memory are summed over
#                   every postfwd2 process.
#
# Usage: baselines.sh [--dataset DIR | --mailboxes N] [--connections "8 64"]
#                     [--seconds S] [--lookups N] [--repeats R] [--json FILE]
#   --dataset DIR   DIR/units.db (a published replica) and DIR/keys, as
#                   "bench_lookup --mailboxes N --dir DIR" leaves them.
#                   Without it, a directory of N mailboxes (default
#                   1,000,000) is made here with unitctl import, in the
#                   shape of tests/toolkit's make_dataset() (3 domains, 1,000
#                   units, one alias per 100 mailboxes).
#   --json FILE     appends one JSON line per figure (tests/bench/README.md).
# BUILD_DIR (default build) names the build with unitctl and bench_lookup;
# BENCH_LOOKUP overrides the latter. KEEP_BENCH=1 keeps the work directory.
# postfwd2 needs root (it drops to nobody) and Debian's postfwd package;
# without either, or without bench_lookup, its figures are skipped with a
# "skip:" line, and the script still exits 0.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
unitctl=$build/src/ctl/unitctl
bench_lookup=${BENCH_LOOKUP:-$build/tests/bench/bench_lookup}

dataset=
mailboxes=1000000
connections="8 64"
seconds=10
lookups=100000
repeats=3
json=/dev/null
unknown_share=0.2

usage() {
    sed -n '/^# Usage:/,/^# BUILD_DIR/p' "${BASH_SOURCE[0]}" | sed -e 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --dataset) dataset=$2; shift 2 ;;
        --mailboxes) mailboxes=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --lookups) lookups=$2; shift 2 ;;
        --repeats) repeats=$2; shift 2 ;;
        --json) json=$2; shift 2 ;;
        *) usage ;;
    esac
done
[ "$json" = /dev/null ] || : >>"$json"
connections=${connections//,/ }

say() { echo "baselines: $*"; }
skip() { echo "skip: baselines: $*"; }

# json_line KEY=VALUE...: one JSON object (numbers, null and [lists] bare,
# the rest quoted).
json_line() {
    local kv first=1 out="{"
    for kv in "$@"; do
        local k=${kv%%=*} v=${kv#*=}
        [ $first -eq 1 ] || out+=","
        first=0
        if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || [ "$v" = null ] || [[ $v = \[* ]]; then
            out+="\"$k\":$v"
        else
            out+="\"$k\":\"$v\""
        fi
    done
    printf '%s}\n' "$out"
}

# calc EXPRESSION: floating-point arithmetic (awk).
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# median: the median of the numbers on stdin, one per line.
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

work=$(mktemp -d /tmp/upbench-base.XXXXXX)
chmod 0755 "$work"
postfwd_pidfile=$work/postfwd/postfwd2.pid
cleanup() {
    if declare -F postfwd_stop >/dev/null; then postfwd_stop; fi
    if [ -n "${KEEP_BENCH:-}" ]; then echo "baselines: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- the directory

# make_dataset DIR N: DIR/units.db with N mailboxes and DIR/keys, made
# with unitctl from a generated CSV.
make_dataset() {
    local dir=$1 n=$2
    python3 - "$dir" "$n" <<'EOF'
# The shape of tests/toolkit's make_dataset(): mailbox i is user<i>@<domain
# i mod 3> on unit i mod 1000, alias j (one per 100 mailboxes) points at
# mailboxes 2j and 2j+1, unknown addresses are nobody<i>@<domain>.
import sys
out, n = sys.argv[1], int(sys.argv[2])
domains = ["example.com", "example.net", "example.org"]
units, aliases, sample = 1000, n // 100, 100000
def mailbox(i):
    return f"user{i}@{domains[i % 3]}"
with open(f"{out}/input.csv", "w") as csv:
    csv.write("kind,address,value,state\n")
    for d in domains:
        csv.write(f"domain,{d},,\n")
    for u in range(1, units + 1):
        csv.write(f"unit,unit{u:04d},smtp:[unit{u:04d}.example],active\n")
    for i in range(n):
        csv.write(f"mailbox,{mailbox(i)},unit{i % units + 1:04d},active\n")
    for j in range(aliases):
        for target in (2 * j % n, (2 * j + 1) % n):
            csv.write(f"alias,alias{j}@{domains[j % 3]},{mailbox(target)},\n")
with open(f"{out}/keys", "w") as keys:
    existing = [mailbox(i) for i in range(0, n, max(1, n // sample))][:sample]
    keys.writelines(f"existing {a}\n" for a in existing)
    keys.writelines(f"alias alias{j}@{domains[j % 3]}\n" for j in range(min(aliases, sample)))
    keys.writelines(f"unknown nobody{i}@{domains[i % 3]}\n" for i in range(len(existing)))
EOF
    "$unitctl" --db "$dir/primary.db" init >/dev/null
    "$unitctl" --db "$dir/primary.db" import "$dir/input.csv" >/dev/null
    "$unitctl" --db "$dir/primary.db" publish "$dir/units.db" >/dev/null
    chmod 0644 "$dir/units.db" "$dir/keys"
    rm -f "$dir/input.csv"
}

if [ -n "$dataset" ]; then
    db=$dataset/units.db
    keys=$dataset/keys
    if [ ! -r "$db" ] || [ ! -r "$keys" ]; then
        echo "baselines: $dataset has no units.db or keys" >&2
        exit 1
    fi
else
    [ -x "$unitctl" ] || { echo "baselines: $unitctl not built (meson compile -C $build)" >&2; exit 1; }
    mkdir -p "$work/data"
    chmod 0755 "$work/data"
    say "making a directory of $mailboxes mailboxes with unitctl import"
    t0=$(date +%s.%N)
    make_dataset "$work/data" "$mailboxes"
    say "directory made in $(calc "$(date +%s.%N) - $t0") s"
    db=$work/data/units.db
    keys=$work/data/keys
fi
mailboxes=$(sqlite3 -readonly "$db" 'SELECT count(*) FROM mailboxes')
say "directory $db: $mailboxes mailboxes, $(grep -c '' "$keys") keys"

# mixed_keys COUNT: COUNT addresses, one in 1/unknown_share unknown, the
# others existing mailboxes, spread over the key list (the same mix as
# bench_lookup's workloads).
mixed_keys() {
    awk -v count="$1" -v share="$unknown_share" '
        $1 == "existing" { e[ne++] = $2 }
        $1 == "unknown" { u[nu++] = $2 }
        END {
            every = int(1 / share + 0.5)
            for (i = 0; i < count; i++) {
                if (i % every == every - 1) print u[int(i / every) % nu]
                else print e[(i * 7919) % ne]
            }
        }' "$keys"
}

# ---------------------------------------------------------------- postmap -q - sqlite:

# sqlite_baseline MAP CF: postmap -q - sqlite:CF over $lookups mixed keys,
# $repeats times; prints the median rate and appends its JSON line.
sqlite_baseline() {
    local map=$1 cf=$2 expected found rates=() i out t0 t1 cpu cpus=()
    mixed_keys "$lookups" >"$work/lookups"
    expected=$(grep -cFxf <(awk '$1 == "existing" { print $2 }' "$keys") "$work/lookups")
    cat "$db" >/dev/null   # the file in the page cache, as for every server
    for i in $(seq 1 "$repeats"); do
        out=$work/postmap.times
        t0=$(date +%s.%N)
        # /proc/self/stat of the subshell after postmap: its children's CPU
        ( postmap -q - "sqlite:$cf" <"$work/lookups" >"$work/found"
          read -r -a st </proc/self/stat
          echo "${st[15]} ${st[16]}" >"$out" )
        t1=$(date +%s.%N)
        found=$(grep -c '' "$work/found" || true)
        if [ "$found" -ne "$expected" ]; then
            echo "baselines: postmap sqlite:$map found $found of $lookups keys, expected $expected" >&2
            exit 1
        fi
        rates+=("$(calc "$lookups / ($t1 - $t0)")")
        read -r cu cs <"$out"
        cpus+=("$(calc "($cu + $cs) / $(getconf CLK_TCK) * 1000000 / $lookups")")
    done
    local rate cpu
    rate=$(printf '%s\n' "${rates[@]}" | median)
    cpu=$(printf '%s\n' "${cpus[@]}" | median)
    local format='baselines: postmap -q - sqlite: %-11s %8.0f lookups/s  %5.1f us CPU/lookup'
    format+='  (median of %d x %d keys, %d found)\n'
    # shellcheck disable=SC2059 # the format is the variable above
    printf "$format" \
        "$map" "$rate" "$cpu" "$repeats" "$lookups" "$expected"
    json_line kind=lookup server=postmap-sqlite protocol=table map="$map" mailboxes="$mailboxes" connections=0 \
        requests=$((lookups * repeats)) rate="$(printf '%.0f' "$rate")" \
        rates="[$(printf '%.0f,' "${rates[@]}" | sed 's/,$//')]" \
        cpu_us_per_lookup="$(printf '%.2f' "$cpu")" p50_us=null p99_us=null wrong=0 >>"$json"
}

maps=$work/maps
mkdir -p "$maps"
for f in relay_recipients transport; do
    sed -e "s|@DB@|$db|" "$root/tests/integration/baseline/$f.cf" >"$maps/$f.cf"
done
if postconf -m 2>/dev/null | grep -x sqlite >/dev/null; then
    sqlite_baseline recipient "$maps/relay_recipients.cf"
    sqlite_baseline transportmx "$maps/transport.cf"
else
    skip "postfix-sqlite not installed: no sqlite: baseline"
fi

# ---------------------------------------------------------------- postfwd2

# postfwd_tree: the pids of postfwd2's master and all its descendants.
postfwd_tree() {
    local master
    master=$(cat "$postfwd_pidfile" 2>/dev/null) || return 0
    ps -e -o pid=,ppid= | awk -v root="$master" '
        { parent[$1] = $2 }
        END {
            keep[root] = 1; changed = 1
            while (changed) {
                changed = 0
                for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
            }
            for (p in keep) if (p in parent) print p
        }'
}

# postfwd_cpu_ticks: CPU ticks of the tree, reaped children included
# (each tick counted once: a process's own time while it lives, then in
# the cutime of the ancestor that reaped it).
postfwd_cpu_ticks() {
    local pid total=0 st
    for pid in $(postfwd_tree); do
        read -r -a st <"/proc/$pid/stat" 2>/dev/null || continue
        # fields 14-17 (1-based): utime stime cutime cstime; the command
        # name (field 2) has no blank in postfwd's case.
        total=$((total + st[13] + st[14] + st[15] + st[16]))
    done
    echo "$total"
}

# postfwd_memory: "PROCESSES RSS_BYTES PSS_BYTES" summed over the tree.
postfwd_memory() {
    local pid n=0 rss=0 pss=0 r p
    for pid in $(postfwd_tree); do
        r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
        p=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null) || p=0
        n=$((n + 1)); rss=$((rss + ${r:-0})); pss=$((pss + ${p:-0}))
    done
    echo "$n $((rss * 1024)) $((pss * 1024))"
}

postfwd_stop() {
    local master i
    master=$(cat "$postfwd_pidfile" 2>/dev/null) || return 0
    [ -n "$master" ] || return 0
    local tree
    tree=$(postfwd_tree)
    kill -TERM "$master" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$master" 2>/dev/null || break
        sleep 0.1
    done
    # children the master did not take down with it
    for i in $tree; do kill -KILL "$i" 2>/dev/null || true; done
    rm -f "$postfwd_pidfile"
}

# postfwd_start MAX_CHILDREN: postfwd2 on $work/postfwd/policy.sock with
# the plugin and the rule; waits until the socket answers.
postfwd_start() {
    local max=$1 dir=$work/postfwd perl=(perl -T -w)
    rm -f "$dir/policy.sock" "$dir/cache.socket"
    # Net::Server (under postfwd2's policy and cache daemons) logs only to
    # syslog and dies at start-up when nothing listens on /dev/log (a
    # container): there, a stand-in logger writes its lines to a file.
    if [ ! -S /dev/log ]; then
        mkdir -p "$dir/perl/Net/Server/Log/Sys"
        cat >"$dir/perl/Net/Server/Log/Sys/Syslog.pm" <<EOF
# Net::Server's syslog logger, writing to $dir/net-server.log instead.
package Net::Server::Log::Sys::Syslog;
use strict;
use warnings;
use IO::Handle;
sub initialize {
    open(my \$log, '>>', '$dir/net-server.log') or die "cannot open $dir/net-server.log: \$!";
    \$log->autoflush(1);
    return sub { my (\$level, \$msg) = @_; print \$log "\$level \$msg\n"; };
}
sub handle_log_error { }
1;
EOF
        chmod -R a+rX "$dir/perl"
        perl+=(-I "$dir/perl")
    fi
    "${perl[@]}" "$(command -v postfwd2)" --daemon --proto unix --port "$dir/policy.sock" --server_umask 0000 \
        --cache_port "$dir/cache.socket" --user nobody --group nogroup --pidfile "$postfwd_pidfile" \
        --file "$dir/postfwd.cf" --plugins "$dir/plugin.pm" \
        --nodns --cache 0 --no_parent_cache --norulelog --no-rulestats --noidlestats --summary 0 \
        --min_servers "$max" --max_servers $((max + 8)) \
        --min_spare_servers 2 --max_spare_servers $((max + 4)) \
        >"$dir/postfwd.log" 2>&1 || { cat "$dir/postfwd.log" >&2; return 1; }
    local i
    for i in $(seq 1 600); do
        if [ -S "$dir/policy.sock" ] && postfwd_ask unknown-probe@example.com >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "baselines: postfwd2 did not answer on $dir/policy.sock within 60 s" >&2
    cat "$dir/postfwd.log" "$dir/net-server.log" >&2 2>/dev/null
    postfwd_stop
    return 1
}

# postfwd_ask RECIPIENT: one policy request; prints the action.
postfwd_ask() { python3 "$root/tests/policy_rcpt.py" "$work/postfwd/policy.sock" "$1" 192.0.2.1; }

postfwd_baseline() {
    if [ "$(id -u)" -ne 0 ]; then skip "postfwd2 needs root (it runs as nobody)"; return; fi
    if ! command -v postfwd2 >/dev/null; then skip "postfwd2 not installed (apt-get install postfwd)"; return; fi
    if [ ! -x "$bench_lookup" ]; then skip "$bench_lookup not built: no postfwd2 figures"; return; fi
    local dir=$work/postfwd
    mkdir -p "$dir"
    chmod 0755 "$dir"
    chown nobody:nogroup "$dir"   # postfwd2 makes its sockets and pid file as nobody
    # Every address that receives mail (mailboxes not disabled, aliases),
    # and the served domains: what relay_recipients.cf answers from.
    sqlite3 -readonly "$db" "SELECT address FROM mailboxes WHERE state <> 'disabled'
                             UNION ALL SELECT DISTINCT address FROM aliases" >"$dir/addresses"
    sqlite3 -readonly "$db" 'SELECT name FROM domains' >"$dir/domains"
    cat >"$dir/plugin.pm" <<EOF
# postfwd2 item plugin: rcpt_status = known, unknown or foreign, from Perl
# hashes of the directory's addresses and domains, loaded once at start-up
# (before the prefork children are forked, who share them).
my (%address, %domain);
for my \$list (['$dir/addresses', \\%address], ['$dir/domains', \\%domain]) {
    open(my \$fh, '<', \$list->[0]) or die "cannot read \$list->[0]: \$!";
    while (my \$line = <\$fh>) { chomp \$line; \$list->[1]{\$line} = 1; }
    close(\$fh);
}
%postfwd_items_plugin = (
    "rcpt_status" => sub {
        my (%request) = @_;
        my \$rcpt = lc(\$request{recipient} // '');
        my (\$local, \$dom) = \$rcpt =~ /^(.*)\@([^\@]*)\$/ or return (rcpt_status => 'foreign');
        return (rcpt_status => 'foreign') unless \$domain{\$dom};
        return (rcpt_status => 'known') if \$address{\$rcpt};
        \$local =~ s/\+.*//;   # recipient_delimiter = +
        return (rcpt_status => \$address{"\$local\@\$dom"} ? 'known' : 'unknown');
    },
);
1;
EOF
    cat >"$dir/postfwd.cf" <<'EOF'
# Unknown recipients of served domains: 550. Everything else: no rule
# matches, and postfwd2 answers DUNNO.
id=UNKNOWN; protocol_state==RCPT; rcpt_status==unknown; action=550 5.1.1 User unknown
EOF
    chmod 0644 "$dir"/*
    local c t0 started mem cpu0 cpu1 out line processes rss pss cpu_us requests
    for c in $connections; do
        t0=$(date +%s.%N)
        postfwd_start "$c" || { skip "postfwd2 did not start"; return; }
        started=$(calc "$(date +%s.%N) - $t0")
        # the load generator's truth must agree with postfwd's
        if [ "$(postfwd_ask "$(awk '$1 == "unknown" { print $2; exit }' "$keys")")" != "550 5.1.1 User unknown" ] ||
            [ "$(postfwd_ask "$(awk '$1 == "existing" { print $2; exit }' "$keys")")" != DUNNO ]; then
            echo "baselines: postfwd2 gives wrong answers:" >&2
            tail -n 20 "$dir/postfwd.log" >&2
            exit 1
        fi
        cpu0=$(postfwd_cpu_ticks)
        out=$dir/drive.$c.json
        "$bench_lookup" --target "policy:unix:$dir/policy.sock" --label postfwd2 \
            --connections "$c" --seconds "$seconds" --keys "$keys" --unknown-share "$unknown_share" \
            --json >"$out" &
        local driver=$!
        sleep "$(calc "$seconds * 0.8")"
        mem=$(postfwd_memory)
        wait "$driver" || { echo "baselines: bench_lookup --target failed" >&2; exit 1; }
        cpu1=$(postfwd_cpu_ticks)
        read -r processes rss pss <<<"$mem"
        line=$(grep '"kind":"lookup"' "$out" | tail -n 1)
        requests=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests"])' "$line")
        cpu_us=$(calc "($cpu1 - $cpu0) / $(getconf CLK_TCK) * 1000000 / $requests")
        line=$(python3 - "$line" "$mailboxes" "$processes" "$rss" "$pss" "$cpu_us" "$started" <<'EOF'
import json, sys
figure = json.loads(sys.argv[1])
figure.update(server="postfwd2", mailboxes=int(sys.argv[2]), processes=int(sys.argv[3]),
              rss_bytes=int(sys.argv[4]), pss_bytes=int(sys.argv[5]),
              cpu_us_per_lookup=round(float(sys.argv[6]), 2), startup_ms=round(float(sys.argv[7]) * 1000))
print(json.dumps(figure, separators=(",", ":")))
EOF
)
        echo "$line" >>"$json"
        python3 - "$line" <<'EOF'
import json, sys
f = json.loads(sys.argv[1])
print("baselines: postfwd2 %3d conns %8.0f lookups/s  p99 %7.2f ms  %6.1f us CPU/lookup  "
      "%d processes, RSS %d MB summed (PSS %d MB)  wrong %d  started in %.1f s"
      % (f["connections"], f["rate"], f["p99_us"] / 1000, f["cpu_us_per_lookup"], f["processes"],
         f["rss_bytes"] >> 20, f["pss_bytes"] >> 20, f.get("wrong", 0), f["startup_ms"] / 1000))
EOF
        postfwd_stop
    done
}
postfwd_baseline
