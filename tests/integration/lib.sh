# shellcheck shell=bash
# tests/integration/lib.sh: throwaway real Postfix instances, smtp-sink
# "units" and TAP-like assertions for the integration tests (DESIGN §9).
# Sourced by tests/integration/test_*.sh; needs root, Debian's postfix,
# postfix-sqlite and swaks (tools/debian-packages.txt).
#
# What it does to the machine, and undoes:
# - Postfix instances live in slots $IT_BASE/pfN (N = 1..$IT_SLOTS): pfN/etc
#   is the config directory (main.cf, master.cf), pfN/queue the
#   queue_directory, pfN/data the data_directory (owned by postfix) and
#   pfN/log/maillog the maillog_file (under /var, a default
#   maillog_file_prefixes entry). postqueue(1) and postdrop(1) are set-gid,
#   so they accept "-c DIR" only when DIR is listed in the
#   alternate_config_directories of /etc/postfix/main.cf: it_init adds the
#   fixed slot directories there for the life of the test process, and the
#   last test process to end (or the next one to start, after a run killed
#   with SIGKILL) puts the file back byte for byte (see "main.cf, borrowed"
#   below; the system instance is neither started nor stopped). A slot is
#   held with flock(1) for the life of the test process, so parallel runs
#   never share one, and a slot left behind by a killed run is stopped and
#   wiped when it is taken next.
# - Every instance listens on 127.0.0.1 only, on a free port chosen at run
#   time; chroot is off for every service; DNS is off
#   (smtp_dns_support_level = disabled, smtpd_peername_lookup = no), the
#   default transport is error: and the relay transport a loopback port
#   where nobody listens, so no mail and no lookup ever leaves loopback.
# - it_init registers an EXIT trap that stops every instance (postfix stop,
#   then the master's pid if it lingers), every smtp-sink and every process
#   started with it_spawn (by pid), and removes the temporary directories.
#   The whole script runs under timeout(1) (IT_TIME_LIMIT seconds, default
#   160, then 20 s for the clean-up), and every wait in here has a deadline.
#
# Output: "ok NAME" or "not ok NAME: why" per assertion, "# ..." for
# diagnostics, and it_summary's last line "integration: N passed, M failed".

# Debian's own programs first: the tests need its python3, postfix and
# swaks, not a user's shims (a pyenv shim costs seconds per call).
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

IT_BASE=${IT_BASE:-/var/tmp/unitpolicy-it}   # under /var: maillog_file_prefixes
IT_SLOTS=8
IT_TIME_LIMIT=${IT_TIME_LIMIT:-160}
IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_BUILD=${BUILD_DIR:-$IT_ROOT/build}
case $IT_BUILD in /*) ;; *) IT_BUILD=$IT_ROOT/$IT_BUILD ;; esac
IT_UNITCTL=$IT_BUILD/src/ctl/unitctl
IT_UNITPOLICY=$IT_BUILD/src/policyd/unitpolicy
IT_EXAMPLES=$IT_ROOT/examples
# shellcheck source=tools/postfix_instance.sh
. "$IT_ROOT/tools/postfix_instance.sh"

IT_PASSED=0
IT_FAILED=0
IT_WORK=
IT_PORTS=()
IT_PIDS=()
IT_INSTANCES=()
IT_CLEANED=0
declare -A PF_DIR PF_CONF PF_PORT PF_LOCKFD
declare -A SINK_PORT SINK_DIR SINK_PID

# ---------------------------------------------------------------- reporting

it_ok() { IT_PASSED=$((IT_PASSED + 1)); echo "ok $1"; }

it_not_ok() { IT_FAILED=$((IT_FAILED + 1)); echo "not ok $1: $2"; }

# it_diag TEXT...: diagnostics, each line prefixed with "# ".
it_diag() { printf '%s\n' "$@" | sed -e 's/^/# /'; }

# it_check NAME WHY COMMAND...: ok when COMMAND succeeds, else "not ok
# NAME: WHY". WHY is expanded only then (single-quote it to show the state
# after the failure: 'unit2 has: $(sink_list unit2)').
it_check() {
    local name=$1 why=$2
    shift 2
    if "$@"; then
        it_ok "$name"
    else
        it_not_ok "$name" "$(eval "printf '%s' \"$why\"" 2>&1 | tr '\n' ' ')"
    fi
}

# it_not COMMAND...: succeeds when COMMAND fails.
it_not() { ! "$@"; }

# it_expect_eq NAME EXPECTED ACTUAL
it_expect_eq() {
    if [ "$2" = "$3" ]; then
        it_ok "$1"
    else
        it_not_ok "$1" "expected '$2', got '$3'"
    fi
}

# it_expect_match NAME ERE TEXT: TEXT (one or more lines) matches ERE.
it_expect_match() {
    if printf '%s\n' "$3" | grep -E -- "$2" >/dev/null; then
        it_ok "$1"
    else
        it_not_ok "$1" "expected /$2/, got '$(printf '%s' "$3" | head -c 300 | tr '\n' '|')'"
    fi
}

# it_summary: the last line; returns 1 when an assertion failed.
it_summary() {
    echo "integration: $IT_PASSED passed, $IT_FAILED failed"
    [ "$IT_FAILED" -eq 0 ]
}

# it_skip_all REASON: nothing can run here; say why and exit 0.
it_skip_all() {
    echo "skip: $1"
    echo "integration: 0 passed, 0 failed"
    exit 0
}

# it_fatal WHY: the harness itself failed; counts as a failure and exits.
it_fatal() {
    it_not_ok "harness" "$1"
    it_summary
    exit 1
}

# (No "grep -q" after a pipe in here: with pipefail, grep exiting at the
# first match can kill the writer with SIGPIPE and fail the pipeline.)

# it_word_in WORD LIST...: WORD is one of LIST.
it_word_in() {
    local want=$1 w
    shift
    for w in "$@"; do [ "$w" = "$want" ] && return 0; done
    return 1
}

# ---------------------------------------------------------------- waiting

# it_wait_until SECONDS COMMAND...: polls COMMAND every 0.2 s until it
# succeeds (0) or SECONDS have passed (1).
it_wait_until() {
    local limit=$1
    shift
    local deadline=$((SECONDS + limit))
    while :; do
        "$@" && return 0
        [ "$SECONDS" -ge "$deadline" ] && break
        sleep 0.2
    done
    "$@"
}

# it_port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
it_port_open() {
    timeout --foreground 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# it_alloc_port VAR: a free TCP port on 127.0.0.1, not handed out before in
# this run, into VAR.
it_alloc_port() {
    local _it_port
    _it_port=$(python3 - "${IT_PORTS[@]}" <<'EOF'
import random, socket, sys
used = {int(p) for p in sys.argv[1:]}
for _ in range(500):
    port = random.randint(20000, 32000)
    if port in used:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit(1)
EOF
) || it_fatal "no free port on 127.0.0.1"
    IT_PORTS+=("$_it_port")
    printf -v "$1" '%s' "$_it_port"
}

# ---------------------------------------------------------------- set-up

# it_init: checks the environment, re-runs the script under timeout(1),
# creates $IT_WORK (a 0755 temporary directory) and the EXIT trap.
it_init() {
    if [ -z "${IT_UNDER_TIMEOUT:-}" ]; then
        export IT_UNDER_TIMEOUT=1
        exec timeout -k 20 "$IT_TIME_LIMIT" bash "$0" "$@"
    fi
    [ "$(id -u)" -eq 0 ] || it_skip_all "integration tests need root (they run throwaway Postfix instances)"
    local tool
    for tool in postfix postconf postqueue postmap smtp-sink swaks python3 flock; do
        command -v "$tool" >/dev/null 2>&1 \
            || it_skip_all "$tool not installed (bash tools/install-deps.sh)"
    done
    postconf -m | grep -x sqlite >/dev/null || it_skip_all "postfix-sqlite not installed"
    [ -x "$IT_UNITCTL" ] || it_skip_all "$IT_UNITCTL not built (meson compile -C build)"

    IT_WORK=$(mktemp -d /tmp/upit.XXXXXX) || it_fatal "mktemp failed"
    chmod 0755 "$IT_WORK"
    trap it_cleanup EXIT
    trap 'it_not_ok "interrupted" "SIGINT"; it_summary; exit 130' INT
    trap 'it_not_ok "time limit" "the script ran longer than ${IT_TIME_LIMIT} s"; it_summary; exit 124' TERM
    it_register_config_dirs
}

# ------------------------------------------ /etc/postfix/main.cf, borrowed
#
# The slot directories are listed in the system main.cf only while a test
# process runs, and the file ends byte for byte as it was before the first
# of them started. State, under $IT_BASE/.main-cf and changed only under
# flock on $IT_BASE/.register.lock:
#   orig/main.cf  the system main.cf as it was before the first user;
#   ours.md5      the checksum of the file as we installed it;
#   users/PID     one per test process using it: "PID STARTTIME" (the start
#                 time tells a live user from a recycled pid).
# it_register_config_dirs adds the calling process to users/; the last one
# to leave (it_release_config_dirs, from the EXIT trap, so also after a
# failure, SIGINT, SIGTERM or the time limit) puts orig/main.cf back. A
# run killed with SIGKILL leaves its users/ entry behind: it is dead, so
# the next process to register or leave finds no live user and restores
# the original first. Every install is a rename of a complete file.
# Should main.cf have been changed by someone else meanwhile (it is
# neither ours nor the original), only the slot directories we added are
# taken out of alternate_config_directories, keeping their change.

IT_MAINCF=/etc/postfix/main.cf
IT_MAINCF_STATE=$IT_BASE/.main-cf

# it_proc_start PID: the start time of process PID (empty when none, or
# when it is a zombie: a killed run's shell stays one until reaped).
it_proc_start() {
    local state start
    read -r state start < <(sed -e 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1,20)
    case $state in
        Z | X | '') ;;
        *) echo "$start" ;;
    esac
}

# it_maincf_live_users: prints the number of live users; removes the dead.
it_maincf_live_users() {
    local f pid start live=0
    for f in "$IT_MAINCF_STATE"/users/*; do
        [ -e "$f" ] || continue
        read -r pid start <"$f"
        if [ -n "$pid" ] && [ "$(it_proc_start "$pid")" = "$start" ]; then
            live=$((live + 1))
        else
            rm -f "$f"
        fi
    done
    echo "$live"
}

# it_maincf_install FILE: replaces the system main.cf with FILE's bytes
# (same owner and mode), atomically.
it_maincf_install() {
    local tmp=$IT_MAINCF.upit-tmp
    cp -p "$IT_MAINCF" "$tmp" && cat "$1" >"$tmp" && mv -f "$tmp" "$IT_MAINCF"
}

# it_maincf_slot_dirs: the slot configuration directories, one a line.
it_maincf_slot_dirs() {
    local i
    for i in $(seq 1 "$IT_SLOTS"); do echo "$IT_BASE/pf$i/etc"; done
}

# it_maincf_list DIR: DIR/main.cf's alternate_config_directories, one a line.
it_maincf_list() {
    postconf -c "$1" -h alternate_config_directories 2>/dev/null | tr ', ' '\n\n' | sed -e '/^$/d'
}

# it_maincf_restore: no live user is left: puts the original back (or,
# when main.cf was changed by someone else, takes our additions out of it)
# and forgets the state. Called under the lock.
it_maincf_restore() {
    rm -f "$IT_MAINCF.upit-tmp"
    if [ -f "$IT_MAINCF_STATE/orig/main.cf" ]; then
        local now
        now=$(md5sum <"$IT_MAINCF" | cut -d' ' -f1)
        if [ "$now" = "$(cat "$IT_MAINCF_STATE/ours.md5" 2>/dev/null)" ] ||
            [ "$now" = "$(md5sum <"$IT_MAINCF_STATE/orig/main.cf" | cut -d' ' -f1)" ]; then
            it_maincf_install "$IT_MAINCF_STATE/orig/main.cf" || return 1
        else
            local keep dir
            keep=$(it_maincf_list /etc/postfix | while read -r dir; do
                if it_maincf_slot_dirs | grep -Fx -- "$dir" >/dev/null &&
                    ! it_maincf_list "$IT_MAINCF_STATE/orig" | grep -Fx -- "$dir" >/dev/null; then
                    continue
                fi
                printf '%s\n' "$dir"
            done | paste -sd, - | sed -e 's/,/, /g')
            echo "# $IT_MAINCF was changed during the tests: only the slot directories are taken out of its alternate_config_directories" >&2
            postconf -c /etc/postfix -e "alternate_config_directories = $keep" || return 1
        fi
    fi
    rm -rf "$IT_MAINCF_STATE/orig" "$IT_MAINCF_STATE/edit" "$IT_MAINCF_STATE/ours.md5"
}

# it_register_config_dirs: lists every slot's config directory in the
# alternate_config_directories of the system main.cf (keeping whatever
# else is listed there) for as long as this process runs (see above).
it_register_config_dirs() {
    mkdir -p "$IT_BASE" "$IT_MAINCF_STATE/users"
    chmod 0755 "$IT_BASE"
    IT_MAINCF_HELD=1    # from here on, the EXIT trap releases (or restores)
    (
        flock -w 30 9 || exit 1
        if [ "$(it_maincf_live_users)" -eq 0 ]; then
            it_maincf_restore || exit 1     # what a killed run left
            mkdir -p "$IT_MAINCF_STATE/orig.tmp" &&
                cp -p "$IT_MAINCF" "$IT_MAINCF_STATE/orig.tmp/main.cf" &&
                rm -rf "$IT_MAINCF_STATE/orig" &&
                mv "$IT_MAINCF_STATE/orig.tmp" "$IT_MAINCF_STATE/orig" || exit 1
        fi
        echo "$$ $(it_proc_start $$)" >"$IT_MAINCF_STATE/users/$$" || exit 1
        local current wanted dir changed=0
        current=$(it_maincf_list /etc/postfix)
        wanted=$(postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null)
        for dir in $(it_maincf_slot_dirs); do
            if ! printf '%s\n' "$current" | grep -Fx -- "$dir" >/dev/null; then
                wanted="${wanted:+$wanted, }$dir"
                changed=1
            fi
        done
        [ "$changed" -eq 1 ] || exit 0
        rm -rf "$IT_MAINCF_STATE/edit"
        mkdir -p "$IT_MAINCF_STATE/edit" &&
            cp "$IT_MAINCF" "$IT_MAINCF_STATE/edit/main.cf" &&
            : >"$IT_MAINCF_STATE/edit/master.cf" &&
            postconf -c "$IT_MAINCF_STATE/edit" -e "alternate_config_directories = $wanted" &&
            md5sum <"$IT_MAINCF_STATE/edit/main.cf" | cut -d' ' -f1 >"$IT_MAINCF_STATE/ours.md5" &&
            it_maincf_install "$IT_MAINCF_STATE/edit/main.cf"
    ) 9>"$IT_BASE/.register.lock" || it_fatal "cannot update alternate_config_directories in $IT_MAINCF"
}

# it_release_config_dirs: this process no longer needs the slot
# directories listed; the last live user restores the original main.cf.
it_release_config_dirs() {
    [ "${IT_MAINCF_HELD:-0}" -eq 1 ] || return 0
    IT_MAINCF_HELD=0
    (
        flock -w 30 9 || exit 1
        rm -f "$IT_MAINCF_STATE/users/$$"
        [ "$(it_maincf_live_users)" -eq 0 ] || exit 0
        it_maincf_restore
    ) 9>"$IT_BASE/.register.lock" || echo "# could not restore $IT_MAINCF (state in $IT_MAINCF_STATE)" >&2
}

# it_cleanup: the EXIT trap. Stops what this script started, by pid.
it_cleanup() {
    [ "$IT_CLEANED" -eq 1 ] && return
    IT_CLEANED=1
    local name pid
    for name in "${IT_INSTANCES[@]}"; do
        pf_teardown "$name"
    done
    for pid in "${IT_PIDS[@]}"; do
        it_kill_pid "$pid"
    done
    it_release_config_dirs
    if [ -n "$IT_WORK" ] && [ -d "$IT_WORK" ]; then
        if [ -n "${KEEP_IT:-}" ]; then
            echo "# kept $IT_WORK"
        else
            rm -rf "$IT_WORK"
        fi
    fi
}

# it_kill_pid PID: TERM, up to 5 s, then KILL.
it_kill_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 25); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# it_spawn LOGFILE COMMAND...: starts COMMAND in the background with stdout
# and stderr to LOGFILE; its pid goes to IT_LAST_PID and is killed at exit.
it_spawn() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 </dev/null &
    IT_LAST_PID=$!
    IT_PIDS+=("$IT_LAST_PID")
}

# ---------------------------------------------------------------- Postfix

# pf_new NAME: takes a slot and writes a minimal loopback-only instance:
# main.cf and master.cf (smtpd on 127.0.0.1:${PF_PORT[NAME]}), by the
# writer examples/demo.sh uses too (tools/postfix_instance.sh). Adjust it
# with pf_main / pf_master / pf_main_fragment / pf_master_fragment, then
# pf_start.
pf_new() {
    local name=$1 i fd dir=""
    for i in $(seq 1 "$IT_SLOTS"); do
        exec {fd}>"$IT_BASE/pf$i.lock"
        if flock -n "$fd"; then
            dir=$IT_BASE/pf$i
            break
        fi
        exec {fd}>&-
    done
    [ -n "$dir" ] || it_fatal "all $IT_SLOTS Postfix slots under $IT_BASE are in use"
    pf_wipe_slot "$dir"
    postfix_instance_dirs "$dir"
    PF_DIR[$name]=$dir
    PF_CONF[$name]=$dir/etc
    PF_LOCKFD[$name]=$fd
    local port
    it_alloc_port port
    PF_PORT[$name]=$port
    local nowhere
    it_alloc_port nowhere
    IT_INSTANCES+=("$name")

    local title="throwaway instance \"$name\" written by tests/integration/lib.sh"
    postfix_instance_main_cf "$dir" "$name.it.invalid" it.invalid "tests deliver to loopback only" "$title" \
        >"$dir/etc/main.cf"
    cat >>"$dir/etc/main.cf" <<EOF
myorigin = \$myhostname
relayhost =
append_dot_mydomain = no
# Not error: (smtpd rejects a recipient whose route is error: at RCPT,
# before relay_recipient_maps is consulted): a loopback port where nobody
# listens, so a recipient without a route is deferred, visibly.
relay_transport = relay:[127.0.0.1]:$nowhere
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_connect_timeout = 5s
lmtp_connect_timeout = 5s
# a policy server that does not answer fails the test in 10 s, not 100 s
smtpd_policy_service_timeout = 10s
EOF
    postfix_instance_master_cf "$port" "$title" >"$dir/etc/master.cf"
}

# pf_wipe_slot DIR: stops an instance a killed run may have left in DIR,
# then removes DIR.
pf_wipe_slot() {
    local dir=$1 pid
    if [ -f "$dir/etc/main.cf" ] && [ -f "$dir/etc/master.cf" ]; then
        timeout --foreground 30 postfix -c "$dir/etc" stop >/dev/null 2>&1
        pid=$(sed -n '1s/[^0-9]//gp' "$dir/queue/pid/master.pid" 2>/dev/null)
        if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/lib/postfix/sbin/master ]; then
            it_kill_pid "$pid"
        fi
    fi
    rm -rf "$dir"
}

# pf_main NAME "key = value"...: sets main.cf parameters.
pf_main() {
    local name=$1
    shift
    postconf -c "${PF_CONF[$name]}" -e "$@" || it_fatal "postconf -e $* failed"
}

# pf_master NAME LINE...: appends lines to master.cf (chroot forced off).
pf_master() {
    local name=$1
    shift
    printf '%s\n' "$@" | it_chroot_off >>"${PF_CONF[$name]}/master.cf"
}

# it_chroot_off: master.cf on stdin with "n" in the chroot column of every
# service line (continuation and comment lines are kept as they are).
it_chroot_off() {
    awk '/^[^#[:space:]]/ && NF >= 8 { $5 = "n" } { print }'
}

# pf_main_fragment NAME FILE [SED-EXPRESSION...]: applies an example
# main.cf fragment, each SED-EXPRESSION applied first (paths, ports). Each
# parameter is set with "postconf -e", so a fragment's setting replaces the
# instance's own, and within the fragment the last setting of a parameter
# wins (as in main.cf), without duplicates that Postfix warns about.
pf_main_fragment() {
    local name=$1 file=$2
    shift 2
    local args=() e params=()
    for e in "$@"; do args+=(-e "$e"); done
    [ "${#args[@]}" -gt 0 ] || args=(-e '')
    mapfile -t params < <(sed "${args[@]}" "$file" | awk '
        function keep(line,  name) {
            name = line; sub(/[[:space:]]*=.*/, "", name)
            if (!(name in value)) order[++n] = name
            value[name] = line
        }
        /^[[:space:]]*(#.*)?$/ { next }
        /^[[:space:]]/ { sub(/^[[:space:]]+/, ""); cur = cur " " $0; next }
        { if (cur != "") keep(cur); cur = $0 }
        END { if (cur != "") keep(cur); for (i = 1; i <= n; i++) print value[order[i]] }')
    [ "${#params[@]}" -gt 0 ] || it_fatal "no parameters in $file"
    pf_main "$name" "${params[@]}"
}

# pf_master_fragment NAME FILE [SED-EXPRESSION...]: the same for master.cf,
# chroot forced off; the instance's smtpd then uses the fragment's own
# resolver service, when it has one (postfix_instance_smtpd_resolver).
pf_master_fragment() {
    local name=$1 file=$2
    shift 2
    local args=() e
    for e in "$@"; do args+=(-e "$e"); done
    {
        echo
        echo "# from ${file#"$IT_ROOT"/}"
        if [ "${#args[@]}" -gt 0 ]; then sed "${args[@]}" "$file"; else cat "$file"; fi
    } | it_chroot_off >>"${PF_CONF[$name]}/master.cf"
    postfix_instance_smtpd_resolver "${PF_CONF[$name]}"
}

# pf_start NAME: postfix check + start, then waits (15 s) for the SMTP port.
pf_start() {
    local name=$1 conf=${PF_CONF[$1]} out
    if ! out=$(timeout --foreground 60 postfix -c "$conf" start 2>&1); then
        it_diag "postfix -c $conf start failed:" "$out"
        pf_log_tail "$name" 30
        it_fatal "instance $name did not start"
    fi
    if ! it_wait_until 15 it_port_open "${PF_PORT[$name]}"; then
        pf_log_tail "$name" 30
        it_fatal "instance $name: nothing listens on 127.0.0.1:${PF_PORT[$name]}"
    fi
    # Configuration mistakes (bad parameter, missing map) show up here.
    pf_log "$name" | grep -E 'fatal:|error:|warning:' | head -5 | sed -e 's/^/# /'
}

# pf_reload NAME: postfix reload (restarts the daemons, which reopen maps).
pf_reload() {
    timeout --foreground 30 postfix -c "${PF_CONF[$1]}" reload >/dev/null 2>&1
}

# pf_teardown NAME: stop, kill the master if it lingers, wipe the slot.
pf_teardown() {
    local name=$1 dir=${PF_DIR[$1]:-}
    [ -n "$dir" ] || return 0
    if [ -n "${KEEP_IT:-}" ]; then
        timeout --foreground 30 postfix -c "${PF_CONF[$name]}" stop >/dev/null 2>&1
        echo "# kept $dir (slot stays locked until this script exits)"
        return 0
    fi
    pf_wipe_slot "$dir"
    PF_DIR[$name]=
}

# pf_queue NAME: postqueue -j, one JSON object per message.
pf_queue() { timeout --foreground 20 postqueue -c "${PF_CONF[$1]}" -j 2>/dev/null; }

# pf_queue_count NAME [QUEUE]: messages in the queue (QUEUE: incoming,
# active, deferred, hold, maildrop).
pf_queue_count() {
    local q
    q=$(pf_queue "$1")
    if [ -n "${2:-}" ]; then
        printf '%s\n' "$q" | grep -c "\"queue_name\": *\"$2\""
    else
        printf '%s\n' "$q" | grep -c '"queue_name"'
    fi
}

# pf_queue_is NAME COUNT [QUEUE]
pf_queue_is() { [ "$(pf_queue_count "$1" "${3:-}")" -eq "$2" ]; }

# pf_wait_queue NAME COUNT [QUEUE] [SECONDS]: waits until the queue (or the
# named queue) holds COUNT messages.
pf_wait_queue() { it_wait_until "${4:-20}" pf_queue_is "$1" "$2" "${3:-}"; }

# pf_wait_drained NAME [SECONDS]: waits until the queue is empty.
pf_wait_drained() { it_wait_until "${2:-20}" pf_queue_is "$1" 0; }

# pf_wait_settled NAME [SECONDS]: waits until nothing is in incoming or
# active (every message delivered, bounced or deferred).
pf_settled() {
    local q
    q=$(pf_queue "$1")
    ! printf '%s\n' "$q" | grep -E '"queue_name": *"(incoming|active|maildrop)"' >/dev/null
}
pf_wait_settled() { it_wait_until "${2:-20}" pf_settled "$1"; }

# pf_queue_has NAME ERE: some queued message's JSON matches ERE.
pf_queue_has() { pf_queue "$1" | grep -E -- "$2" >/dev/null; }

# pf_flush NAME: postqueue -f (deliver the deferred queue now).
pf_flush() { timeout --foreground 20 postqueue -c "${PF_CONF[$1]}" -f >/dev/null 2>&1; }

# pf_log NAME: the instance's maillog.
pf_log() { cat "${PF_DIR[$1]}/log/maillog" 2>/dev/null; }

# pf_log_mark NAME: the current number of lines in the maillog, for pf_log_since.
pf_log_mark() { pf_log "$1" | wc -l; }

# pf_log_since NAME MARK: the maillog lines after MARK.
pf_log_since() { pf_log "$1" | tail -n "+$(($2 + 1))"; }

# pf_log_wait NAME MARK ERE [SECONDS]: waits for a maillog line after MARK.
pf_log_has() { pf_log_since "$1" "$2" | grep -E -- "$3" >/dev/null; }
pf_log_wait() { it_wait_until "${4:-20}" pf_log_has "$1" "$2" "$3"; }

# pf_log_tail NAME [N]: the last N maillog lines as diagnostics.
pf_log_tail() {
    it_diag "maillog of $1 (last ${2:-20} lines):"
    pf_log "$1" | tail -n "${2:-20}" | sed -e 's/^/#   /'
}

# ---------------------------------------------------------------- sinks

# sink_start NAME [smtp|lmtp]: an smtp-sink standing in for a unit on a free
# 127.0.0.1 port (${SINK_PORT[NAME]}); every transaction is dumped to its
# own file ${SINK_DIR[NAME]}/m.* (X-Rcpt-Args lines name the recipients).
sink_start() {
    local name=$1 mode=${2:-smtp} port dir flags=()
    it_alloc_port port
    dir=$IT_WORK/sink-$name
    mkdir -p "$dir"
    chown nobody:nogroup "$dir"
    [ "$mode" = lmtp ] && flags+=(-L)
    smtp-sink -4 -u nobody -h "$name.sink.invalid" "${flags[@]}" \
        -d "$dir/m." "127.0.0.1:$port" 64 >"$IT_WORK/sink-$name.log" 2>&1 </dev/null &
    SINK_PID[$name]=$!
    IT_PIDS+=("$!")
    SINK_PORT[$name]=$port
    SINK_DIR[$name]=$dir
    it_wait_until 10 it_port_open "$port" || it_fatal "smtp-sink $name did not listen on 127.0.0.1:$port"
}

# sink_count NAME: messages received.
sink_count() {
    find "${SINK_DIR[$1]}" -maxdepth 1 -type f -name 'm.*' 2>/dev/null | wc -l
}

# sink_wait_count NAME COUNT [SECONDS]
sink_count_is() { [ "$(sink_count "$1")" -eq "$2" ]; }
sink_wait_count() { it_wait_until "${3:-20}" sink_count_is "$1" "$2"; }

# sink_rcpts NAME: every envelope recipient received, one per line, as
# sent (the RCPT TO argument without <>), in no particular order.
sink_rcpts() {
    find "${SINK_DIR[$1]}" -maxdepth 1 -type f -name 'm.*' -print0 2>/dev/null \
        | xargs -0 -r grep -hs '^X-Rcpt-Args:' \
        | sed -e 's/^X-Rcpt-Args: *\([Tt][Oo]: *\)\{0,1\}<\([^>]*\)>.*/\2/'
}

# sink_list NAME: the recipients received, on one line (diagnostics).
sink_list() { sink_rcpts "$1" | sort | tr '\n' ' '; }

# sink_has_rcpt NAME ADDRESS: ADDRESS (case-insensitively) was received.
sink_has_rcpt() { sink_rcpts "$1" | grep -ixF -- "$2" >/dev/null; }

# sink_rcpt_count NAME ADDRESS: how many times ADDRESS was received.
sink_rcpt_count() { sink_rcpts "$1" | grep -cixF -- "$2"; }

# sink_grep NAME ERE: some received message matches ERE.
sink_grep() {
    find "${SINK_DIR[$1]}" -maxdepth 1 -type f -name 'm.*' -print0 2>/dev/null \
        | xargs -0 -r grep -Es -- "$2" >/dev/null
}

# ---------------------------------------------------------------- SMTP client

# it_smtp PORT FROM TO [SWAKS-OPTION...]: one SMTP transaction with swaks
# from 127.0.0.2 (outside mynetworks, like an Internet client). TO may be a
# comma-separated list. The transcript is in IT_SMTP_OUT; returns swaks's
# status (0: accepted).
it_smtp() {
    local port=$1 from=$2 to=$3
    shift 3
    IT_SMTP_OUT=$(timeout --foreground 60 swaks --server 127.0.0.1 --port "$port" \
        --local-interface 127.0.0.2 --helo client.it.invalid \
        --from "$from" --to "$to" --timeout 30 "$@" 2>&1)
}

# it_rcpt_reply ADDRESS: the server's reply to "RCPT TO:<ADDRESS>" in the
# last transcript (first line of it, without swaks's prefix).
it_rcpt_reply() {
    printf '%s\n' "$IT_SMTP_OUT" | awk -v want="RCPT TO:<$1>" '
        found { sub(/^<[-~*]+ */, ""); print; exit }
        index($0, want) && $1 ~ /^[-~*]*>$/ { found = 1 }'
}

# it_data_reply: the server's final reply after the message data.
it_data_reply() {
    printf '%s\n' "$IT_SMTP_OUT" | awk '
        found && /^<[-~*]+ / { sub(/^<[-~*]+ */, ""); print; exit }
        /^ *[-~*]*> \.$/ { found = 1 }'
}

# ---------------------------------------------------------------- policy client

# it_policy_rcpt SOCKET RECIPIENT [CLIENT-ADDRESS]: one policy delegation
# request at RCPT TO (as smtpd sends it, from CLIENT-ADDRESS, default
# 127.0.0.2) on the unix SOCKET; prints the action ("DUNNO", "550 5.1.1
# User unknown"), or "BAD REPLY ..." for anything else.
it_policy_rcpt() {
    timeout --foreground 10 python3 "$IT_ROOT/tests/policy_rcpt.py" "$1" "$2" "${3:-127.0.0.2}"
}

# ---------------------------------------------------------------- databases

# ctl ARGS...: unitctl on the test's primary database ($IT_DB).
ctl() { "$IT_UNITCTL" --db "$IT_DB" "$@"; }

# it_replica_paths: IT_DB (the test's primary) and IT_REPLICA (where
# it_publish puts its snapshot, in a directory every daemon can read).
it_replica_paths() {
    IT_DB=$IT_WORK/primary.db
    IT_REPLICA=$IT_WORK/replica/units.db
    mkdir -p "$IT_WORK/replica"
    chmod 0755 "$IT_WORK/replica"
}

# it_publish [OUT]: publishes $IT_DB to OUT (default $IT_REPLICA),
# readable by everyone (Postfix and the daemons read it as other users).
it_publish() {
    local out=${1:-$IT_REPLICA}
    ctl publish "$out" >/dev/null || it_fatal "unitctl publish $out failed"
    chmod 0644 "$out"
}

# it_stop_daemon LABEL PID SECONDS: SIGTERM, which must end the daemon (a
# child of this shell) within SECONDS, with status 0.
it_stop_daemon() {
    local label=$1 pid=$2 seconds=$3 status _
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((seconds * 5))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        it_not_ok "$label stops on SIGTERM" "still running after $seconds s"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return
    fi
    wait "$pid"
    status=$?
    it_expect_eq "$label exits 0 on SIGTERM" 0 "$status"
}

# ---------------------------------------------------------------- crashes

# it_reap PID: waits for a process started with it_spawn and forgets its
# pid (the clean-up must not signal a process that reuses it); returns its
# exit status.
it_reap() {
    local pid=$1 kept=() p status
    wait "$pid" 2>/dev/null
    status=$?
    for p in "${IT_PIDS[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    IT_PIDS=("${kept[@]}")
    return "$status"
}

# it_crash PID: SIGKILL to a process started with it_spawn, as a crash
# would, then it_reap.
it_crash() {
    kill -KILL "$1" 2>/dev/null
    it_reap "$1"
    return 0
}

# pf_daemon_pids NAME PROGRAM: the pids of instance NAME's PROGRAM
# processes (qmgr, smtpd, ...), children of its master.
pf_daemon_pids() {
    local master
    master=$(sed -n '1s/[^0-9]//gp' "${PF_DIR[$1]}/queue/pid/master.pid" 2>/dev/null)
    [ -n "$master" ] || return 0
    ps -o pid=,comm= --ppid "$master" | awk -v program="$2" '$2 == program { print $1 }'
}
