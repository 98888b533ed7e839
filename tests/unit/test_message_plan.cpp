// unitmilter's end-of-message decision over the sample directory: the
// refusals in their order, the route, the header edits and the expansions.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "milter/message_plan.hpp"
#include "test_support.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::milter;
using namespace unit::test;

namespace {

struct World : SampleReplica {
    Settings settings;
    HeaderScan headers{"X-Unit-", 10};
    std::vector<std::string> recipients;
    bool trusted = false;

    World() { settings.hostname = "mx.test"; }
    // Makes the message one from a trusted peer to john.doe@, with a route
    // of that hop stamped `generation_ahead` generations after this replica's.
    World& from_peer_with_route(int hop, std::int64_t generation_ahead) {
        trusted = true;
        recipients = {"<john.doe@example.com>"};
        headers.add("X-Unit-Route",
                    fmt::format("hop={}; gen={}; units=u1; by=unit1", hop, generation() + generation_ahead));
        return *this;
    }
    std::int64_t generation() { return primary.generation().value(); }
    MessagePlan plan() {
        return plan_message(settings, *directory, {trusted, "peer[192.0.2.10]", headers, recipients, 0});
    }
};

bool noted(const MessagePlan& plan, std::string_view text) {
    return std::any_of(plan.notes.begin(), plan.notes.end(),
                       [&](const MessageNote& n) { return n.text.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("a message to a mailbox from outside gets one route with hop 1 and its unit") {
    World w;
    w.recipients = {"<john.doe@example.com>"};
    auto plan = w.plan();
    CHECK(!plan.refusal);
    CHECK(plan.route == fmt::format("hop=1; gen={}; units=u1; by=mx.test", w.generation()));
    REQUIRE(plan.header_edits.size() == 1);
    CHECK(plan.header_edits[0] == HeaderEdit{HeaderEdit::Kind::Add, "X-Unit-Route", 0, plan.route});
    CHECK(plan.expansions.empty());
    CHECK(plan.notes.empty());
}

TEST_CASE("forged routing headers from outside are deleted, highest index first, before the route is added") {
    World w;
    w.recipients = {"<bob@example.com>", "<dave@example.net>"};
    w.headers.add("X-Unit-Route", "hop=5; units=evil");
    w.headers.add("X-Unit-Route", "hop=2");
    auto plan = w.plan();
    CHECK(!plan.refusal);
    CHECK(plan.route.find("hop=1;") == 0);
    CHECK(plan.route.find("units=u2,u3;") != std::string::npos);
    REQUIRE(plan.header_edits.size() == 3);
    CHECK(plan.header_edits[0] == HeaderEdit{HeaderEdit::Kind::Delete, "X-Unit-Route", 2, ""});
    CHECK(plan.header_edits[1] == HeaderEdit{HeaderEdit::Kind::Delete, "X-Unit-Route", 1, ""});
    CHECK(plan.header_edits[2].kind == HeaderEdit::Kind::Add);
}

TEST_CASE("a header flood from outside is refused with 550 5.7.1 without asking the directory") {
    World w;
    w.recipients = {"<john.doe@example.com>"};
    for (int i = 0; i < 11; ++i) w.headers.add("X-Unit-Forged", "x");
    std::remove(w.replica.c_str());  // a lookup now would be a temporary failure
    w.reopen();
    auto plan = w.plan();
    REQUIRE(plan.refusal);
    CHECK(*plan.refusal == forged_headers_reply());
    CHECK(!plan.directory_tempfail);
    CHECK(noted(plan, "11 X-Unit-* headers from untrusted client=peer[192.0.2.10]"));
}

TEST_CASE("a directory that cannot answer refuses with 451 4.3.0, or with accept leaves the recipient out") {
    World w;
    w.recipients = {"<john.doe@example.com>"};
    std::remove(w.replica.c_str());
    w.reopen();
    auto refused = w.plan();
    REQUIRE(refused.refusal);
    CHECK(*refused.refusal == directory_tempfail_reply());
    CHECK(refused.directory_tempfail);
    CHECK(noted(refused, "directory: to=<john.doe@example.com>"));

    w.settings.tempfail_action = TempfailAction::Accept;
    auto accepted = w.plan();
    CHECK(!accepted.refusal);
    CHECK(accepted.directory_tempfail);
    CHECK(noted(accepted, "accepting, route incomplete"));
    CHECK(accepted.route == "hop=1; gen=0; units=; by=mx.test");
}

TEST_CASE("a trusted peer's hop is counted, and a loop at max_hops is refused with 451 4.4.6") {
    World w;
    auto counted = w.from_peer_with_route(2, 0).plan();
    CHECK(!counted.refusal);
    CHECK(counted.route.find("hop=3;") == 0);
    REQUIRE(counted.header_edits.size() == 1);
    CHECK(counted.header_edits[0].kind == HeaderEdit::Kind::Change);

    // Stamped by a host with a newer directory than this one: not caught up.
    World looping;
    auto refused = looping.from_peer_with_route(6, 5).plan();
    REQUIRE(refused.refusal);
    CHECK(*refused.refusal == loop_reply());
    CHECK(noted(refused, "reject: routing loop: hop 6 from client=peer[192.0.2.10] reaches max_hops 6"));
}

TEST_CASE("a loop is released once this host's directory has caught up with the route's") {
    World w;
    auto plan = w.from_peer_with_route(6, 0).plan();
    CHECK(!plan.refusal);
    CHECK(plan.loop_released);
    CHECK(noted(plan, "routing loop over at hop 6"));
}

TEST_CASE("with expand_aliases an alias becomes its targets, once each, and keeps its own copy") {
    World w;
    w.settings.expand_aliases = true;
    w.recipients = {"<sales@example.com>", "<user@example.com>", "<bob@example.com>"};
    auto plan = w.plan();
    CHECK(!plan.refusal);
    REQUIRE(plan.expansions.size() == 2);
    // sales -> user (an alias that keeps its own copy, and copy@elsewhere.org),
    // bob, partner: user and bob are in the envelope already.
    CHECK(plan.expansions[0].raw == "<sales@example.com>");
    CHECK(!plan.expansions[0].keep);
    CHECK(plan.expansions[0].targets == std::vector<std::string>{"partner@other.org", "copy@elsewhere.org"});
    // user keeps its own copy; copy@elsewhere.org was added for sales already.
    CHECK(plan.expansions[1].raw == "<user@example.com>");
    CHECK(plan.expansions[1].keep);
    CHECK(plan.expansions[1].targets.empty());
}

TEST_CASE("role unit notes each recipient that leaves this unit") {
    World w;
    w.settings.role = Role::Unit;
    w.settings.unit = "u1";
    w.recipients = {"<john.doe@example.com>", "<dave@example.net>"};
    auto plan = w.plan();
    CHECK(!plan.refusal);
    CHECK(noted(plan, "not on unit u1: to=<dave@example.net>: unit u2: back to the MX pool"));
    CHECK(!noted(plan, "john.doe"));
}

TEST_CASE("recipients are logged as Postfix logs them") {
    CHECK(bare_address(" <a@example.com>") == "a@example.com");
    CHECK(bare_address("a@example.com") == "a@example.com");
    CHECK(to_field("<a@example.com>") == "to=<a@example.com>");
    CHECK(to_field("<b@example.com>", "orig_to") == "orig_to=<b@example.com>");
}
