#!/bin/bash
# examples/demo.sh: the whole system on one machine, with real Postfix.
#
# As root, on Debian 12, from any directory:
#
#   ./examples/demo.sh
#
# 1. installs what is missing (tools/install-deps.sh) and builds into build/
#    when the programs are not built yet;
# 2. makes the directory: the bundled sample (examples/sample/sample.csv) in a
#    primary database, with the units of this demo pointed at loopback ports
#    (unitctl unit set), checks it, publishes a snapshot and copies it to
#    every host, each of which has its own replica;
# 3. starts three hosts, each a real Postfix instance on 127.0.0.1 with
#    unitpolicy and unitmilter beside it:
#      mx     127.0.0.1:2525  unitpolicy (MX role), unitmilter (role mx)
#      unit1  127.0.0.1:2526  unitpolicy (unit unit1), unitmilter (role unit);
#                             its users' mail goes to Maildirs, by virtual(8)
#      unit2  127.0.0.1:2527  the same for unit2
#    Their main.cf and master.cf are Postfix's usual services plus the
#    administrator's files examples/mx/ and examples/unit/, as shipped (only
#    the sockets' paths changed);
# 4. sends mail from "the Internet" (swaks, from 127.0.0.2) to the MX, for a
#    user on each unit, an address with a +tag, an alias over both units, a
#    mailbox being moved, a user whose unit is down, a suspended, a disabled
#    and an unknown user, and prints where each message ended up: in which
#    unit's Maildir, held in the MX queue, or refused with which SMTP reply;
# 5. finishes the move, and the held message is delivered to the new unit;
# 6. prints "unitpolicy --dump" of the MX's daemon (its live counters);
# 7. stops everything it started and removes its directory (on any exit).
#
# Nothing leaves the machine: every instance listens on 127.0.0.1 only, DNS
# is off, and the directory's routes name loopback ports. The Postfix
# instances are throwaway ones (their own configuration, queue and log
# directories under the demo's directory); the system's Postfix is neither
# used nor changed.
#
# Environment: BUILD_DIR (default build), DEMO_PORT (default 2525: the MX
# listens there, unit1 and unit2 on the next two ports; the two after them
# are the loopback routes of unit3 and unit4, which are not started),
# KEEP_DEMO=1 keeps the directory (configuration, queues, Maildirs, logs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
# shellcheck source=tools/postfix_instance.sh
. tools/postfix_instance.sh
build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
base_port=${DEMO_PORT:-2525}
started=$SECONDS

step() { printf '\n=== %s  [%d s]\n' "$*" "$((SECONDS - started))"; }
say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root: I start Postfix instances and bind their sockets"

# ------------------------------------------------------------------ 1. build

step "1. packages and programs"
bash tools/install-deps.sh
unitctl=$build/src/ctl/unitctl
unitpolicy=$build/src/policyd/unitpolicy
unitmilter=$build/src/milter/unitmilter
if [ -x "$unitctl" ] && [ -x "$unitpolicy" ] && [ -x "$unitmilter" ]; then
    say "using the programs in ${build#"$root"/}/ (after a change to the source: meson compile -C ${build#"$root"/})"
else
    say "building into ${build#"$root"/}/ (a few minutes on a small machine)"
    if [ -d "$build/meson-private" ]; then
        meson setup --reconfigure "$build" >/dev/null
    else
        meson setup "$build" >/dev/null
    fi
    meson compile -C "$build" >/dev/null
fi

# ------------------------------------------------------------------ layout

mx_port=$base_port
declare -A port=([mx]=$mx_port [unit1]=$((base_port + 1)) [unit2]=$((base_port + 2))
                 [unit3]=$((base_port + 3)) [unit4]=$((base_port + 4)))
hosts=(mx unit1 unit2)
for h in "${hosts[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/${port[$h]}") 2>/dev/null; then
        die "127.0.0.1:${port[$h]} is in use; choose other ports with DEMO_PORT=N (N to N+4)"
    fi
done

# Under /var: Postfix writes maillog_file only below maillog_file_prefixes.
demo=$(mktemp -d /var/tmp/unitpolicy-demo.XXXXXX)
chmod 0755 "$demo"
nobody_uid=$(id -u nobody)
nobody_gid=$(id -g nobody)
from=someone@sender.invalid

# What was started, so that the clean-up stops exactly that.
declare -A daemon_pid=()
postfix_started=()

stop_pid() {   # TERM, up to 15 s (libmilter notices a stop within a few s), then KILL
    local pid=$1 _
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_postfix() {   # postfix stop, then KILL the master if it lingers
    local pid
    timeout 30 postfix -c "$demo/$1/etc" stop >/dev/null 2>&1
    pid=$(sed -n '1s/[^0-9]//gp' "$demo/$1/queue/pid/master.pid" 2>/dev/null)
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/lib/postfix/sbin/master ]; then
        kill -KILL "$pid" 2>/dev/null
    fi
    return 0
}

cleanup() {
    local status=$? h name
    trap - EXIT INT TERM
    set +e
    step "stopping everything"
    for h in "${postfix_started[@]}"; do stop_postfix "$h" & done
    for name in "${!daemon_pid[@]}"; do stop_pid "${daemon_pid[$name]}" & done
    wait
    say "stopped ${#postfix_started[@]} Postfix instances and ${#daemon_pid[@]} daemons"
    if [ "${KEEP_DEMO:-0}" = 1 ]; then
        say "kept $demo"
    else
        rm -rf "$demo"
        say "removed $demo"
    fi
    say "demo: $((SECONDS - started)) s"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "working directory: $demo"

# ------------------------------------------------------------------ 2. the directory

step "2. the directory: the sample, with this demo's units on loopback"
primary=$demo/primary.db
ctl() { "$unitctl" --db "$primary" "$@"; }
# shown ARGS...: unitctl on the primary, the command and its output shown
# (paths relative to the working directory).
shown() {
    say "unitctl --db primary.db ${*//$demo\//}"
    ctl "$@" | sed 's/^/    /'
}
shown init
shown import examples/sample/sample.csv
# The sample's units are unit1.example.com and so on; here unit1 and unit2
# are the two Postfix instances below, and unit3 and unit4 are not started:
# unit3 is marked down (unit4 is down in the sample), so their mail would be
# held on the MX; their routes name loopback ports anyway.
shown unit set unit1 --nexthop "[127.0.0.1]:${port[unit1]}"
shown unit set unit2 --nexthop "[127.0.0.1]:${port[unit2]}"
shown unit set unit3 --nexthop "[127.0.0.1]:${port[unit3]}" --state down
shown unit set unit4 --nexthop "[127.0.0.1]:${port[unit4]}"
shown check
shown unit list

# publish: a consistent, read-only snapshot, renamed into place. Every host
# gets its own copy, written beside it and renamed over it, which is what
# rsync does between machines (see the replication walkthrough in README.md).
mkdir -m 0755 "$demo/published"
shown publish "$demo/published/units.db"
copy_replica() {   # copy_replica HOST: the published snapshot, renamed into place
    cp "$demo/published/units.db" "$demo/$1/.units.db.tmp"
    chmod 0644 "$demo/$1/.units.db.tmp"
    mv "$demo/$1/.units.db.tmp" "$demo/$1/units.db"
}
for h in "${hosts[@]}"; do
    mkdir -m 0755 "$demo/$h" "$demo/$h/sock"
    copy_replica "$h"
done
say "copied to mx/units.db, unit1/units.db and unit2/units.db: each host reads its own replica"

# ------------------------------------------------------------------ 3. the hosts

# write_postfix HOST ROLE: HOST/etc/main.cf and master.cf. The first part is
# what any throwaway loopback instance needs (tools/postfix_instance.sh, the
# integration tests' writer too); then come the administrator's
# lines for the role, examples/ROLE/main.cf and master.cf, as shipped, with
# the sockets of unitpolicy and unitmilter in HOST/sock instead of the queue
# directory's private/ (the daemons start before Postfix and create them
# there as root, where Postfix's own checks would complain).
write_postfix() {
    local h=$1 role=$2 dir=$demo/$1
    postfix_instance_dirs "$dir"
    postfix_instance_main_cf "$dir" "$h.demo.invalid" demo.invalid "this demo delivers on loopback only" \
        "$h: a throwaway Postfix instance of examples/demo.sh" >"$dir/etc/main.cf"
    if [ "$role" = unit ]; then
        cat >>"$dir/etc/main.cf" <<EOF

# This unit's mail store: virtual(8) delivers each of its mailboxes into a
# Maildir below virtual_mailbox_base (the map gives "domain/user/"; a path
# ending in / is a Maildir), as user nobody. unitpolicy sends the unit's
# own mailboxes here (--local-transport virtual).
virtual_mailbox_domains =
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = texthash:$dir/etc/maildirs
virtual_uid_maps = static:$nobody_uid
virtual_gid_maps = static:$nobody_gid
EOF
    fi
    {
        printf '\n# ---- examples/%s/main.cf, sockets in %s/sock\n' "$role" "$dir"
        sed "/^[^#]/s|unix:private/|unix:$dir/sock/|g" "examples/$role/main.cf"
    } >>"$dir/etc/main.cf"
    {
        postfix_instance_master_cf "${port[$h]}" "$h: a throwaway Postfix instance of examples/demo.sh"
        printf '\n# ---- examples/%s/master.cf\n' "$role"
        cat "examples/$role/master.cf"
    } >"$dir/etc/master.cf"
    postfix_instance_smtpd_resolver "$dir/etc"
}

# write_maildirs UNIT: the unit's virtual(8) map, "address domain/user/",
# from the directory: the unit's mailboxes and those being moved to it.
# (On a real unit the mail store has its own user database.)
write_maildirs() {
    ctl export | awk -F, -v unit="$1" '
        $1 == "mailbox" && ($3 == unit || $4 == "moving:" unit) {
            split($2, at, "@"); print $2 "\t" at[2] "/" at[1] "/"
        }' >"$demo/$1/etc/maildirs"
    install -d -o "$nobody_uid" -g "$nobody_gid" -m 0755 "$demo/$1/mail"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# socketmap_up HOST: unitpolicy answers a lookup on HOST's socketmap.
socketmap_up() {
    local err
    [ -S "$demo/$1/sock/unitmap" ] || return 1
    err=$(postmap -q '*' "socketmap:unix:$demo/$1/sock/unitmap:transportmx" 2>&1 >/dev/null)
    [ -z "$err" ]
}

# start_unitpolicy HOST [OPTION...]: the daemon on HOST's replica, its
# sockets in HOST/sock (group postfix, mode 0660), running as nobody,
# logging to HOST/unitpolicy.log.
start_unitpolicy() {
    local h=$1
    shift
    "$unitpolicy" --db "$demo/$h/units.db" \
        --policy-listen "unix:$demo/$h/sock/unitpolicy" \
        --socketmap-listen "unix:$demo/$h/sock/unitmap" \
        --control "$demo/$h/sock/control" \
        --recipient-delimiter + --user nobody --socket-group postfix --log stderr \
        --held-mail-interval 0 "$@" \
        >"$demo/$h/unitpolicy.log" 2>&1 </dev/null &
    daemon_pid[$h-unitpolicy]=$!
    wait_for 30 socketmap_up "$h" || { cat "$demo/$h/unitpolicy.log" >&2; die "unitpolicy on $h did not start"; }
}

# start_unitmilter HOST OPTION...: the milter on HOST's replica. The Postfix
# instances trust each other (127.0.0.1), not the Internet (127.0.0.2).
start_unitmilter() {
    local h=$1
    shift
    "$unitmilter" --db "$demo/$h/units.db" --listen "unix:$demo/$h/sock/unitmilter" \
        --trusted-networks 127.0.0.1/32 --hostname "$h.demo.invalid" \
        --recipient-delimiter + --user nobody --socket-group postfix --log stderr "$@" \
        >"$demo/$h/unitmilter.log" 2>&1 </dev/null &
    daemon_pid[$h-unitmilter]=$!
    wait_for 30 grep -q 'starting: listen ' "$demo/$h/unitmilter.log" \
        || { cat "$demo/$h/unitmilter.log" >&2; die "unitmilter on $h did not start"; }
}

# start_postfixes HOST...: postfix start for each, at once (a start takes
# seconds: "postfix start" checks the whole installation first), then waits
# for their SMTP ports.
start_postfixes() {
    local h
    declare -A starter=()
    for h in "$@"; do
        postfix_started+=("$h")
        timeout 60 postfix -c "$demo/$h/etc" start >"$demo/$h/log/postfix-start" 2>&1 &
        starter[$h]=$!
    done
    for h in "$@"; do
        wait "${starter[$h]}" || { cat "$demo/$h/log/postfix-start" >&2; die "Postfix on $h did not start"; }
        wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/${port[$h]}" 2>/dev/null \
            || die "Postfix on $h does not listen on 127.0.0.1:${port[$h]}"
    done
}

step "3. three hosts: Postfix + unitpolicy + unitmilter each"
write_postfix mx mx
start_unitpolicy mx
start_unitmilter mx --role mx
for u in unit1 unit2; do
    write_postfix "$u" unit
    write_maildirs "$u"
    start_unitpolicy "$u" --unit "$u" --local-transport virtual --mx-relay "smtp:[127.0.0.1]:${port[mx]}"
    start_unitmilter "$u" --role unit --unit "$u"
done
start_postfixes "${hosts[@]}"
say "mx     Postfix on 127.0.0.1:${port[mx]}, unitpolicy (MX role), unitmilter (role mx)"
for u in unit1 unit2; do
    say "$u  Postfix on 127.0.0.1:${port[$u]}, unitpolicy (unit $u), unitmilter (role unit), Maildirs in $u/mail/"
done

# ------------------------------------------------------------------ 4. mail

# send ADDRESS: one message from the Internet (127.0.0.2) to the MX, its
# SMTP transcript in mx/sent/ADDRESS.
mkdir -m 0755 "$demo/mx/sent"
send() {
    timeout 60 swaks --server 127.0.0.1 --port "${port[mx]}" --local-interface 127.0.0.2 \
        --helo client.demo.invalid --from "$from" --to "$1" \
        --header "Subject: demo: for $1" --body "Hello $1, this is examples/demo.sh." \
        --timeout 30 >"$demo/mx/sent/$1" 2>&1 || true
}

# rcpt_reply ADDRESS: the MX's reply to RCPT TO in that transcript.
rcpt_reply() {
    awk -v want="RCPT TO:<$1>" '
        found { sub(/^<[-~*]+ */, ""); print; exit }
        index($0, want) && $1 ~ /^[-~*]*>$/ { found = 1 }' "$demo/mx/sent/$1"
}

# queue HOST: HOST's queue, one line per recipient: queue name, address,
# reason for the delay, queue id.
queue() {
    postqueue -c "$demo/$1/etc" -j 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    for r in m.get("recipients", []):
        print("\t".join([m["queue_name"], r["address"], r.get("delay_reason", ""), m["queue_id"]]))'
}

# settled: no mail is on its way: the units' queues are empty and the MX's
# holds only deferred (held) mail.
settled() {
    queue mx | awk -F'\t' '$1 != "deferred" { busy = 1 } END { exit busy }' &&
        [ -z "$(queue unit1)" ] && [ -z "$(queue unit2)" ]
}

# stored: every message the demo sent that is in a unit's Maildir, one line
# each: "ADDRESS<tab>UNIT maildir DOMAIN/USER/" (ADDRESS: where it was sent).
stored() {
    local u
    for u in unit1 unit2; do
        { grep -rx 'Subject: demo: for .*' "$demo/$u/mail" 2>/dev/null || true; } |
            sed -n "s|^$demo/$u/mail/\(.*/\)new/[^:]*:Subject: demo: for \(.*\)\$|\2\t$u maildir \1|p"
    done | sort
}

# maildir_hits ADDRESS STORED: the Maildirs, in STORED (as printed by
# "stored"), that hold the message sent to ADDRESS, on one line.
maildir_hits() {
    printf '%s\n' "$2" | awk -F'\t' -v a="$1" '$1 == a { printf "%s%s", sep, $2; sep = ", " }'
}

# why_held ADDRESS: why the directory holds ADDRESS's mail: its mailbox is
# moving, or its unit is down.
why_held() {
    local show unit
    show=$(ctl mailbox show "$1")
    unit=$(printf '%s\n' "$show" | sed -n 's/^unit: //p')
    if [ "$(printf '%s\n' "$show" | sed -n 's/^state: //p')" = moving ]; then
        printf 'moving from %s to %s' "$unit" "$(printf '%s\n' "$show" | sed -n 's/^moving_to: //p')"
    elif ctl unit list | awk -v u="$unit" '$1 == u && $3 == "down" { found = 1 } END { exit !found }'; then
        printf '%s is down' "$unit"
    else
        printf 'its route has not changed yet'
    fi
}

# destination ADDRESS MX-QUEUE STORED: where the message to ADDRESS ended
# up, from the SMTP transcript, the MX's queue (as printed by "queue mx")
# and the Maildirs (as printed by "stored").
destination() {
    local reply hits held
    reply=$(rcpt_reply "$1")
    case $reply in
        250*) ;;
        "") printf 'no answer from the MX (see mx/sent/%s)' "$1"; return ;;
        *) printf 'refused at RCPT TO: %s' "$reply"; return ;;
    esac
    hits=$(maildir_hits "$1" "$3")
    held=$(printf '%s\n' "$2" | awk -F'\t' -v a="$1" 'tolower($2) == tolower(a) { print $3; exit }')
    if [ -n "$hits" ]; then
        printf '%s' "$hits"
    elif [ -n "$held" ]; then
        printf 'held on the MX (%s): "%s"' "$(why_held "$1")" "$held"
    else
        printf 'accepted, not delivered yet'
    fi
}

step "4. mail from the Internet to the MX (swaks from 127.0.0.2 to 127.0.0.1:${port[mx]})"
# address|what the sample says about it
mail_plan=(
    "carol@example.com|a mailbox moving unit1 -> unit2"
    "alice@example.com|a mailbox on unit1"
    "bob@example.com|a mailbox on unit2"
    "bob+news@example.com|bob, with a +tag"
    "sales@example.com|an alias: alice and bob"
    "dave@example.net|a mailbox on unit4 (down)"
    "erin@example.com|a suspended mailbox"
    "frank@example.com|a disabled mailbox"
    "nobody@example.com|no such user"
)
# carol's first: the MX's queue manager reuses its last address resolution
# for 30 s, so carol's must not be the last one when her mail is released
# in step 5. The others go at once.
sending=$SECONDS
send carol@example.com
senders=()
for entry in "${mail_plan[@]:1}"; do
    send "${entry%%|*}" &
    senders+=($!)
done
wait "${senders[@]}"
settling=$SECONDS
if wait_for 30 settled; then
    say "${#mail_plan[@]} messages sent in $((settling - sending)) s; every queue settled $((SECONDS - settling)) s later"
else
    say "${#mail_plan[@]} messages sent in $((settling - sending)) s; some mail is still on its way 30 s later"
fi

mx_queue=$(queue mx)
maildirs=$(stored)
printf '\n%-22s %-32s %s\n' "recipient" "in the directory" "where the message ended up"
printf '%-22s %-32s %s\n' "---------" "----------------" "--------------------------"
for entry in "${mail_plan[@]}"; do
    printf '%-22s %-32s %s\n' "${entry%%|*}" "${entry#*|}" "$(destination "${entry%%|*}" "$mx_queue" "$maildirs")"
done

stamp=$(grep -rlx 'Subject: demo: for alice@example.com' "$demo/unit1/mail" 2>/dev/null | head -n 1 || true)
if [ -n "$stamp" ]; then
    say ""
    say "alice's copy in unit1's Maildir carries one route stamp (hop 1 on the MX, 2 on unit1):"
    grep -i '^X-Unit-' "$stamp" | sed 's/^/  /'
fi

# ------------------------------------------------------------------ 5. the move

step "5. carol's move finishes: publish, copy to every host, release the held message"
# The move procedure (README, "Replicating the directory"): move begin,
# publish, copy to every host, wait until every host serves that generation,
# copy the mailbox's mail, move finish, publish, copy, release the held mail.
# carol's move began in the sample, so the snapshot of step 2 carried the
# hold to every host before its daemons started; her mailbox is empty here,
# so there is nothing to copy. The rest follows.
shown move finish carol@example.com
shown publish "$demo/published/units.db"
for h in "${hosts[@]}"; do copy_replica "$h"; done
copied_ns=$(date +%s%N)
say "copied to mx/units.db, unit1/units.db and unit2/units.db"
new_route="smtp:[127.0.0.1]:${port[unit2]}"
# Every host, not the MX alone: were unit2's daemon still on the old copy,
# it would answer 4xx for carol and the MX would hold her mail for its
# whole backoff time (minimal_backoff_time, 300 s).
route_is_new() {
    local h
    for h in "${hosts[@]}"; do
        [ "$(postmap -q carol@example.com "socketmap:unix:$demo/$h/sock/unitmap:transportmx" 2>/dev/null)" = "$new_route" ] \
            || return 1
    done
}
wait_for 15 route_is_new || die "some host's unitpolicy does not answer the new route of carol@example.com"
say "every host's unitpolicy routes carol@example.com to $new_route" \
    "$(( ($(date +%s%N) - copied_ns) / 1000000 )) ms after the copy, without a restart"
# On a real MX the daemon's held-mail watcher releases the message within
# seconds (held_mail_interval): it runs postqueue as its user, nobody, and
# Postfix accepts "postqueue -c DIR" from a user only for a DIR listed in
# /etc/postfix/main.cf's alternate_config_directories, which this demo
# leaves alone (its watchers are off). So, by hand: postqueue -i, this
# message only. ("postqueue -f" would be safe too: dave's held mail would go
# to the hold route, a socket under /dev/null, and stay deferred.)
carol_id=$(queue mx | awk -F'\t' '$2 == "carol@example.com" { print $4; exit }')
if [ -n "$carol_id" ]; then
    say "postqueue -i $carol_id (the held message) on the MX"
    postqueue -c "$demo/mx/etc" -i "$carol_id"
    carol_stored() { [ -n "$(maildir_hits carol@example.com "$(stored)")" ]; }
    wait_for 20 carol_stored || true
fi
printf '\n%-22s %-32s %s\n' "carol@example.com" "moved to unit2" \
    "$(destination carol@example.com "$(queue mx)" "$(stored)")"

# ------------------------------------------------------------------ 6. --dump

step "6. unitpolicy --dump --control on the MX (its database and live counters)"
"$unitpolicy" --db "$demo/mx/units.db" --recipient-delimiter + --dump --control "$demo/mx/sock/control" |
    sed -n '/^database:/,$p'
