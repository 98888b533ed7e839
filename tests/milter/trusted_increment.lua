-- A client inside trusted_networks (IPv4 and IPv6): its route is kept and
-- incremented in place; other X-Unit-* headers are kept; exactly one route
-- leaves. Globals from run.sh: sock_mx, gen.
local function message(ip, headers)
    local conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
    assert(conn, "cannot connect to " .. sock_mx)
    assert(mt.conninfo(conn, "peer.example.com", ip) == nil)
    assert(mt.macro(conn, SMFIC_MAIL, "i", "4TRUST") == nil)
    assert(mt.rcptto(conn, "<c@example.com>") == nil)
    for _, h in ipairs(headers) do assert(mt.header(conn, h[1], h[2]) == nil) end
    assert(mt.eom(conn) == nil)
    assert(mt.getreply(conn) == SMFIR_CONTINUE, "message from " .. ip .. " not accepted")
    return conn
end

local want = "hop=3; gen=" .. gen .. "; units=u2; by=mx.test"

-- One route from the other MX: changed in place to hop=3.
local conn = message("10.1.2.3", {{"X-Unit-Route", "hop=2; gen=1; units=u2; by=mx2.test"},
                                  {"X-Unit-Note", "kept"}})
assert(mt.eom_check(conn, MT_HDRCHANGE, "X-Unit-Route", want), "route not incremented to " .. want)
assert(not mt.eom_check(conn, MT_HDRDELETE), "a header was deleted")
assert(not mt.eom_check(conn, MT_HDRADD, "X-Unit-Route"), "a second route was added")
mt.disconnect(conn)

-- Over IPv6, two routes: the highest hop counts, the second one goes.
conn = message("2001:db8::25", {{"X-Unit-Route", "hop=1"}, {"X-Unit-Route", "hop=2; units=u1"}})
assert(mt.eom_check(conn, MT_HDRCHANGE, "X-Unit-Route", want), "IPv6 peer: route not incremented")
assert(mt.eom_check(conn, MT_HDRDELETE, "X-Unit-Route"), "IPv6 peer: the extra route stays")
mt.disconnect(conn)

-- A trusted client without a route, or with a garbage hop: hop=1.
conn = message("10.9.9.9", {{"Subject", "no route"}})
assert(mt.eom_check(conn, MT_HDRADD, "X-Unit-Route", "hop=1; gen=" .. gen .. "; units=u2; by=mx.test"))
mt.disconnect(conn)
conn = message("10.9.9.9", {{"X-Unit-Route", "hop=lots"}})
assert(mt.eom_check(conn, MT_HDRCHANGE, "X-Unit-Route", "hop=1; gen=" .. gen .. "; units=u2; by=mx.test"))
mt.disconnect(conn)
