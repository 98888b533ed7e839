#!/bin/bash
# The main job of the README, on the bundled sample directory: installs what
# is missing, builds, loads examples/sample/sample.csv into a fresh primary
# database, checks and publishes a replica, starts the unitpolicy daemon on
# it, and asks it what Postfix would ask: the policy verdict at RCPT TO
# (policy delegation protocol, on the daemon's socket) and the socketmap
# tables (through Postfix's own client, postmap -q). Ends with the daemon's
# --dump, then stops it.
# BUILD_DIR overrides the build directory (default: build); KEEP_DEMO=1
# keeps the temporary directory with the databases.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${BUILD_DIR:-build}

bash tools/install-deps.sh >&2
if [ -d "$build/meson-private" ]; then
    meson setup --reconfigure "$build" >/dev/null
else
    meson setup "$build" >/dev/null
fi
meson compile -C "$build" >/dev/null

unitctl="$build/src/ctl/unitctl"
unitpolicy="$build/src/policyd/unitpolicy"
demo=$(mktemp -d "${TMPDIR:-/tmp}/unitpolicy-demo.XXXXXX")
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    if [ "${KEEP_DEMO:-0}" = 1 ]; then echo "kept $demo"; else rm -rf "$demo"; fi
}
trap cleanup EXIT

step() { printf '\n=== %s\n' "$*"; }

step "the primary database: init, import the sample, check, publish a replica"
"$unitctl" --db "$demo/primary.db" init
"$unitctl" --db "$demo/primary.db" import examples/sample/sample.csv
"$unitctl" --db "$demo/primary.db" check
"$unitctl" --db "$demo/primary.db" publish "$demo/units.db"

step "unitpolicy on the replica (an MX: policy and socketmap sockets)"
"$unitpolicy" --db "$demo/units.db" --recipient-delimiter + --log stderr \
    --policy-listen "unix:$demo/policy" --socketmap-listen "unix:$demo/map" --control "$demo/control" \
    2> "$demo/unitpolicy.log" &
daemon=$!
for _ in $(seq 50); do [ -S "$demo/policy" ] && break; sleep 0.1; done

# One policy delegation request at RCPT TO, as smtpd sends it.
policy() {
    python3 - "$demo/policy" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
           "recipient=%s\n\n" % sys.argv[2]).encode())
reply = b""
while not reply.endswith(b"\n\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.decode().strip().removeprefix("action="))
PY
}
# One socketmap lookup through Postfix's own client.
map() { postmap -q "$2" "socketmap:unix:$demo/map:$1" 2>&1 || echo "(not found)"; }

printf '\n%-28s %-46s %-34s %s\n' "recipient" "policy verdict at RCPT" "transportmx" "alias"
for address in alice@example.com Bob+news@Example.COM carol@example.com dave@example.net erin@example.com \
               frank@example.com nobody@example.com someone@example.net sales@example.com 'user@bücher.example' \
               stranger@elsewhere.org; do
    printf '%-28s %-46s %-34s %s\n' "$address" "$(policy "$address")" "$(map transportmx "$address")" \
        "$(map alias "$address")"
done
printf '\n%-28s %s\n' "domain example.net" "$(map domain example.net)"
printf '%-28s %s\n' "domain elsewhere.org" "$(map domain elsewhere.org)"

step "how the directory resolved one of them (unitctl resolve, with its trace)"
"$unitctl" --db "$demo/units.db" resolve --recipient-delimiter + Bob+news@Example.COM

step "unitpolicy --dump --control (configuration, database, live counters)"
"$unitpolicy" --db "$demo/units.db" --recipient-delimiter + --dump --control "$demo/control" |
    sed -n '/^database:/,$p'

step "the daemon's log"
kill "$daemon" && wait "$daemon" || true
daemon=""
cat "$demo/unitpolicy.log"
