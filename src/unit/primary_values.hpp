// primary_values.hpp (internal): the rules a value must follow to be stored
// by the Primary modules (primary*.cpp, sync.cpp): names, unit fields,
// addresses and alias keys and targets in their stored form, and mailboxes
// against the served domains and the units.
//
// Outcomes: Errc::Invalid for a malformed value, Errc::Conflict for a
// domain not served or a unit that takes no new mailbox, Errc::NotFound
// for a unit that does not exist; lookups' errors as sqlite.hpp classes
// them. Thread safety: as the connection given. Logs nothing.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "unit/address.hpp"
#include "unit/records.hpp"
#include "unit/result.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

// Units: the existing unit `name` (Errc::NotFound naming it otherwise), and
// one that may take a new mailbox (Errc::Conflict when it is draining).
// Defined in primary.cpp.
Result<UnitRecord> existing_unit(sqlite3* db, std::string_view name);
Result<void> check_receiving_unit(sqlite3* db, const std::string& name);

bool is_name(std::string_view s);
Result<void> check_unit_fields(const UnitRecord& u, std::string_view hold_transport);
Result<Address> parse_address(const std::string& text);  // a stored key: folded, no extension split
std::string_view domain_of(std::string_view address);
Result<bool> domain_served(sqlite3* db, std::string_view domain);
Result<std::string> alias_key(sqlite3* db, const std::string& text);  // address or "@domain", served
// local folded, external kept; exactly one address (check_alias_target)
Result<std::string> alias_target(sqlite3* db, const std::string& text);
// The same against a set of served domains (import's and sync's in-memory view).
using DomainSet = std::unordered_set<std::string>;
Result<std::string> alias_key(const DomainSet& served, const std::string& text);
Result<std::string> alias_target(const DomainSet& served, const std::string& text);
// A mailbox as it may be stored: its address normalised in place, its domain
// served, its unit (and the unit it moves to) in `units`, not moving to its
// own unit. Import and sync check every mailbox with it.
Result<void> check_mailbox(MailboxRecord& mailbox, const DomainSet& domains,
                           const std::unordered_set<std::string>& units);
// The same with the domains and units asked of `served` and `unit_exists`
// (import's lookups); their errors are returned as they are.
using NameCheck = std::function<Result<bool>(std::string_view)>;
Result<void> check_mailbox(MailboxRecord& mailbox, const NameCheck& served, const NameCheck& unit_exists);

}  // namespace unit::detail
