// records.cpp: the state spellings of records.hpp. They are the values the
// schema's CHECK constraints allow, so they never change.
#include "unit/records.hpp"

namespace unit {

std::string_view to_string(UnitState state) noexcept {
    switch (state) {
    case UnitState::Active: return "active";
    case UnitState::Draining: return "draining";
    case UnitState::Down: return "down";
    }
    return "invalid";  // only reachable through a cast of a bad value
}

std::string_view to_string(MailboxState state) noexcept {
    switch (state) {
    case MailboxState::Active: return "active";
    case MailboxState::Moving: return "moving";
    case MailboxState::Suspended: return "suspended";
    case MailboxState::Disabled: return "disabled";
    }
    return "invalid";  // only reachable through a cast of a bad value
}

// Exact, case-sensitive: the database holds these spellings and no others.
std::optional<UnitState> parse_unit_state(std::string_view text) noexcept {
    for (auto state : {UnitState::Active, UnitState::Draining, UnitState::Down})
        if (text == to_string(state)) return state;
    return std::nullopt;
}

std::optional<MailboxState> parse_mailbox_state(std::string_view text) noexcept {
    for (auto state : {MailboxState::Active, MailboxState::Moving, MailboxState::Suspended, MailboxState::Disabled})
        if (text == to_string(state)) return state;
    return std::nullopt;
}

}  // namespace unit
