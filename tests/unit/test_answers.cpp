// answers.hpp's pure functions where a directory cannot take them: made-up
// resolutions (broken data, limits, faults with any reason) and the laws
// every answer keeps. What each mailbox, alias and directory state is
// answered, map by map and role by role, is in the golden transcripts
// (tests/golden), over real directories.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/netstring.hpp"
#include "policyd/answers.hpp"
#include "test_support.hpp"
#include "unit/primary.hpp"

using namespace std::string_literals;
using namespace std::string_view_literals;
using namespace unit;
using namespace unit::policyd;

namespace {

constexpr auto all_outcomes = {Outcome::Mailbox, Outcome::Alias,    Outcome::Unknown,  Outcome::Unconfirmed,
                               Outcome::Foreign, Outcome::Disabled, Outcome::Tempfail, Outcome::Malformed};
constexpr auto all_maps = {MapName::Domain, MapName::Recipient, MapName::TransportMx, MapName::TransportUnit,
                           MapName::Alias};
constexpr auto unit_states = {UnitState::Active, UnitState::Draining, UnitState::Down};

UnitRecord make_unit(const std::string& name, UnitState state = UnitState::Active) {
    UnitRecord u;
    u.name = name;
    u.transport = name == "unit7" ? "lmtp" : "smtp";
    u.nexthop = "[" + name + ".my.com]:2525";
    u.state = state;
    return u;
}

Destination make_destination(const std::string& address, MailboxState mstate, UnitState ustate,
                             const std::string& unit_name = "unit12") {
    Destination d;
    d.mailbox.address = address;
    d.mailbox.unit = unit_name;
    d.mailbox.state = mstate;
    d.unit = make_unit(unit_name, ustate);
    if (mstate == MailboxState::Moving) {
        d.mailbox.moving_to = "unit99";
        d.moving_to = make_unit("unit99");
    }
    return d;
}

Resolution make(Outcome outcome, std::string address = "user@my.com") {
    Resolution r;
    r.outcome = outcome;
    r.input = address;
    r.address = std::move(address);
    r.generation = 42;
    if (outcome == Outcome::Tempfail) r.reason = "database is locked";
    if (outcome == Outcome::Unconfirmed) r.reason = "unknown in a replica 90000 s old, over reject_max_age 86400 s";
    if (outcome == Outcome::Malformed) r.reason = "no domain";
    return r;
}

Resolution mailbox(MailboxState mstate = MailboxState::Active, UnitState ustate = UnitState::Active,
                   const std::string& unit_name = "unit12", const std::string& address = "user@my.com") {
    Resolution r = make(Outcome::Mailbox, address);
    r.destination = make_destination(address, mstate, ustate, unit_name);
    return r;
}

Resolution disabled(const std::string& unit_name = "unit12") {
    Resolution r = make(Outcome::Disabled);
    r.destination = make_destination("user@my.com", MailboxState::Disabled, UnitState::Active, unit_name);
    return r;
}

AliasTarget target_mailbox(const std::string& address, MailboxState mstate = MailboxState::Active,
                           UnitState ustate = UnitState::Active, const std::string& unit_name = "unit12") {
    return AliasTarget{AliasTarget::Kind::Mailbox, address, make_destination(address, mstate, ustate, unit_name)};
}

AliasTarget target_external(const std::string& address) {
    return AliasTarget{AliasTarget::Kind::External, address, std::nullopt};
}

// user@my.com -> user@my.com (its own mailbox, as in virtual(5)), eve@other.org
Resolution self_alias(MailboxState mstate = MailboxState::Active, UnitState ustate = UnitState::Active,
                      const std::string& unit_name = "unit12") {
    Resolution r = make(Outcome::Alias, "user@my.com");
    r.targets = {target_external("eve@other.org"), target_mailbox("user@my.com", mstate, ustate, unit_name)};
    return r;
}

AnswerSettings mx_settings() { return AnswerSettings{}; }

AnswerSettings unit_settings(const std::string& unit_name = "unit12") {
    AnswerSettings s;
    s.unit = unit_name;
    s.local_transport = "mymda";
    s.mx_relay = "smtp:[mx.my.com]";
    return s;
}

AnswerSettings defer(AnswerSettings s) {
    s.hold_mode = HoldMode::Defer;
    return s;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_5xx(std::string_view action) { return !action.empty() && action[0] == '5'; }

const std::string not_found = "NOTFOUND ";

}  // namespace

TEST_CASE("parse_map_name takes exactly the five names") {
    CHECK(parse_map_name("domain") == MapName::Domain);
    CHECK(parse_map_name("recipient") == MapName::Recipient);
    CHECK(parse_map_name("transportmx") == MapName::TransportMx);
    CHECK(parse_map_name("transportunit") == MapName::TransportUnit);
    CHECK(parse_map_name("alias") == MapName::Alias);
    for (auto name : {""sv, "Domain"sv, "RECIPIENT"sv, "transport"sv, "transportmx "sv, " alias"sv, "aliases"sv,
                      "smtpcheck"sv, "domain\0"sv, "recipients"sv, "transport_mx"sv}) {
        CAPTURE(name);
        CHECK_FALSE(parse_map_name(name).has_value());
    }
}

TEST_CASE("domain_part is the text after the last '@'") {
    CHECK(domain_part("user@my.com") == "my.com");
    CHECK(domain_part("\"a@b\"@My.Com.") == "My.Com.");
    CHECK(domain_part("user@") == "");
    CHECK(domain_part("no-domain") == "");
    CHECK(domain_part("") == "");
}

TEST_CASE("the held route names a socket under /dev/null, never the unit's next-hop") {
    CHECK(held_nexthop("unit12") == "unix:/dev/null/unitpolicy-held/unit12");
    CHECK(held_nexthop("u-1_b.c") == "unix:/dev/null/unitpolicy-held/u-1_b.c");
    // A unit name that is bad data cannot make the route reach elsewhere.
    CHECK(held_nexthop("../../x:y,z w\n") == "unix:/dev/null/unitpolicy-held/.._.._x_y_z_w_");
    Resolution moving = mailbox(MailboxState::Moving);
    moving.destination->unit.nexthop = "[127.0.0.1]:25";
    const auto reply = map_reply(MapName::TransportMx, moving, AnswerSettings{}).text;
    CHECK(reply == "OK unithold:unix:/dev/null/unitpolicy-held/unit12");
    CHECK(reply.find("127.0.0.1") == std::string::npos);
}

TEST_CASE("transportmx map: an alias whose own address is an external target is not routed") {
    Resolution r = self_alias();
    r.targets[1] = target_external("user@my.com");
    CHECK(map_reply(MapName::TransportMx, r, mx_settings()).text == not_found);
}

TEST_CASE("transportunit map without an mx relay never answers a bare OK") {
    AnswerSettings s = unit_settings("unit12");
    s.mx_relay.clear();
    CHECK(map_reply(MapName::TransportUnit, mailbox(MailboxState::Active, UnitState::Active, "unit7"), s).text ==
          "PERM transportunit needs --mx-relay");
    CHECK(map_reply(MapName::TransportUnit, mailbox(MailboxState::Active, UnitState::Active, "unit12"), s).text ==
          "OK mymda");
    CHECK(map_reply(MapName::TransportUnit, mailbox(MailboxState::Moving, UnitState::Active, "unit7"), s).text ==
          "OK unithold:unix:/dev/null/unitpolicy-held/unit7");
}

TEST_CASE("domain map: a fault's reason is cleaned, and never missing") {
    DomainResolution d;
    d.outcome = DomainOutcome::Tempfail;
    d.reason = "a\r\nb\0c"s;
    CHECK(domain_reply(d).text == "TEMP a  b c");
    d.reason.clear();
    CHECK(starts_with(domain_reply(d).text, "TEMP "));
    CHECK(domain_reply(d).text.size() > 5);

    // map_reply(Domain).text takes no Resolution; a fault there still stays TEMP.
    CHECK(map_reply(MapName::Domain, make(Outcome::Tempfail), mx_settings()).text == "TEMP database is locked");
    CHECK(starts_with(map_reply(MapName::Domain, mailbox(), mx_settings()).text, "PERM "));
    const auto unconfirmed = make(Outcome::Unconfirmed);
    CHECK(map_reply(MapName::Domain, unconfirmed, mx_settings()).text == "TEMP " + unconfirmed.reason);
}

TEST_CASE("a fault never becomes a 5xx or a NOTFOUND") {
    std::vector<AnswerSettings> settings = {mx_settings(), unit_settings(), defer(mx_settings()),
                                            defer(unit_settings())};
    for (auto outcome : {Outcome::Tempfail, Outcome::Unconfirmed}) {
        for (std::string reason : {"database is locked"s, ""s, "x\r\n550 5.1.1 fake"s, std::string(1000, 'r')}) {
            Resolution r = make(outcome);
            r.reason = reason;
            CAPTURE(to_string(outcome));
            CAPTURE(reason);
            for (const auto& s : settings) {
                const auto action = policy_action(r, s).text;
                CHECK_FALSE(is_5xx(action));
                CHECK(action[0] == '4');
                CHECK(action.find_first_of("\r\n"s) == std::string::npos);
                for (auto map : all_maps) {
                    const auto reply = map_reply(map, r, s).text;
                    CHECK_FALSE(starts_with(reply, "NOTFOUND"));
                    CHECK_FALSE(starts_with(reply, "OK"));
                    if (map == MapName::TransportUnit && s.unit.empty()) continue;
                    CHECK(starts_with(reply, "TEMP "));
                    CHECK(reply.size() > 5);  // a reason, even when none was given
                    CHECK(reply.find_first_of("\r\n\0"s) == std::string::npos);
                }
            }
        }
    }
    // And every other outcome keeps its 5xx only where the table says so.
    for (auto outcome : all_outcomes) {
        Resolution r = outcome == Outcome::Mailbox    ? mailbox()
                       : outcome == Outcome::Disabled ? disabled()
                                                      : make(outcome);
        const bool may_reject = outcome == Outcome::Unknown || outcome == Outcome::Disabled;
        CAPTURE(to_string(outcome));
        CHECK(is_5xx(policy_action(r, mx_settings()).text) == may_reject);
    }
}

TEST_CASE("reasons are sanitised and bounded") {
    Resolution r = make(Outcome::Tempfail);
    r.reason =
        "line\rone\nline\0two\ttab\x7f"
        "del\x1b[0m"s;
    CHECK(map_reply(MapName::Recipient, r, mx_settings()).text == "TEMP line one line two tab del [0m");

    // Truncated to 200 bytes.
    r.reason = std::string(500, 'x');
    auto reply = map_reply(MapName::TransportMx, r, mx_settings()).text;
    CHECK(reply == "TEMP " + std::string(200, 'x'));
    r.reason = std::string(200, 'y');
    CHECK(map_reply(MapName::TransportMx, r, mx_settings()).text == "TEMP " + std::string(200, 'y'));
    r.reason = std::string(201, 'y');
    CHECK(map_reply(MapName::TransportMx, r, mx_settings()).text == "TEMP " + std::string(200, 'y'));

    // Never cut inside a UTF-8 character; the rest of the bytes stay.
    r.reason = std::string(199, 'u') + "\xc3\xa9" + "tail";  // 'é' straddles byte 200
    CHECK(map_reply(MapName::Recipient, r, mx_settings()).text == "TEMP " + std::string(199, 'u'));
    r.reason = std::string(198, 'u') + "\xc3\xa9" + "tail";  // 'é' ends at byte 200
    CHECK(map_reply(MapName::Recipient, r, mx_settings()).text == "TEMP " + std::string(198, 'u') + "\xc3\xa9");

    // Unconfirmed reasons too.
    r = make(Outcome::Unconfirmed);
    r.reason = "stale\nreplica";
    CHECK(map_reply(MapName::Recipient, r, mx_settings()).text == "TEMP stale replica");
}

TEST_CASE("each answer's kind is its text's: a tempfail is never a 5xx, an uncertain outcome never final") {
    // Over every outcome, mailbox and unit state, doubt and map, in every
    // role: the kind a caller counts and logs says what the text says, and
    // the first law holds of the kind itself.
    AnswerSettings four_unknown = mx_settings();
    four_unknown.texts.unknown = "450 4.1.1 Try again";  // a 4xx refusal defers
    const std::vector<AnswerSettings> settings = {mx_settings(), unit_settings(), defer(mx_settings()),
                                                  defer(unit_settings()), four_unknown};
    std::vector<Resolution> cases;
    for (auto outcome : all_outcomes)
        for (bool doubt : {false, true}) {
            Resolution r = make(outcome);
            if (doubt) r.doubt = "a newer replica was refused";
            cases.push_back(r);
        }
    for (auto ms : {MailboxState::Active, MailboxState::Moving, MailboxState::Suspended, MailboxState::Disabled})
        for (auto us : unit_states) cases.push_back(mailbox(ms, us));
    for (const auto& r : cases) {
        const bool uncertain = r.outcome == Outcome::Tempfail || r.outcome == Outcome::Unconfirmed;
        CAPTURE(to_string(r.outcome));
        for (const auto& s : settings) {
            const PolicyAction action = policy_action(r, s);
            CHECK(action.kind != VerdictKind::NotRcpt);
            CHECK((action.kind == VerdictKind::Dunno) == (action.text == "DUNNO"));
            CHECK((action.kind == VerdictKind::Reject) == is_5xx(action.text));
            if (action.kind == VerdictKind::Tempfail) CHECK(action.text == s.texts.tempfail);
            if (uncertain) CHECK((action.kind == VerdictKind::Tempfail || action.kind == VerdictKind::Defer));
            for (auto map : all_maps) {
                const MapReply reply = map_reply(map, r, s);
                const char* word[] = {"OK ", "NOTFOUND ", "TEMP ", "PERM "};
                CHECK(starts_with(reply.text, word[static_cast<int>(reply.kind)]));
                if (uncertain && !(map == MapName::TransportUnit && s.unit.empty()))
                    CHECK(reply.kind == ReplyKind::Temp);
            }
        }
    }
}

TEST_CASE("replies are capped at the socketmap limit, never truncated") {
    const std::size_t cap = common::max_socketmap_reply;
    REQUIRE(cap == 100'000);
    const auto s = mx_settings();

    // An alias list exactly at the limit passes; one byte more is TEMP.
    Resolution r = make(Outcome::Alias, "big@my.com");
    std::string expected = "OK ";
    for (int i = 0; expected.size() + 20 < cap; ++i) {
        std::string a = "member" + std::to_string(100000 + i) + "@my.com";  // 19 bytes
        if (expected.size() > 3) expected += ',';
        expected += a;
        r.targets.push_back(target_external(a));
    }
    // Pad the last address so the reply is exactly cap bytes.
    const std::size_t pad = cap - expected.size();
    r.targets.back().address.insert(0, pad, 'p');
    expected.insert(expected.size() - r.targets.back().address.size() + pad, pad, 'p');
    REQUIRE(expected.size() == cap);
    auto reply = map_reply(MapName::Alias, r, s).text;
    CHECK(reply.size() == cap);
    CHECK(reply == expected);
    r.targets.back().address.insert(0, 1, 'p');
    CHECK(map_reply(MapName::Alias, r, s).text == "TEMP reply too long");
    r.targets.push_back(target_external("one-more@my.com"));
    CHECK(map_reply(MapName::Alias, r, s).text == "TEMP reply too long");
    // Far too many targets.
    for (int i = 0; i < 10000; ++i) r.targets.push_back(target_external("x" + std::to_string(i) + "@my.com"));
    CHECK(map_reply(MapName::Alias, r, s).text == "TEMP reply too long");

    // The recipient map: "OK " + address.
    Resolution big = mailbox(MailboxState::Active, UnitState::Active, "unit12", std::string(cap - 3, 'a'));
    CHECK(map_reply(MapName::Recipient, big, s).text.size() == cap);
    big = mailbox(MailboxState::Active, UnitState::Active, "unit12", std::string(cap - 2, 'a'));
    CHECK(map_reply(MapName::Recipient, big, s).text == "TEMP reply too long");

    // The transport maps: a route longer than the limit.
    Resolution route = mailbox();
    route.destination->unit.nexthop = std::string(cap, 'n');
    CHECK(map_reply(MapName::TransportMx, route, s).text == "TEMP reply too long");
    route.destination->mailbox.state = MailboxState::Moving;  // the held route names the unit
    route.destination->unit.name = std::string(cap, 'u');
    CHECK(map_reply(MapName::TransportMx, route, s).text == "TEMP reply too long");
    CHECK(map_reply(MapName::TransportUnit, route, unit_settings("unit7")).text == "TEMP reply too long");
    route.destination->unit.nexthop = std::string(cap - 3 - 5, 'n');  // "OK smtp:" + nexthop == cap
    route.destination->mailbox.state = MailboxState::Active;
    CHECK(map_reply(MapName::TransportMx, route, s).text.size() == cap);

    // The domain map.
    DomainResolution d;
    d.outcome = DomainOutcome::Served;
    d.domain = std::string(cap - 3, 'd');
    CHECK(domain_reply(d).text.size() == cap);
    d.domain += 'd';
    CHECK(domain_reply(d).text == "TEMP reply too long");

    // A huge reason is bounded, not refused.
    Resolution t = make(Outcome::Tempfail);
    t.reason = std::string(cap * 2, 'r');
    CHECK(map_reply(MapName::Recipient, t, s).text == "TEMP " + std::string(200, 'r'));

    // Every reply of every map stays within the limit.
    for (auto map : all_maps)
        for (const auto& res : {r, big, route, t}) CHECK(map_reply(map, res, unit_settings()).text.size() <= cap);
}

namespace {

Resolution alias_of(std::vector<AliasTarget> targets) {
    Resolution r = make(Outcome::Alias, "list@my.com");
    r.targets = std::move(targets);
    return r;
}

}  // namespace

TEST_CASE("an alias without any target (broken data) is a temporary failure, never a 5xx") {
    for (const auto& s : {mx_settings(), unit_settings(), defer(mx_settings())})
        CHECK(policy_action(alias_of({}), s).text == "451 4.3.0 Directory temporarily unavailable");
    CHECK(map_reply(MapName::Recipient, alias_of({}), mx_settings()).text == "TEMP alias without targets");
}

TEST_CASE("a bad-data tempfail never sends its reason, which may quote a bad value") {
    Resolution r = make(Outcome::Tempfail);
    r.cause = TempfailCause::BadData;
    r.reason = "alias list@my.com: bad alias target \"a@x,b@y\": not exactly one address";
    for (auto map : all_maps) {
        if (map == MapName::Domain) continue;
        const auto reply = map_reply(map, r, unit_settings()).text;
        CAPTURE(reply);
        CHECK(starts_with(reply, "TEMP "));
        CHECK(reply.find("a@x,b@y") == std::string::npos);
    }
    CHECK(policy_action(r, mx_settings()).text == "451 4.3.0 Directory temporarily unavailable");
    r.cause = TempfailCause::AliasLimit;
    r.reason = "alias expansion visits more than max_alias_targets 1000 rows at big@my.com";
    CHECK(map_reply(MapName::Alias, r, mx_settings()).text == "TEMP " + r.reason);
}

// The reader half of "only well-formed values leave the database": a replica
// holding a bad value, resolved and answered as the daemon does.
TEST_CASE("a bad value in the replica is a TEMP and a 4xx, and never reaches a reply") {
    struct Case {
        std::string sql, value, address;
    };
    const std::vector<Case> cases = {
        {"UPDATE units SET nexthop = 'a' || char(10) || 'b' WHERE name = 'u1'", "a\nb", "john.doe@example.com"},
        {"UPDATE units SET nexthop = 'a' || char(0) || 'b' WHERE name = 'u1'", "a\0b"s, "john.doe@example.com"},
        {"UPDATE units SET nexthop = 'a b' WHERE name = 'u1'", "a b", "john.doe@example.com"},
        {"UPDATE units SET nexthop = 'a,b' WHERE name = 'u1'", "a,b", "john.doe@example.com"},
        {"UPDATE units SET transport = 'error' WHERE name = 'u1'", "error:", "john.doe@example.com"},
        {"UPDATE units SET transport = 'discard' WHERE name = 'u1'", "discard:", "john.doe@example.com"},
        {"UPDATE units SET transport = 'unithold' WHERE name = 'u1'", "unithold:[u1", "john.doe@example.com"},
        {"UPDATE units SET transport = 'error' WHERE name = 'u1'", "error:", "user@example.com"},
        {"INSERT INTO aliases VALUES ('list@example.com', 'a@x,b@y')", "a@x,b@y", "list@example.com"},
    };
    const std::vector<std::pair<std::string, AnswerSettings>> roles = {{"mx", mx_settings()},
                                                                       {"unit", unit_settings("u3")}};
    for (const auto& c : cases) {
        CAPTURE(c.sql);
        CAPTURE(c.address);
        test::SampleReplica sample;
        test::raw_sql(sample.replica, c.sql);
        sample.reopen();
        auto r = resolve(*sample.directory, ResolverOptions{}, c.address);
        REQUIRE(r.outcome == Outcome::Tempfail);
        CHECK(r.cause == TempfailCause::BadData);
        for (const auto& [role, s] : roles) {
            CAPTURE(role);
            const auto action = policy_action(r, s).text;
            CHECK(action[0] == '4');
            CHECK(action.find(c.value) == std::string::npos);
            for (auto map : {MapName::Recipient, MapName::TransportMx, MapName::TransportUnit, MapName::Alias}) {
                if (map == MapName::TransportUnit && s.unit.empty()) continue;
                const auto reply = map_reply(map, r, s).text;
                CAPTURE(reply);
                CHECK(starts_with(reply, "TEMP "));
                CHECK(reply.find(c.value) == std::string::npos);
            }
        }
    }
}
