-- A message to three recipients on two units: the one route names the units,
-- never an address (no Bcc leak), and nothing else is added or rewritten.
-- Globals from run.sh: sock_mx, gen.
local conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
assert(conn, "cannot connect to " .. sock_mx)
assert(mt.conninfo(conn, "outside.example.net", "198.51.100.7") == nil)
assert(mt.macro(conn, SMFIC_MAIL, "i", "4BCC") == nil)
for _, rcpt in ipairs({"<a@example.com>", "<B@Example.COM>", "<c@example.com>"}) do
    assert(mt.rcptto(conn, rcpt) == nil)
end
assert(mt.header(conn, "To", "a@example.com") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "message not accepted")

local route = mt.getheader(conn, "X-Unit-Route", 0)
assert(route, "no route added")
assert(route == "hop=1; gen=" .. gen .. "; units=u1,u2; by=mx.test", "unexpected route " .. route)
assert(mt.getheader(conn, "X-Unit-Route", 1) == nil, "more than one route added")
for _, leak in ipairs({"@", "example.com", "a@", "b@", "c@", "<"}) do
    assert(not string.find(route, leak, 1, true), "the route contains " .. leak)
end
assert(not mt.eom_check(conn, MT_HDRCHANGE), "a header was changed")
assert(not mt.eom_check(conn, MT_HDRINSERT), "a header was inserted")
assert(not mt.eom_check(conn, MT_RCPTADD, "<a@example.com>") and not mt.eom_check(conn, MT_RCPTDELETE,
       "<a@example.com>"), "the envelope was changed")
mt.disconnect(conn)
