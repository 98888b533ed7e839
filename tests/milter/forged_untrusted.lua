-- A client outside trusted_networks: every X-Unit-* header (any case, every
-- occurrence, folded or not) is deleted and one route with hop=1 is added.
-- Globals from run.sh: sock_mx, gen.
local conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
assert(conn, "cannot connect to " .. sock_mx)
assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
assert(mt.macro(conn, SMFIC_MAIL, "i", "4F0RGED") == nil)
assert(mt.rcptto(conn, "<a@example.com>") == nil)
assert(mt.header(conn, "X-Unit-Route", "hop=5; gen=1; units=u2; by=evil.example.net") == nil)
assert(mt.header(conn, "Subject", "forged route") == nil)
assert(mt.header(conn, "x-unit-route", "hop=2;\r\n\tunits=u1") == nil)
assert(mt.header(conn, "X-UNIT-Hold", "yes") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "message not accepted")

assert(mt.eom_check(conn, MT_HDRDELETE, "X-Unit-Route"), "forged X-Unit-Route not deleted")
assert(mt.eom_check(conn, MT_HDRDELETE, "X-UNIT-Hold"), "forged X-UNIT-Hold not deleted")
assert(not mt.eom_check(conn, MT_HDRDELETE, "Subject"), "Subject deleted")
local want = "hop=1; gen=" .. gen .. "; units=u1; by=mx.test"
assert(mt.eom_check(conn, MT_HDRADD, "X-Unit-Route", want),
       "route not added as " .. want .. ", got " .. tostring(mt.getheader(conn, "X-Unit-Route", 0)))
assert(mt.getheader(conn, "X-Unit-Route", 1) == nil, "more than one route added")
assert(not mt.eom_check(conn, MT_HDRCHANGE, "X-Unit-Route", "hop=6; gen=1; units=u2; by=evil.example.net"))
mt.disconnect(conn)
