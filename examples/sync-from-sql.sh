#!/bin/sh
# sync-from-sql.sh OUT: writes the provider's accounts as a unitctl sync
# source (the export format of unitctl(8), "CSV FORMAT"), for a cron job:
#
#   sync-from-sql.sh /run/unitpolicy/src.csv &&
#     unitctl sync /run/unitpolicy/src.csv && unitctl publish /srv/unitpolicy/units.db
#
# The trailer row "end,,ROWS," is written only after every query succeeded:
# a query that fails half-way leaves a file that unitctl sync refuses
# ("truncated: no end row") instead of one that removes accounts.
# Adapt the queries to your schema; this one has tables domains(name),
# servers(name, host, state) and accounts(email, server, status, forward).
set -eu
out=$1
tmp=$out.tmp
query() { psql -X -q --csv -t -v ON_ERROR_STOP=1 -d provisioning -c "$1"; }
{
    echo kind,address,value,state
    query "SELECT 'domain', name, '', '' FROM domains"
    query "SELECT 'unit', name, 'smtp:[' || host || ']', state FROM servers"
    query "SELECT 'mailbox', email, server,
                  CASE status WHEN 'locked' THEN 'suspended' WHEN 'closed' THEN 'disabled' ELSE 'active' END
           FROM accounts"
    query "SELECT 'alias', email, forward, '' FROM accounts WHERE forward IS NOT NULL"
} > "$tmp"
# Rows, not lines: a quoted field may hold a line break (not in this schema).
rows=$(($(wc -l < "$tmp") - 1))
echo "end,,$rows," >> "$tmp"
mv "$tmp" "$out"
