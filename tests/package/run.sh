#!/bin/bash
# tests/package/run.sh: the Debian package, as an administrator gets it.
#   - builds it (dpkg-buildpackage -us -uc -b, tests off) in a copy of the
#     tree under a temporary directory: no build product lands in the tree;
#   - lintian on the result: no error (the warnings are printed as "# W:");
#   - installs unitpolicy and libunitpolicy-dev with
#     apt-get install ./unitpolicy_*.deb ./libunitpolicy-dev_*.deb, then
#     checks the programs, man pages, conffiles, the system user and group,
#     that no installed file names /usr/local (pages, examples, units),
#     the owners of /var/lib/unitpolicy and /etc/unitpolicy/*.conf, and the
#     systemd units: installed, enabled, not started;
#   - a replica of the installed sample made by the installed unitctl in
#     /var/lib/unitpolicy/units.db; the installed configuration files,
#     switched to listeners on 127.0.0.1 (never Postfix's private/);
#   - starts both services: with systemctl when systemd runs the machine,
#     otherwise the units' ExecStart lines by hand, as the units run them
#     (as root, umask 0077; the daemons become user unitpolicy themselves);
#   - a policy request and a socketmap lookup answered by the installed
#     unitpolicy, unitmilter listening, both running as unitpolicy, the
#     control socket in /run/unitpolicy; a program built against the
#     installed libunitpolicy-dev resolves on the same replica;
#   - stops them, apt-get purge, and checks that nothing is left: the
#     files, /etc/unitpolicy, /var/lib/unitpolicy, /run/unitpolicy, the
#     user and group, the units and their enablement links.
# The system Postfix is never touched (no file under /etc/postfix or in
# /var/spool/postfix/private changes; checked). Needs root, dpkg-buildpackage
# (debhelper) and lintian; refuses to run when unitpolicy is already
# installed. Prints "ok NAME" or "not ok NAME: why" per check, then
#   package: P passed, F failed
# and exits non-zero when anything failed.

# Functions run through check and the EXIT trap look unreachable to it.
# shellcheck disable=SC2317
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
packages=(unitpolicy libunitpolicy-dev)
programs=(unitpolicy unitmilter)

# shellcheck source=tests/checks.sh
source "$root/tests/checks.sh"
diag() { sed -e 's/^/# /'; }
absent() { [ ! -e "$1" ] && [ ! -L "$1" ]; }
not() { ! "$@" >/dev/null 2>&1; }
finish() {
    echo "package: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
# installed PACKAGE: dpkg knows it in any state but "not installed".
installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [ -n "$status" ] && [ "$status" != not-installed ]
}
not_installed() { ! installed "$1"; }

if [ "$(id -u)" -ne 0 ]; then
    not_ok preconditions "needs root (apt-get install, services, purge)"
    finish
fi
for command in dpkg-buildpackage dh lintian apt-get python3; do
    command -v "$command" >/dev/null || { not_ok preconditions "$command is not installed"; finish; }
done
for package in "${packages[@]}"; do
    if installed "$package"; then
        not_ok preconditions "$package is already installed here: this test installs and purges its own"
        finish
    fi
done
if getent passwd unitpolicy >/dev/null || [ -e /etc/unitpolicy ] || [ -e /var/lib/unitpolicy ]; then
    not_ok preconditions "a user unitpolicy, /etc/unitpolicy or /var/lib/unitpolicy exists already"
    finish
fi

tmp=$(mktemp -d /tmp/unitpolicy-package.XXXXXX)
# apt-get reads the .deb files as user _apt.
chmod 0755 "$tmp"
pids=()
# On any exit: stop what this script started (by its pids), purge what it
# installed, remove the temporary directory.
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    if [ -d /run/systemd/system ]; then
        systemctl stop "${programs[@]/%/.service}" >/dev/null 2>&1
    fi
    for package in "${packages[@]}"; do
        if installed "$package"; then
            DEBIAN_FRONTEND=noninteractive apt-get purge -y "${packages[@]}" >/dev/null 2>&1
            break
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The system Postfix's files, before: the same after, whatever happens.
postfix_state() {
    { find /etc/postfix -type f -exec md5sum {} + 2>/dev/null | sort
      ls -la /var/spool/postfix/private 2>/dev/null; } >"$1"
}
postfix_state "$tmp/postfix.before"

version=$(cd "$root" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)

# ------------------------------------------------------------ build

# The tree's files (tracked, and new ones not ignored: what is being
# committed), never build directories, into a copy.
src=$tmp/unitpolicy-$version
mkdir -p "$src"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$src"
else
    tar -C "$root" --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$src"
fi
if [ ! -f "$src/debian/control" ]; then
    not_ok "copy of the tree" "no debian/control in $src"
    finish
fi

started=$SECONDS
if (cd "$src" && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$(nproc)" nice dpkg-buildpackage -us -uc -b) \
    >"$tmp/build.log" 2>&1; then
    ok "dpkg-buildpackage -us -uc -b ($((SECONDS - started)) s)"
else
    not_ok "dpkg-buildpackage -us -uc -b" "failed:"
    tail -n 40 "$tmp/build.log" | diag
    finish
fi
debs=()
for package in "${packages[@]}"; do
    deb=$tmp/${package}_${version}_$arch.deb
    check "$(basename "$deb")" "not built" test -f "$deb"
    debs+=("./$(basename "$deb")")
done
changes=$tmp/unitpolicy_${version}_$arch.changes
leftovers=$(cd "$root" && ls -d debian/.debhelper debian/tmp debian/files debian/unitpolicy \
    debian/libunitpolicy-dev debian/debhelper-build-stamp obj-* 2>/dev/null)
check "no build product in the source tree" "left: $leftovers" test -z "$leftovers"

started=$SECONDS
lintian --fail-on error --tag-display-limit 0 "$changes" >"$tmp/lintian.log" 2>&1
status=$?
diag <"$tmp/lintian.log"
errors=$(grep -c '^E: ' "$tmp/lintian.log")
check "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.log") warnings, $((SECONDS - started)) s)" \
    "exit status $status, $errors errors" test "$status" -eq 0 -a "$errors" -eq 0

# ------------------------------------------------------------ install

started=$SECONDS
if (cd "$tmp" && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${debs[@]}") \
    >"$tmp/install.log" 2>&1; then
    ok "apt-get install ${debs[*]} ($((SECONDS - started)) s)"
else
    not_ok "apt-get install ${debs[*]}" "failed:"
    tail -n 30 "$tmp/install.log" | diag
    finish
fi

for program in unitpolicy unitmilter unitctl; do
    check "/usr/sbin/$program --version" "says \"$("/usr/sbin/$program" --version 2>&1)\"" \
        test "$("/usr/sbin/$program" --version 2>&1)" = "$program $version"
done
for page in "$root"/man/*.[1-8]; do
    name=$(basename "$page")
    check "man${name##*.}/$name.gz" "not installed" test -f "/usr/share/man/man${name##*.}/$name.gz"
done
for file in sample/sample.csv mx/main.cf mx/master.cf unit/main.cf unit/master.cf unitpolicy.conf unitmilter.conf; do
    check "examples/$file" "not in /usr/share/doc/unitpolicy/examples (uncompressed)" \
        test -f "/usr/share/doc/unitpolicy/examples/$file"
done
check "/usr/share/doc/unitpolicy/copyright" "missing" test -f /usr/share/doc/unitpolicy/copyright
check "bash completion of unitctl" "not /usr/share/bash-completion/completions/unitctl, or not the source's" \
    cmp -s "$root/completion/unitctl.bash" /usr/share/bash-completion/completions/unitctl

# The system user and group, and who owns what.
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd unitpolicy)
check "user unitpolicy" "not a system user with no login (uid ${uid:-none}, $home, $shell)" \
    test -n "${uid:-}" -a "${uid:-1000}" -lt 1000 -a "${shell:-}" = /usr/sbin/nologin
check "group unitpolicy" "missing, or not the user's group" test "$(getent group unitpolicy | cut -d: -f3)" = "${gid:-none}"
owner() { stat -c '%U:%G %a' "$1" 2>&1; }
check "/var/lib/unitpolicy root:unitpolicy 750" "is $(owner /var/lib/unitpolicy)" \
    test "$(owner /var/lib/unitpolicy)" = "root:unitpolicy 750"
check "/var/cache/unitpolicy unitpolicy:unitpolicy 750" "is $(owner /var/cache/unitpolicy)" \
    test "$(owner /var/cache/unitpolicy)" = "unitpolicy:unitpolicy 750"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' unitpolicy)
for conf in /etc/unitpolicy/unitpolicy.conf /etc/unitpolicy/unitmilter.conf; do
    check "conffile $conf" "not a conffile of unitpolicy" grep -q "^ $conf " <<<"$conffiles"
    check "$conf root:unitpolicy 640" "is $(owner "$conf")" test "$(owner "$conf")" = "root:unitpolicy 640"
    check "$conf is the example" "differs from /usr/share/doc/unitpolicy/examples/$(basename "$conf")" \
        cmp -s "$conf" "/usr/share/doc/unitpolicy/examples/$(basename "$conf")"
done

# Built with --prefix=/usr, nothing installed names /usr/local: the pages,
# the examples, the units, the conffiles, the headers (binaries skipped).
# The programs that master.cf and unitpolicy(8) run are where they say.
usr_local=()
while IFS= read -r file; do
    if [ -f "$file" ] && [ ! -L "$file" ] && grep -qI /usr/local < <(zcat -f "$file"); then
        usr_local+=("$file")
    fi
done < <(dpkg -L "${packages[@]}" | sort -u)
check "no installed file says /usr/local ($(dpkg -L "${packages[@]}" | wc -l) paths)" "${usr_local[*]} do" \
    test ${#usr_local[@]} -eq 0
for file in /usr/share/doc/unitpolicy/examples/mx/master.cf /usr/share/man/man8/unitpolicy.8.gz; do
    argv=$(zcat -f "$file" | grep -o 'argv=[^ ]*' | head -n 1)
    check "$file: argv=/usr/sbin/unitpolicy, installed" "it says ${argv:-no argv=}" \
        test "$argv" = argv=/usr/sbin/unitpolicy -a -x /usr/sbin/unitpolicy
done

# The units: where systemd finds them, naming the installed programs,
# enabled (the links deb-systemd-helper makes, systemd running or not),
# not started.
for program in "${programs[@]}"; do
    unit=/lib/systemd/system/$program.service
    check "$unit runs /usr/sbin/$program" "ExecStart is \"$(sed -n 's/^ExecStart=//p' "$unit" 2>&1)\"" \
        grep -q "^ExecStart=/usr/sbin/$program " "$unit"
    check "$program.service enabled" "no link in /etc/systemd/system/multi-user.target.wants" \
        test -L "/etc/systemd/system/multi-user.target.wants/$program.service"
    if [ -d /run/systemd/system ]; then
        check "$program.service not started" "it is $(systemctl is-active "$program.service")" \
            test "$(systemctl is-active "$program.service")" = inactive
    else
        check "$program not started" "a /usr/sbin/$program runs" test -z "$(pidof "/usr/sbin/$program")"
    fi
done

# ------------------------------------------------------------ run

# The replica, published by the installed unitctl from the installed sample
# where the daemons read it by default.
replica=/var/lib/unitpolicy/units.db
{
    unitctl --db /var/lib/unitpolicy/primary.db init &&
        unitctl --db /var/lib/unitpolicy/primary.db import /usr/share/doc/unitpolicy/examples/sample/sample.csv &&
        unitctl --db /var/lib/unitpolicy/primary.db publish "$replica"
} >"$tmp/unitctl.log" 2>&1
generation=$(sed -n -E 's/^published .* generation ([0-9]+) .*/\1/p' "$tmp/unitctl.log")
if [ -z "$generation" ]; then
    not_ok "unitctl init, import, publish" "$(tr '\n' ' ' <"$tmp/unitctl.log")"
    finish
fi
ok "unitctl init, import, publish $replica (generation $generation)"

# free_port: a TCP port nobody listens on, on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
policy_port=$(free_port)
map_port=$(free_port)
milter_port=$(free_port)
sed -i -e "s|^policy_listen = .*|policy_listen = inet:127.0.0.1:$policy_port|" \
    -e "s|^socketmap_listen = .*|socketmap_listen = inet:127.0.0.1:$map_port|" \
    -e '/^socket_group = /d' /etc/unitpolicy/unitpolicy.conf
sed -i -e "s|^listen = .*|listen = inet:$milter_port@127.0.0.1|" \
    -e '/^socket_group = /d' /etc/unitpolicy/unitmilter.conf
echo "log = stderr" | tee -a /etc/unitpolicy/unitpolicy.conf >>/etc/unitpolicy/unitmilter.conf

port_open() { timeout --foreground 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        port_open "$1" && return 0
        sleep 0.1
    done
    return 1
}

declare -A main_pid
if [ -d /run/systemd/system ]; then
    echo "# systemd runs this machine ($(systemctl is-system-running 2>&1)): systemctl start"
    for program in "${programs[@]}"; do
        if systemctl start "$program.service" >"$tmp/$program.log" 2>&1; then
            main_pid[$program]=$(systemctl show -p MainPID --value "$program.service")
            ok "systemctl start $program"
        else
            not_ok "systemctl start $program" "$(tr '\n' ' ' <"$tmp/$program.log")"
            journalctl -u "$program.service" -n 20 --no-pager 2>&1 | diag
        fi
    done
else
    echo "# systemd does not run this machine: the units' ExecStart lines by hand"
    for program in "${programs[@]}"; do
        unit=/lib/systemd/system/$program.service
        runtime=$(sed -n 's/^RuntimeDirectory=//p' "$unit" | tail -n 1)
        [ -z "$runtime" ] || install -d -m 0755 "/run/$runtime"
        read -r -a exec_start <<<"$(sed -n 's/^ExecStart=//p' "$unit" | tail -n 1)"
        (umask 0077 && exec "${exec_start[@]}") >"$tmp/$program.log" 2>&1 &
        main_pid[$program]=$!
        pids+=("$!")
        ok "started ${exec_start[*]} (pid $!)"
    done
fi

check "unitpolicy listens on 127.0.0.1:$policy_port" "$(tr '\n' ' ' <"$tmp/unitpolicy.log")" wait_port "$policy_port"
check "unitmilter listens on 127.0.0.1:$milter_port" "$(tr '\n' ' ' <"$tmp/unitmilter.log")" wait_port "$milter_port"
# euid PID: the effective user id of process PID (/proc/PID itself belongs
# to root once a process has switched user: it is no longer dumpable).
euid() { awk '/^Uid:/ { print $3 }' "/proc/$1/status" 2>/dev/null; }
service_uid=$(id -u unitpolicy 2>/dev/null)
for program in "${programs[@]}"; do
    pid=${main_pid[$program]:-0}
    check "$program runs as unitpolicy" "pid $pid runs as uid $(euid "$pid"), not ${service_uid:-none}" \
        test -n "$service_uid" -a "$(euid "$pid")" = "$service_uid"
done

# policy RECIPIENT: the action of the installed unitpolicy at RCPT TO.
policy() { timeout --foreground 10 python3 "$root/tests/policy_rcpt.py" "127.0.0.1:$policy_port" "$1" 192.0.2.1; }
# socketmap MAP KEY: the installed unitpolicy's socketmap answer.
socketmap() {
    timeout --foreground 10 python3 - "$map_port" "$1 $2" <<'EOF_PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
query = sys.argv[2].encode()
s.sendall(b"%d:%s," % (len(query), query))
reply = b""
while not (b":" in reply and len(reply) >= reply.index(b":") + 2 + int(reply.split(b":")[0])):
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
length, _, rest = reply.partition(b":")
print(rest[:int(length)].decode(errors="replace") if length.isdigit() else "BAD REPLY " + repr(reply))
EOF_PY
}
answer=$(policy alice@example.com 2>&1)
check "policy: alice@example.com is DUNNO" "got \"$answer\"" test "$answer" = DUNNO
answer=$(policy nobody@example.com 2>&1)
check "policy: nobody@example.com is 550 5.1.1" "got \"$answer\"" test "$answer" = "550 5.1.1 User unknown"
answer=$(socketmap transportmx alice@example.com 2>&1)
check "socketmap: transportmx alice@example.com" "got \"$answer\"" test "$answer" = "OK smtp:[unit1.example.com]"
dump=$(unitpolicy --dump --control /run/unitpolicy/control 2>&1)
check "unitpolicy --dump --control /run/unitpolicy/control" "no daemon_generation $generation in: $(head -c 300 <<<"$dump")" \
    grep -Eq "daemon_generation:? +$generation\b" <<<"$dump"
# The replica checked at start is recorded (cache_directory), by the
# daemons' user, so that a restart skips the check.
record=/var/cache/unitpolicy/checked-files
check "$record names the replica checked" "$(ls -l "$record" 2>&1)" \
    grep -Eq " $generation [0-9a-f]+\$" "$record"

# libunitpolicy-dev: a provider's program, built with pkg-config's flags for
# the installed library, resolves on the same replica.
# shellcheck disable=SC2046 # the flags are words
if c++ -std=c++20 -o "$tmp/resolve" "$root/tests/install/resolve.cpp" \
    $(pkg-config --cflags --libs unitpolicy) >"$tmp/cc.log" 2>&1; then
    answer=$("$tmp/resolve" "$replica" + alice@example.com 2>&1)
    check "libunitpolicy-dev: resolve.cpp resolves alice@example.com" "got \"$answer\"" \
        test "$answer" = "alice@example.com mailbox unit1 smtp:[unit1.example.com] active $generation"
else
    not_ok "libunitpolicy-dev: resolve.cpp builds with pkg-config unitpolicy" "$(head -n 10 "$tmp/cc.log" | tr '\n' ' ')"
fi

# ------------------------------------------------------------ stop and purge

if [ -d /run/systemd/system ]; then
    for program in "${programs[@]}"; do
        check "systemctl stop $program" "failed" systemctl stop "$program.service"
    done
else
    for program in "${programs[@]}"; do
        pid=${main_pid[$program]}
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        check "$program stops on SIGTERM" "pid $pid still runs" wait "$pid"
    done
    pids=()
fi

started=$SECONDS
if DEBIAN_FRONTEND=noninteractive apt-get purge -y "${packages[@]}" >"$tmp/purge.log" 2>&1; then
    ok "apt-get purge -y ${packages[*]} ($((SECONDS - started)) s)"
else
    not_ok "apt-get purge -y ${packages[*]}" "failed:"
    tail -n 20 "$tmp/purge.log" | diag
fi
for package in "${packages[@]}"; do
    check "$package purged" "dpkg still knows it: $(dpkg-query -W -f='${db:Status-Status}' "$package" 2>&1)" \
        not_installed "$package"
done
for path in /etc/unitpolicy /var/lib/unitpolicy /var/cache/unitpolicy /run/unitpolicy /usr/share/doc/unitpolicy \
    /usr/share/unitpolicy /usr/include/unitpolicy /usr/sbin/unitpolicy /usr/sbin/unitmilter /usr/sbin/unitctl \
    /lib/systemd/system/unitpolicy.service /lib/systemd/system/unitmilter.service \
    /etc/systemd/system/multi-user.target.wants/unitpolicy.service \
    /etc/systemd/system/multi-user.target.wants/unitmilter.service; do
    check "purged: $path" "still there" absent "$path"
done
left=$(ls -d /var/lib/systemd/deb-systemd-helper-enabled/*unitpolicy* /var/lib/systemd/deb-systemd-helper-enabled/*unitmilter* \
    /var/lib/systemd/deb-systemd-helper-masked/unitpolicy* /var/lib/systemd/deb-systemd-helper-masked/unitmilter* \
    /etc/systemd/system/*/unitpolicy.service /etc/systemd/system/*/unitmilter.service 2>/dev/null)
check "purged: the units' enablement state" "left: $left" test -z "$left"
check "purged: user unitpolicy" "getent passwd unitpolicy finds it" not getent passwd unitpolicy
check "purged: group unitpolicy" "getent group unitpolicy finds it" not getent group unitpolicy
for program in "${programs[@]}"; do
    check "no $program runs" "pid $(pidof "/usr/sbin/$program")" test -z "$(pidof "/usr/sbin/$program")"
done

postfix_state "$tmp/postfix.after"
check "the system Postfix untouched" "/etc/postfix or /var/spool/postfix/private changed" \
    cmp -s "$tmp/postfix.before" "$tmp/postfix.after"

finish
