-- The directory cannot answer (no database): 451 4.3.0, never a 5xx, and
-- nothing edited; with tempfail_action = accept the message passes with the
-- forged headers still removed and a route without units.
-- Globals from run.sh: sock_nodb, sock_nodb_accept.
local function message(sock)
    local conn = mt.connect("unix:" .. sock, 40, 0.25)
    assert(conn, "cannot connect to " .. sock)
    assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
    assert(mt.rcptto(conn, "<a@example.com>") == nil)
    assert(mt.header(conn, "X-Unit-Route", "hop=1") == nil)
    assert(mt.eom(conn) == nil)
    return conn
end

local conn = message(sock_nodb)
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "not refused")
assert(mt.eom_check(conn, MT_SMTPREPLY, "451", "4.3.0", "Directory temporarily unavailable"), "not 451 4.3.0")
assert(not mt.eom_check(conn, MT_HDRADD) and not mt.eom_check(conn, MT_HDRDELETE), "a refused message was edited")
mt.disconnect(conn)

conn = message(sock_nodb_accept)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "tempfail_action = accept refused the message")
assert(mt.eom_check(conn, MT_HDRDELETE, "X-Unit-Route"), "forged route kept")
assert(mt.eom_check(conn, MT_HDRADD, "X-Unit-Route", "hop=1; gen=0; units=; by=mx.test"))
mt.disconnect(conn)
