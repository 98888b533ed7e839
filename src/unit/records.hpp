// records.hpp: the rows of the database as values, and the spellings of
// their states (the strings stored in the state columns).
//
// parse_*() return nullopt for a spelling the schema does not allow.
// Pure functions, thread-safe, no logging.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "unit/export.hpp"

namespace unit {

enum class UnitState { Active, Draining, Down };
enum class MailboxState { Active, Moving, Suspended, Disabled };

UNIT_EXPORT std::string_view to_string(UnitState state) noexcept;
UNIT_EXPORT std::string_view to_string(MailboxState state) noexcept;
UNIT_EXPORT std::optional<UnitState> parse_unit_state(std::string_view text) noexcept;
UNIT_EXPORT std::optional<MailboxState> parse_mailbox_state(std::string_view text) noexcept;

struct UnitRecord {
    std::string name;
    std::string transport = "smtp";  // Postfix transport (master.cf name)
    std::string nexthop;             // Postfix next-hop, verbatim
    UnitState state = UnitState::Active;

    // The transportmx answer: "transport:nexthop".
    std::string route() const { return transport + ':' + nexthop; }
};

struct MailboxRecord {
    std::string address;
    std::string unit;
    MailboxState state = MailboxState::Active;
    std::string moving_to;  // non-empty exactly when state == Moving
};

struct AliasRecord {
    std::string address;  // "local@domain", or "@domain" for the catch-all
    std::string target;
};

}  // namespace unit
