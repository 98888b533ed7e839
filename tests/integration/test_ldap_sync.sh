#!/bin/bash
# test_ldap_sync.sh: `unitctl sync --ldap` against a real slapd (issue 14).
# A throwaway slapd (tests/ldap/slapd.sh, 3000 users of make_entries.py,
# over ldapi://) feeds a primary; a running unitpolicy serves its published
# snapshot. Checked through `unitctl resolve` and the daemon (postmap -q on
# its socketmap, one policy request):
#   first sync     every user, state, alias and list arrives
#   ldapmodify     a user added, one deleted, a state changed, a unit changed
#   second sync    the summary counts them; the unit change begins a move
#                  (mail held on the MX), never a silent reroute
#   third sync     nothing to change
#   failures       a size limit mid-way and a stopped server: exit 1, the
#                  primary unchanged
# UNITPOLICY=/path/to/unitpolicy (or BUILD_DIR) selects the daemon.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IT_UNITPOLICY=${UNITPOLICY:-$IT_UNITPOLICY}
[ -x "$IT_UNITPOLICY" ] || it_skip_all "$IT_UNITPOLICY not built yet"
it_init "$@"
for tool in /usr/sbin/slapd ldapadd ldapmodify; do
    command -v "$tool" >/dev/null 2>&1 || it_skip_all "$tool not installed (bash tools/install-deps.sh)"
done

slapd_sh=$IT_ROOT/tests/ldap/slapd.sh
ldap_dir=$IT_WORK/ldap
admin=cn=admin,dc=example,dc=com
IT_DB=$IT_WORK/primary.db
IT_REPLICA=$IT_WORK/units.db
conf=$IT_WORK/unitctl.conf

# --------------------------------------------------------------- slapd

mkdir -p "$ldap_dir"
bash "$slapd_sh" start "$ldap_dir" || it_fatal "slapd did not start"
IT_PIDS+=("$(cat "$ldap_dir/slapd.pid")")  # stopped by the EXIT trap
started=$SECONDS
bash "$slapd_sh" load "$ldap_dir" 3000 || it_fatal "ldapadd of the test directory failed"
it_diag "ldapadd of 3000 users: $((SECONDS - started)) s"
uri=$(cat "$ldap_dir/uri")

# ldap_modify LDIF: changes the directory as its rootdn.
ldap_modify() {
    printf '%s\n' "$1" | ldapmodify -x -H "$uri" -D "$admin" -w secret >/dev/null
}

# --------------------------------------------------------------- the primary

printf 'secret\n' >"$IT_WORK/ldap.password"
chmod 0600 "$IT_WORK/ldap.password"
cat >"$conf" <<EOF
ldap_uri = $uri
ldap_bind_dn = $admin
ldap_password_file = $IT_WORK/ldap.password
ldap_base = ou=people,dc=example,dc=com
ldap_page_size = 500
ldap_unit_value = first_label
ldap_state_attribute = accountStatus
ldap_alias_base = ou=lists,dc=example,dc=com
ldap_alias_filter = (objectClass=unitTestMailList)
EOF

ctl init || it_fatal "unitctl init failed"
for unit in unit1 unit2 unit3 unit4; do
    ctl unit add "$unit" --nexthop "[$unit.example.test]" || it_fatal "unitctl unit add $unit failed"
done

# sync: unitctl sync --ldap with the test's configuration; output in SYNC_OUT.
sync_ldap() {
    SYNC_OUT=$("$IT_UNITCTL" --config "$conf" --db "$IT_DB" sync --ldap 2>&1)
}

generation() { sqlite3 "$IT_DB" "SELECT value FROM meta WHERE key = 'generation'"; }

# resolved ADDRESS FIELD: one line of `unitctl resolve ADDRESS` ("mailbox_state: suspended").
resolved() { ctl resolve "$1" 2>/dev/null | grep -E "^$2: " | head -n 1; }

started=$EPOCHREALTIME
sync_ldap
status=$?
it_diag "first sync of 3000 users and 2 lists: $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
it_diag "$SYNC_OUT"
it_expect_eq "first sync succeeds" 0 "$status"
it_expect_match "first sync: its summary" '^added [1-9][0-9]* changed 0 removed 0 moves begun 0' "$SYNC_OUT"
it_expect_eq "first sync: 3000 mailboxes" 3000 "$(sqlite3 "$IT_DB" 'SELECT count(*) FROM mailboxes')"
it_expect_eq "first sync: 603 alias rows" 603 "$(sqlite3 "$IT_DB" 'SELECT count(*) FROM aliases')"
it_expect_eq "first sync: the domains of the addresses" "example.com example.net example.org" \
    "$(sqlite3 "$IT_DB" 'SELECT name FROM domains ORDER BY name' | tr '\n' ' ' | sed 's/ $//')"
it_expect_eq "resolve: user1's unit (first label of mailHost)" "unit: unit2" "$(resolved user1@example.com unit)"
it_expect_eq "resolve: user50 is suspended" "mailbox_state: suspended" "$(resolved user50@example.org mailbox_state)"
it_expect_eq "resolve: user70 is disabled" "outcome: disabled" "$(resolved user70@example.org outcome)"
it_expect_eq "resolve: mailAlternateAddress is an alias" "outcome: alias" "$(resolved alias.user5@example.net outcome)"
it_expect_eq "resolve: a list is an alias" "outcome: alias" "$(resolved sales@example.com outcome)"

# --------------------------------------------------------------- unitpolicy

sockets=$IT_WORK/sockets
mkdir -p "$sockets"
chmod 0755 "$sockets"
it_publish
it_spawn "$IT_WORK/unitpolicy.log" "$IT_UNITPOLICY" --db "$IT_REPLICA" \
    --policy-listen "unix:$sockets/unitpolicy" --socketmap-listen "unix:$sockets/unitmap" \
    --hold-transport unithold --socket-mode 0666 --user nobody --log stderr
up_pid=$IT_LAST_PID

# up_map MAP KEY: "OK value", "NOTFOUND" or "TEMP ..." from the daemon's socketmap.
up_map() {
    local out rc
    out=$(timeout 10 postmap -q "$2" "socketmap:unix:$sockets/unitmap:$1" 2>"$IT_WORK/postmap.err")
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "OK $out"
    elif [ "$rc" -eq 1 ] && [ ! -s "$IT_WORK/postmap.err" ]; then
        echo NOTFOUND
    else
        echo "TEMP $(tr '\n' ' ' <"$IT_WORK/postmap.err")"
    fi
}
up_map_is() { [ "$(up_map "$1" "$2")" = "$3" ]; }

# up_policy RECIPIENT: the action of one RCPT-time policy request.
up_policy() { it_policy_rcpt "$sockets/unitpolicy" "$1"; }

if ! it_wait_until 10 up_map_is domain example.com "OK example.com"; then
    it_diag "unitpolicy log:" "$(tail -n 20 "$IT_WORK/unitpolicy.log")"
    it_fatal "unitpolicy does not answer on $sockets/unitmap"
fi
it_expect_eq "unitpolicy: user7's route" "OK smtp:[unit2.example.test]" "$(up_map transportmx user7@example.com)"
it_expect_eq "unitpolicy: user3 is a recipient" "OK user3@example.com" "$(up_map recipient user3@example.com)"
it_expect_eq "unitpolicy: an alias of the directory" "OK user5@example.com" "$(up_map alias alias.user5@example.net)"
it_expect_eq "unitpolicy: user4 is accepted" "DUNNO" "$(up_policy user4@example.com)"
it_expect_match "unitpolicy: suspended user50 gets 450" '^450 ' "$(up_policy user50@example.org)"

# --------------------------------------------------------------- changes in the directory

ldap_modify "dn: uid=newcomer,ou=people,dc=example,dc=com
changetype: add
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
objectClass: unitTestMailUser
uid: newcomer
cn: Newcomer
sn: Newcomer
mail: newcomer@example.com
mailHost: unit1.hosts.example.com
accountStatus: active

dn: uid=user3,ou=people,dc=example,dc=com
changetype: delete

dn: uid=user4,ou=people,dc=example,dc=com
changetype: modify
replace: accountStatus
accountStatus: disabled

dn: uid=user7,ou=people,dc=example,dc=com
changetype: modify
replace: mailHost
mailHost: unit4.hosts.example.com" || it_fatal "ldapmodify failed"

sync_ldap
status=$?
it_diag "$SYNC_OUT"
it_expect_eq "second sync succeeds" 0 "$status"
it_expect_match "second sync: added 1, removed 1, a move begun" '^added 1 changed [12] removed 1 moves begun 1' "$SYNC_OUT"
it_expect_eq "resolve: the newcomer on unit1" "unit: unit1" "$(resolved newcomer@example.com unit)"
it_expect_eq "resolve: user3 is gone" "outcome: unknown" "$(resolved user3@example.com outcome)"
it_expect_eq "resolve: user4 is disabled" "outcome: disabled" "$(resolved user4@example.com outcome)"
it_expect_eq "resolve: user7 is moving, not rerouted" "mailbox_state: moving" "$(resolved user7@example.com mailbox_state)"
it_expect_eq "resolve: user7 moves to unit4" "moving_to: unit4" "$(resolved user7@example.com moving_to)"

sync_ldap
it_expect_match "third sync changes nothing" '^added 0 changed 0 removed 0 moves begun 0' "$SYNC_OUT"

generation_before=$(generation)
it_publish
it_check "unitpolicy: the newcomer's route" 'got $(up_map transportmx newcomer@example.com)' \
    it_wait_until 10 up_map_is transportmx newcomer@example.com "OK smtp:[unit1.example.test]"
# Once one worker serves the new generation, all should (directory.hpp).
# Seen once in a sanitizer run: a worker answered user3 from the old
# snapshot right after the newcomer's route was served. it_publish's chmod
# changed the new file's ctime after the rename, and a worker that looked
# after it found a file with no verdict (the ctime was in the key of good
# verdicts too) and answered from the old snapshot while it was validated
# again; test_directory's "a chmod after the rename" shows the fix. A lag
# is still said here, and the answer must follow within seconds.
user3=$(up_map recipient user3@example.com)
[ "$user3" = NOTFOUND ] || it_diag "user3 answered '$user3' right after the newcomer's route was served"
it_check "unitpolicy: user3 is no recipient" 'got $(up_map recipient user3@example.com)' \
    it_wait_until 5 up_map_is recipient user3@example.com NOTFOUND
it_expect_match "unitpolicy: user4 gets 550 (disabled)" '^550 ' "$(up_policy user4@example.com)"
it_expect_eq "unitpolicy: user7's mail is held while it moves" "OK unithold:unix:/dev/null/unitpolicy-held/unit2" \
    "$(up_map transportmx user7@example.com)"

# --------------------------------------------------------------- an incomplete read changes nothing

printf 'limited-secret\n' >"$IT_WORK/limited.password"
chmod 0600 "$IT_WORK/limited.password"
sed -e "s|^ldap_bind_dn = .*|ldap_bind_dn = cn=limited,dc=example,dc=com|" \
    -e "s|^ldap_password_file = .*|ldap_password_file = $IT_WORK/limited.password|" "$conf" >"$conf.limited"
SYNC_OUT=$("$IT_UNITCTL" --config "$conf.limited" --db "$IT_DB" sync --ldap 2>&1)
it_expect_eq "a size limit mid-way: exit 1" 1 "$?"
it_expect_match "a size limit mid-way: says so" 'Size limit exceeded' "$SYNC_OUT"
it_expect_eq "a size limit mid-way: nothing changed" "$generation_before" "$(generation)"

bash "$slapd_sh" stop "$ldap_dir"
sync_ldap
it_expect_eq "a stopped server: exit 1" 1 "$?"
it_expect_match "a stopped server: the bind fails" "ldap: bind to .* failed: Can't contact LDAP server" "$SYNC_OUT"
it_expect_eq "a stopped server: nothing changed" "$generation_before" "$(generation)"
it_expect_eq "the mailboxes are all still there" 3000 "$(sqlite3 "$IT_DB" 'SELECT count(*) FROM mailboxes')"

it_stop_daemon unitpolicy "$up_pid" 5
it_summary
