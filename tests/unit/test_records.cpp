#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "unit/records.hpp"

using namespace unit;

TEST_CASE("unit states have the schema's spellings") {
    CHECK(to_string(UnitState::Active) == "active");
    CHECK(to_string(UnitState::Draining) == "draining");
    CHECK(to_string(UnitState::Down) == "down");
    for (auto state : {UnitState::Active, UnitState::Draining, UnitState::Down}) {
        auto parsed = parse_unit_state(to_string(state));
        REQUIRE(parsed.has_value());
        CHECK(*parsed == state);
    }
}

TEST_CASE("mailbox states have the schema's spellings") {
    CHECK(to_string(MailboxState::Active) == "active");
    CHECK(to_string(MailboxState::Moving) == "moving");
    CHECK(to_string(MailboxState::Suspended) == "suspended");
    CHECK(to_string(MailboxState::Disabled) == "disabled");
    for (auto state : {MailboxState::Active, MailboxState::Moving, MailboxState::Suspended, MailboxState::Disabled}) {
        auto parsed = parse_mailbox_state(to_string(state));
        REQUIRE(parsed.has_value());
        CHECK(*parsed == state);
    }
}

TEST_CASE("other spellings are refused") {
    using namespace std::string_view_literals;
    for (std::string_view text : {""sv, "Active"sv, "ACTIVE"sv, " active"sv, "active "sv, "activ"sv, "enabled"sv,
                                  "moving"sv, "suspended"sv, "disabled"sv, "up"sv, "down\0"sv}) {
        CAPTURE(text);
        CHECK_FALSE(parse_unit_state(text).has_value());
    }
    for (std::string_view text : {""sv, "Active"sv, "Moving"sv, "moving:unit12"sv, "moving "sv, "draining"sv, "down"sv,
                                  "suspend"sv, "DISABLED"sv, "active\0"sv}) {
        CAPTURE(text);
        CHECK_FALSE(parse_mailbox_state(text).has_value());
    }
    // The two state sets only share "active".
    CHECK(parse_unit_state("active") == UnitState::Active);
    CHECK(parse_mailbox_state("active") == MailboxState::Active);
}

TEST_CASE("record defaults") {
    UnitRecord unit;
    CHECK(unit.transport == "smtp");
    CHECK(unit.state == UnitState::Active);
    MailboxRecord mailbox;
    CHECK(mailbox.state == MailboxState::Active);
    CHECK(mailbox.moving_to.empty());
}

TEST_CASE("a unit's route is transport:nexthop, verbatim") {
    UnitRecord unit{"unit12", "smtp", "[unit12.my.com]", UnitState::Active};
    CHECK(unit.route() == "smtp:[unit12.my.com]");
    unit.transport = "lmtp";
    unit.nexthop = "[10.0.0.12]:2525";
    CHECK(unit.route() == "lmtp:[10.0.0.12]:2525");
    UnitRecord defaulted;
    defaulted.nexthop = "unit3.my.com";
    CHECK(defaulted.route() == "smtp:unit3.my.com");
}
