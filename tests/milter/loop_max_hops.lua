-- The loop guard: a trusted route whose hop reaches max_hops (6) and was
-- stamped by a host with a newer generation than this one is refused with
-- 451 4.4.6 and nothing is edited; one hop less passes as hop=6; a route
-- stamped from this host's generation or an older one (this host has caught
-- up) is released below the ceiling of 2 x max_hops; a forged hop from
-- outside never refuses. Globals from run.sh: sock_mx, gen, gen_older
-- (gen - 1), gen_newer (gen + 1).
local function message(ip, hop, stamped)
    local conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
    assert(conn, "cannot connect to " .. sock_mx)
    assert(mt.conninfo(conn, "peer.example.com", ip) == nil)
    assert(mt.macro(conn, SMFIC_MAIL, "i", "4L00P") == nil)
    assert(mt.rcptto(conn, "<b@example.com>") == nil)
    assert(mt.header(conn, "X-Unit-Route", "hop=" .. hop .. "; gen=" .. (stamped or gen_newer) .. "; units=u1; by=u1.test")
           == nil)
    assert(mt.eom(conn) == nil)
    return conn
end

local conn = message("10.0.0.2", 6)
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "hop 6 not refused")
assert(mt.eom_check(conn, MT_SMTPREPLY, "451", "4.4.6", "routing loop: directory replicas disagree"),
       "not 451 4.4.6 routing loop")
assert(not mt.eom_check(conn, MT_HDRADD) and not mt.eom_check(conn, MT_HDRCHANGE), "a refused message was edited")
mt.disconnect(conn)

conn = message("10.0.0.2", 40)
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "hop 40 not refused")
mt.disconnect(conn)

conn = message("10.0.0.2", 6, gen_older)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "hop 6 from an older generation refused")
assert(mt.eom_check(conn, MT_HDRCHANGE, "X-Unit-Route", "hop=7; gen=" .. gen .. "; units=u1; by=mx.test"))
mt.disconnect(conn)

conn = message("10.0.0.2", 6, gen)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "hop 6 from this host's own generation refused")
mt.disconnect(conn)

conn = message("10.0.0.2", 12, gen_older)
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "hop 12 (2 x max_hops) not refused")
mt.disconnect(conn)

conn = message("10.0.0.2", 5)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "hop 5 refused")
assert(mt.eom_check(conn, MT_HDRCHANGE, "X-Unit-Route", "hop=6; gen=" .. gen .. "; units=u1; by=mx.test"))
mt.disconnect(conn)

conn = message("192.0.2.99", 6)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "a forged hop from outside was refused")
assert(mt.eom_check(conn, MT_HDRADD, "X-Unit-Route", "hop=1; gen=" .. gen .. "; units=u1; by=mx.test"))
mt.disconnect(conn)
