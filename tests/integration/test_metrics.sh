#!/bin/bash
# test_metrics.sh: --metrics on both daemons, scraped with curl: the
# Prometheus text format over HTTP, counters that follow the traffic (two
# socketmap lookups through Postfix's own client, one message through
# miltertest), each daemon's build_info and the standard process_* metrics
# (checked against /proc/PID), 404 elsewhere, and the port closed after
# SIGTERM.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IT_UNITMILTER=${UNITMILTER:-$IT_BUILD/src/milter/unitmilter}
it_init "$@"
command -v curl >/dev/null || it_skip_all "curl not installed (bash tools/install-deps.sh)"
command -v miltertest >/dev/null || it_skip_all "miltertest not installed (bash tools/install-deps.sh)"

IT_DB=$IT_WORK/primary.db
IT_REPLICA=$IT_WORK/units.db
{
    ctl init &&
    ctl domain add example.com &&
    ctl unit add unit1 --nexthop '[unit1.example.com]' &&
    ctl mailbox add alice@example.com --unit unit1
} >/dev/null || it_fatal "unitctl could not build the test directory"
it_publish

# scrape PORT [PATH]: the HTTP response, headers included.
scrape() { curl -s -S -m 5 -i "http://127.0.0.1:$1${2:-/metrics}" 2>&1; }
# metric PORT LINE: the scrape has exactly this sample line.
metric() {
    local page
    page=$(scrape "$1" | tr -d '\r')
    printf '%s\n' "$page" | grep -xF -- "$2" >/dev/null
}
# matches PORT REGEX: the scrape has a line that REGEX (extended) matches whole.
matches() { scrape "$1" | tr -d '\r' | grep -xE -- "$2" >/dev/null; }
# value PORT NAME: the value of the unlabelled sample NAME.
value() { scrape "$1" | tr -d '\r' | awk -v n="$2" '$1 == n { print $2 }'; }
# self_metrics DAEMON PORT PID: DAEMON_build_info and process_* as PID's /proc says.
self_metrics() {
    local daemon=$1 port=$2 pid=$3 version start now fds limit
    version=$("${4:-$IT_UNITPOLICY}" --version | awk '{ print $2 }')
    it_check "$daemon: build_info names its version ($version) and SQLite's" "$(scrape "$port" | grep build_info)" \
        matches "$port" "${daemon}_build_info\\{version=\"${version//./\\.}\",sqlite=\"3\\.[0-9.]+\"\\} 1"
    start=$(value "$port" process_start_time_seconds)
    now=$(date +%s)
    it_check "$daemon: process_start_time_seconds within a minute before now" "start $start, now $now" \
        awk -v s="$start" -v n="$now" 'BEGIN { exit !(s != "" && s <= n + 1 && s > n - 60) }'
    fds=$(value "$port" process_open_fds)
    it_check "$daemon: process_open_fds near the count in /proc/$pid/fd" \
        "metric $fds, /proc $(ls "/proc/$pid/fd" | wc -l)" \
        awk -v m="$fds" -v p="$(ls "/proc/$pid/fd" | wc -l)" 'BEGIN { exit !(m != "" && m >= p - 2 && m <= p + 2) }'
    limit=$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")
    it_check "$daemon: process_max_fds is the soft limit in /proc/$pid/limits" "$(value "$port" process_max_fds) vs $limit" \
        metric "$port" "process_max_fds $limit"
    it_check "$daemon: resident and virtual memory, CPU time" "$(scrape "$port" | grep -E '^process_(res|vir|cpu)')" \
        awk -v r="$(value "$port" process_resident_memory_bytes)" -v v="$(value "$port" process_virtual_memory_bytes)" \
            -v c="$(value "$port" process_cpu_seconds_total)" 'BEGIN { exit !(r > 0 && v >= r && c != "" && c >= 0) }'
}

# --- unitpolicy
it_alloc_port ppolicy
it_spawn "$IT_WORK/unitpolicy.log" "$IT_UNITPOLICY" --db "$IT_REPLICA" --log stderr \
    --socketmap-listen "unix:$IT_WORK/map" --metrics "inet:127.0.0.1:$ppolicy"
policy_pid=$IT_LAST_PID
it_check "unitpolicy: metrics port open" "nothing on $ppolicy: $(tail -n 3 "$IT_WORK/unitpolicy.log")" \
    it_wait_until 10 it_port_open "$ppolicy"
postmap -q alice@example.com "socketmap:unix:$IT_WORK/map:recipient" >/dev/null
postmap -q nobody@example.com "socketmap:unix:$IT_WORK/map:recipient" >/dev/null

out=$(scrape "$ppolicy")
it_expect_match "unitpolicy: 200 OK" '^HTTP/1.1 200 OK' "$out"
it_expect_match "unitpolicy: Prometheus text format 0.0.4" 'Content-Type: text/plain; version=0.0.4' "$out"
it_check "unitpolicy: two socketmap requests counted" "$(printf '%s' "$out" | grep requests_total)" \
    metric "$ppolicy" 'unitpolicy_requests_total{protocol="socketmap"} 2'
it_check "unitpolicy: one OK and one NOTFOUND" "$(printf '%s' "$out" | grep replies_total)" \
    eval 'metric "$ppolicy" "unitpolicy_socketmap_replies_total{reply=\"ok\"} 1" &&
          metric "$ppolicy" "unitpolicy_socketmap_replies_total{reply=\"notfound\"} 1"'
it_check "unitpolicy: the generation served is exported" "$(printf '%s' "$out" | grep replica_generation)" \
    eval '[[ $(scrape "$ppolicy") =~ unitpolicy_replica_generation\ [1-9] ]]'
it_check "unitpolicy: a histogram of request durations" "no +Inf bucket of 2" \
    metric "$ppolicy" 'unitpolicy_request_duration_seconds_bucket{le="+Inf"} 2'
self_metrics unitpolicy "$ppolicy" "$policy_pid"
it_expect_match "unitpolicy: other paths are 404" '^HTTP/1.1 404' "$(scrape "$ppolicy" /)"
it_stop_daemon unitpolicy "$policy_pid" 10
it_check "unitpolicy: metrics port closed after SIGTERM" "still open" it_not it_port_open "$ppolicy"

# --- unitmilter
it_alloc_port pmilter
it_spawn "$IT_WORK/unitmilter.log" "$IT_UNITMILTER" --db "$IT_REPLICA" --log stderr --hostname mx.test \
    --listen "unix:$IT_WORK/milter" --metrics "inet:127.0.0.1:$pmilter"
milter_pid=$IT_LAST_PID
it_check "unitmilter: metrics port open" "nothing on $pmilter: $(tail -n 3 "$IT_WORK/unitmilter.log")" \
    it_wait_until 10 it_port_open "$pmilter"
# The stats are made at their first use (this scrape): the uptime must
# still count from the start.
sleep 2
uptime=$(scrape "$pmilter" | tr -d '\r' | sed -n 's/^unitmilter_uptime_seconds \([0-9.e+-]*\)$/\1/p')
it_check "unitmilter: uptime counts from the start, not from the first scrape" "uptime '$uptime' after 2 s" \
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 2 else 1)' "${uptime:-0}"
cat >"$IT_WORK/one.lua" <<LUA
local conn = mt.connect("unix:$IT_WORK/milter", 40, 0.25)
assert(conn, "cannot connect")
assert(mt.conninfo(conn, "outside.example.net", "198.51.100.7") == nil)
assert(mt.macro(conn, SMFIC_MAIL, "i", "4BCC") == nil)
assert(mt.rcptto(conn, "<alice@example.com>") == nil)
assert(mt.header(conn, "X-Unit-Route", "hop=9; units=forged") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "message not accepted")
mt.disconnect(conn)
LUA
miltertest -s "$IT_WORK/one.lua" >"$IT_WORK/miltertest.out" 2>&1
it_expect_eq "unitmilter: miltertest sends one message" 0 "$?"
out=$(scrape "$pmilter")
it_expect_match "unitmilter: 200 OK" '^HTTP/1.1 200 OK' "$out"
it_check "unitmilter: one message accepted" "$(printf '%s' "$out" | grep messages_total)" \
    metric "$pmilter" 'unitmilter_messages_total{result="accepted"} 1'
it_check "unitmilter: the forged route header removed and counted" "$(printf '%s' "$out" | grep headers_removed)" \
    metric "$pmilter" 'unitmilter_headers_removed_total 1'
it_check "unitmilter: one connection" "$(printf '%s' "$out" | grep connections)" \
    metric "$pmilter" 'unitmilter_connections_total 1'
self_metrics unitmilter "$pmilter" "$milter_pid" "$IT_UNITMILTER"
it_stop_daemon unitmilter "$milter_pid" 10

it_summary
