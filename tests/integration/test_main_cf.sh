#!/bin/bash
# test_main_cf.sh: the system /etc/postfix/main.cf ends byte for byte as it
# was, whatever happens to the integration scripts that list their slot
# directories in its alternate_config_directories (lib.sh, "main.cf,
# borrowed"): one that passes, one that fails, one interrupted (SIGINT),
# one terminated (SIGTERM), one stopped by its time limit, two overlapping
# ones (the first to end must not restore under the other's feet), and one
# killed with SIGKILL (which leaves the entry: the next run must still end
# with the original file).
# Then the same with a real integration script, test_harness.sh: passing,
# killed with SIGKILL while its Postfix instance runs, run again.
# The scripts run here use their own IT_BASE (a fresh directory, so their
# slot directories are not listed in main.cf yet and each run really
# changes it); this script itself takes no slot, so main.cf is only
# compared, never borrowed, by it.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" -eq 0 ] || it_skip_all "needs root (it edits /etc/postfix/main.cf through lib.sh)"
command -v postconf >/dev/null 2>&1 || it_skip_all "postfix not installed"
[ -f /etc/postfix/main.cf ] || it_skip_all "no /etc/postfix/main.cf"
[ -x "$IT_UNITCTL" ] || it_skip_all "$IT_UNITCTL not built (meson compile -C build)"

work=$(mktemp -d /var/tmp/upit-maincf.XXXXXX) || it_fatal "mktemp failed"
chmod 0755 "$work"
base=$work/base
children=()
# on_exit: should this script fail half-way, its children are stopped and
# main.cf restored all the same (lib.sh's last-user step, for $base).
on_exit() {
    local pid
    for pid in "${children[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    if [ -d "$base/.main-cf" ]; then
        IT_MAINCF_STATE=$base/.main-cf
        (
            flock -w 30 9 || exit 1
            [ "$(it_maincf_live_users)" -eq 0 ] && it_maincf_restore
        ) 9>"$base/.register.lock"
    fi
    rm -rf "$work"
}
trap on_exit EXIT
child=$work/child.sh
cat >"$child" <<CHILD
#!/bin/bash
set -uo pipefail
. "$IT_ROOT/tests/integration/lib.sh"
it_init "\$@"
case \$(postconf -c /etc/postfix -h alternate_config_directories) in
    *"\$IT_BASE/pf1/etc"*) it_ok "child: slot directories listed" ;;
    *) it_not_ok "child: slot directories listed" "not in /etc/postfix/main.cf" ;;
esac
case \${1:-pass} in
    pass) ;;
    fail) it_not_ok "child: a failure on purpose" "as asked" ;;
    wait) echo ready >"\$2"; sleep 100 ;;
esac
it_summary
CHILD

sum() { md5sum </etc/postfix/main.cf | cut -d' ' -f1; }
listed() { postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null | grep -F -- "$base/pf1/etc" >/dev/null; }

# start_waiting VAR: starts a child that waits once registered; its pid
# (the leader of its process group, under timeout(1)) into VAR.
start_waiting() {
    local ready=$work/ready.$RANDOM
    IT_BASE=$base IT_UNDER_TIMEOUT= bash "$child" wait "$ready" >"$ready.log" 2>&1 &
    printf -v "$1" '%s' "$!"
    children+=("$!")
    it_wait_until 20 test -s "$ready" || it_diag "child did not get ready: $(cat "$ready.log")"
}

# run NAME MODE [ENV...]: runs a child to its end.
run_child() {
    local name=$1 mode=$2 out
    shift 2
    out=$(env IT_BASE="$base" IT_UNDER_TIMEOUT= "$@" bash "$child" "$mode" 2>&1)
    it_expect_match "$name: listed while it ran" '^ok child: slot directories listed$' "$out"
}

before=$(sum)
listed && it_fatal "$base is already listed in main.cf"

run_child "passing run" pass
it_expect_eq "after a passing run: main.cf unchanged" "$before" "$(sum)"

run_child "failing run" fail
it_expect_eq "after a failing run: main.cf unchanged" "$before" "$(sum)"

run_child "run over its time limit" wait IT_TIME_LIMIT=10
it_expect_eq "after a run stopped by its time limit: main.cf unchanged" "$before" "$(sum)"

for sig in INT TERM; do
    start_waiting pid
    it_check "SIG$sig: listed while the run runs" 'main.cf: $(sum)' listed
    kill -"$sig" "$pid"
    wait "$pid"
    it_expect_eq "after SIG$sig: main.cf unchanged" "$before" "$(sum)"
done

start_waiting first
start_waiting second
kill -TERM "$first"
wait "$first"
it_check "overlapping runs: still listed when the first one ends" 'main.cf: $(sum)' listed
kill -TERM "$second"
wait "$second"
it_expect_eq "overlapping runs: main.cf unchanged after the last one" "$before" "$(sum)"

start_waiting pid
kill -KILL -- "-$pid"
wait "$pid" 2>/dev/null
it_check "SIGKILL: the entry is left behind" 'main.cf: $(sum)' listed
run_child "run after a killed one" pass
it_expect_eq "after the next run: main.cf as before the killed one" "$before" "$(sum)"
it_check "no state left" '$(ls -R "$base/.main-cf" 2>&1)' \
    test -d "$base/.main-cf/users" -a -z "$(ls -A "$base/.main-cf/users")" -a ! -e "$base/.main-cf/orig"

# --- a real integration script (test_harness.sh, a Postfix instance and
# two sinks, on its own IT_BASE too): run to its end, then killed with
# SIGKILL once its instance runs, then run again.
real=$work/real
harness=$IT_ROOT/tests/integration/test_harness.sh
out=$(IT_BASE=$real IT_UNDER_TIMEOUT= bash "$harness" 2>&1)
it_expect_match "test_harness.sh passes" '^integration: [1-9][0-9]* passed, 0 failed$' "$out"
it_expect_eq "after test_harness.sh: main.cf unchanged" "$before" "$(sum)"

IT_BASE=$real IT_UNDER_TIMEOUT= bash "$harness" >"$work/killed.log" 2>&1 &
pid=$!
children+=("$pid")
it_check "test_harness.sh killed mid-way: its instance was running" 'log: $(tail -n 3 "$work/killed.log")' \
    it_wait_until 60 test -s "$real/pf1/log/maillog"
kill -KILL -- "-$pid"
wait "$pid" 2>/dev/null
it_check "test_harness.sh killed mid-way: the entry is left behind" 'main.cf: $(sum)' \
    eval 'postconf -c /etc/postfix -h alternate_config_directories | grep -F -- "$real/pf1/etc" >/dev/null'
out=$(IT_BASE=$real IT_UNDER_TIMEOUT= bash "$harness" 2>&1)
it_expect_match "test_harness.sh after the killed one passes" '^integration: [1-9][0-9]* passed, 0 failed$' "$out"
it_expect_eq "after it: main.cf as before the killed run" "$before" "$(sum)"

it_summary
