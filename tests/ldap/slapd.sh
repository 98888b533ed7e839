#!/bin/bash
# tests/ldap/slapd.sh: a throwaway OpenLDAP server for the LDAP tests
# (Debian's slapd and ldap-utils, tools/debian-packages.txt).
#
#   slapd.sh start DIR    writes DIR/slapd.conf (mdb database in DIR/db,
#                         suffix dc=example,dc=com, the schemas core, cosine,
#                         inetorgperson, misc and tests/ldap/unitpolicy-test)
#                         and starts slapd listening only on the socket
#                         DIR/ldapi; returns once it answers. Its URI is in
#                         DIR/uri.
#   slapd.sh load DIR N   adds make_entries.py's N users (and the rest of
#                         the test tree) with ldapadd
#   slapd.sh stop DIR     stops it (SIGTERM, then SIGKILL after 10 s)
#
# Who may read (slapd.conf's ACL):
#   cn=admin,dc=example,dc=com / secret     the rootdn: everything
#   cn=limited,dc=example,dc=com / limited-secret
#                         a user who may read but gets at most 2500 entries
#                         per search (size limits, paged or not)
#   the process's own uid and gid over ldapi with SASL EXTERNAL: read
#   anonymous             nothing (an empty result, not an error)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
slapd=/usr/sbin/slapd
command=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: slapd.sh start|load|stop DIR [N]" >&2; exit 2; }

uri_of() { printf 'ldapi://%s' "$(printf '%s' "$1/ldapi" | sed -e 's,/,%2F,g')"; }

start() {
    [ -x "$slapd" ] || { echo "slapd.sh: $slapd missing (apt-get install slapd)" >&2; exit 1; }
    mkdir -p "$dir/db"
    local uid gid
    uid=$(id -u)
    gid=$(id -g)
    cat >"$dir/slapd.conf" <<EOF_CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/misc.schema
include $here/unitpolicy-test.schema
pidfile $dir/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit unlimited

database mdb
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw secret
directory $dir/db
maxsize 268435456
dbnosync
limits dn.exact="cn=limited,dc=example,dc=com" size.soft=2500 size.hard=2500 size.prtotal=2500
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="gidNumber=$gid+uidNumber=$uid,cn=peercred,cn=external,cn=auth" read
    by dn.exact="cn=limited,dc=example,dc=com" read
    by * none
EOF_CONF
    uri_of "$dir" >"$dir/uri"
    "$slapd" -f "$dir/slapd.conf" -h "$(cat "$dir/uri")" -s 0 || { echo "slapd.sh: slapd did not start" >&2; exit 1; }
    local i
    for i in $(seq 1 100); do
        if ldapsearch -x -H "$(cat "$dir/uri")" -s base -b "" namingContexts >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "slapd.sh: slapd does not answer on $dir/ldapi" >&2
    stop
    exit 1
}

load() {
    local count=${1:?slapd.sh load DIR N}
    python3 "$here/make_entries.py" "$count" >"$dir/entries.ldif"
    ldapadd -x -M -H "$(cat "$dir/uri")" -D cn=admin,dc=example,dc=com -w secret -f "$dir/entries.ldif" >/dev/null
}

stop() {
    local pid i
    pid=$(cat "$dir/slapd.pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

case $command in
    start) start ;;
    load) load "${3:-}" ;;
    stop) stop ;;
    *) echo "usage: slapd.sh start|load|stop DIR [N]" >&2; exit 2 ;;
esac
