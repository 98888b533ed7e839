-- A flood of routing headers (issue 13): every occurrence counts, not the
-- distinct names. From an untrusted client, up to max_stripped_headers (10,
-- the default) are deleted; one more, or 20,000, reject the message with
-- 550 5.7.1 and nothing is edited or forwarded. A trusted client's 20,000
-- route headers are not deleted one by one: the first is changed, the
-- others stay. Globals from run.sh: sock_mx, gen.
local function message(ip, queue_id, headers)
    local conn = mt.connect("unix:" .. sock_mx, 40, 0.25)
    assert(conn, "cannot connect to " .. sock_mx)
    assert(mt.conninfo(conn, "peer.example.net", ip) == nil)
    assert(mt.macro(conn, SMFIC_MAIL, "i", queue_id) == nil)
    assert(mt.rcptto(conn, "<a@example.com>") == nil)
    assert(mt.header(conn, "Subject", "flood") == nil)
    headers(conn)
    assert(mt.eom(conn) == nil)
    return conn
end

local function repeated(name, count)
    return function(conn)
        for i = 1, count do assert(mt.header(conn, name, "hop=" .. (i % 5) .. "; by=forger.example.net") == nil) end
    end
end

-- Ten, in two names and mixed case: stripped, accepted.
local conn = message("192.0.2.10", "4FL00D1", function(c)
    repeated("X-Unit-Route", 5)(c)
    repeated("x-unit-NOTE", 5)(c)
end)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "ten forged headers not accepted")
assert(mt.eom_check(conn, MT_HDRDELETE, "X-Unit-Route"), "forged route not deleted")
assert(mt.eom_check(conn, MT_HDRDELETE, "x-unit-NOTE"), "forged note not deleted")
assert(mt.eom_check(conn, MT_HDRADD, "X-Unit-Route", "hop=1; gen=" .. gen .. "; units=u1; by=mx.test"), "no hop=1 route")
mt.disconnect(conn)

-- Eleven of one name: rejected with a 5xx, nothing edited.
for _, count in ipairs({11, 20000}) do
    conn = message("192.0.2.10", "4FL00D2", repeated("X-Unit-Route", count))
    assert(mt.getreply(conn) == SMFIR_REPLYCODE, count .. " forged headers not rejected")
    assert(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1", "too many forged routing headers"),
           count .. " forged headers: not 550 5.7.1")
    assert(not mt.eom_check(conn, MT_HDRDELETE), count .. " forged headers: a header was deleted")
    assert(not mt.eom_check(conn, MT_HDRADD), count .. " forged headers: a header was added")
    mt.disconnect(conn)
end

-- A trusted peer's 20,000 route headers (hops 0 to 4): the first is changed
-- to the highest hop plus one, no header is deleted, the message accepted.
conn = message("10.1.2.3", "4FL00D3", repeated("X-Unit-Route", 20000))
assert(mt.getreply(conn) == SMFIR_CONTINUE, "trusted flood not accepted")
assert(mt.eom_check(conn, MT_HDRCHANGE, "X-Unit-Route", "hop=5; gen=" .. gen .. "; units=u1; by=mx.test"),
       "trusted flood: first route not changed to hop=5")
assert(not mt.eom_check(conn, MT_HDRDELETE), "trusted flood: route headers deleted one by one")
mt.disconnect(conn)

-- The filter still answers.
conn = message("192.0.2.10", "4FL00D4", function() end)
assert(mt.getreply(conn) == SMFIR_CONTINUE, "the filter no longer answers")
mt.disconnect(conn)
