-- expand_aliases with a snapshot in doubt: team@ -> a@ (active), d@
-- (disabled here). Expanded now, d@ would get no copy even if the newer
-- replica enables it, so while a replacement is pending or refused the
-- message is deferred (451 4.3.0) and left unedited; from a snapshot not in
-- doubt team@ becomes a@ alone. Globals from run.sh: sock_alias, sock_doubt.
local function message(sock)
    local conn = mt.connect("unix:" .. sock, 40, 0.25)
    assert(conn, "cannot connect to " .. sock)
    assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
    assert(mt.macro(conn, SMFIC_MAIL, "i", "D0UBT") == nil)
    assert(mt.rcptto(conn, "<team@example.com>") == nil)
    assert(mt.eom(conn) == nil)
    return conn
end

local conn = message(sock_alias)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "message not accepted")
assert(mt.eom_check(conn, MT_RCPTDELETE, "<team@example.com>"), "alias recipient not deleted")
assert(mt.eom_check(conn, MT_RCPTADD, "<a@example.com>"), "target a@ not added")
assert(not mt.eom_check(conn, MT_RCPTADD, "<d@example.com>"), "disabled target d@ added")
mt.disconnect(conn)

conn = message(sock_doubt)
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "expanded although in doubt")
assert(mt.eom_check(conn, MT_SMTPREPLY, "451", "4.3.0", "Directory temporarily unavailable"), "not 451 4.3.0")
assert(not mt.eom_check(conn, MT_RCPTDELETE, "<team@example.com>"), "alias recipient deleted")
assert(not mt.eom_check(conn, MT_RCPTADD, "<a@example.com>"), "target a@ added")
mt.disconnect(conn)
