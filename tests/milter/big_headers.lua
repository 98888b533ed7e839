-- Hostile input: a routing header among 10,000 other headers is handled
-- (deleted, the route added); 1001 distinct X-Unit-* names (more than
-- max_stripped_headers) get 550 5.7.1, never a crash. (miltertest itself crashes on a
-- header value above a few KiB: run.sh sends the 64 KiB header with its own
-- client.) Globals from run.sh: sock_mx.
local conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
assert(conn, "cannot connect to " .. sock_mx)
assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
assert(mt.rcptto(conn, "<a@example.com>") == nil)
for i = 1, 10000 do assert(mt.header(conn, "X-Filler", "header " .. i) == nil) end
assert(mt.header(conn, "X-Unit-Big", string.rep("u1,", 300)) == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "message with 10,000 headers not accepted")
assert(mt.eom_check(conn, MT_HDRDELETE, "X-Unit-Big"), "the X-Unit-Big header stays")
assert(mt.eom_check(conn, MT_HDRADD, "X-Unit-Route"), "no route")
mt.disconnect(conn)

conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
assert(conn, "cannot connect to " .. sock_mx)
assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
assert(mt.rcptto(conn, "<a@example.com>") == nil)
for i = 1, 1001 do assert(mt.header(conn, "X-Unit-N" .. i, "x") == nil) end
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "1001 distinct X-Unit-* names accepted")
assert(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1", "too many forged routing headers"), "not 550 5.7.1")
mt.disconnect(conn)

-- The filter still answers.
conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
assert(conn, "the filter is gone")
assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE)
mt.disconnect(conn)
