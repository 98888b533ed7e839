-- expand_aliases: an alias recipient is replaced by its targets, a target
-- already in the envelope is not added twice, and the route lists the
-- targets' units. Globals from run.sh: sock_alias, gen.
local conn = mt.connect("unix:" .. sock_alias, 40, 0.25)
assert(conn, "cannot connect to " .. sock_alias)
assert(mt.test_action(conn, SMFIF_ADDRCPT) and mt.test_action(conn, SMFIF_DELRCPT),
       "recipient actions not negotiated")
assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
assert(mt.macro(conn, SMFIC_MAIL, "i", "4AL1AS") == nil)
assert(mt.rcptto(conn, "<sales@example.com>") == nil)
assert(mt.rcptto(conn, "<a@example.com>") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "message not accepted")
assert(mt.eom_check(conn, MT_RCPTDELETE, "<sales@example.com>"), "alias recipient not deleted")
assert(mt.eom_check(conn, MT_RCPTADD, "<c@example.com>"), "target c@ not added")
assert(not mt.eom_check(conn, MT_RCPTADD, "<a@example.com>"), "target a@ added although present")
assert(not mt.eom_check(conn, MT_RCPTDELETE, "<a@example.com>"), "a@ deleted")
assert(mt.eom_check(conn, MT_HDRADD, "X-Unit-Route", "hop=1; gen=" .. gen .. "; units=u1,u2; by=mx.test"))
mt.disconnect(conn)

-- Without expand_aliases (the mx filter) the envelope stays as it is.
conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
assert(conn, "cannot connect to " .. sock_mx)
assert(not mt.test_action(conn, SMFIF_DELRCPT), "recipient actions negotiated without expand_aliases")
assert(mt.conninfo(conn, "outside.example.net", "192.0.2.10") == nil)
assert(mt.rcptto(conn, "<sales@example.com>") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE)
assert(not mt.eom_check(conn, MT_RCPTDELETE, "<sales@example.com>"))
mt.disconnect(conn)
