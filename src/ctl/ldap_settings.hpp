// ldap_settings.hpp: the ldap_* keys of unitctl's configuration file, which
// say where the LDAP source of `unitctl sync --ldap` is and how its entries
// map to mailboxes, aliases and domains (unitctl(8), CONFIGURATION).
//
// ldap_keys() declares them for unitctl's key table (settings.hpp): each
// key's applier checks the value's syntax only (a URI's scheme, a scope, a
// number, a state rule); what needs the network or the file system (the
// password file, the filter) is checked by read_ldap(). A default is
// LdapSettings' member initialiser. Pure functions, thread-safe, no logging.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/key_table.hpp"
#include "unit/records.hpp"

namespace unit::ctl {

enum class LdapScope { Base, One, Sub };

// How a value of the unit attribute becomes a unit name.
enum class LdapUnitValue {
    Verbatim,    // the value as it is
    FirstLabel,  // the first DNS label, lowercased: unit12.my.com -> unit12
};

// Where the domains come from.
enum class LdapDomains {
    FromAddresses,  // the domains of the addresses read: the whole truth
    Keep,           // none: the primary's domains are kept as they are
};

// One rule of ldap_state_map; the first rule that matches a value wins.
struct LdapStateRule {
    enum class Match {
        Equal,   // VALUE: the value, compared without regard to ASCII case
        AnyBit,  // &N: a decimal integer with any bit of N set
        Any,     // *: any value
    };
    Match match = Match::Equal;
    std::string value;       // Equal
    std::uint64_t bits = 0;  // AnyBit
    MailboxState state = MailboxState::Active;
};

struct LdapSettings {
    std::string uri;             // ldap://, ldaps:// or ldapi:// (several, blank-separated); empty: no LDAP source
    std::string bind_dn;         // simple bind as this DN; empty: anonymous or SASL
    std::string password_file;   // the bind DN's password, the file's first line
    std::string sasl_mechanism;  // "" or "EXTERNAL"
    std::string base;
    LdapScope scope = LdapScope::Sub;
    std::string filter;                       // empty: (address_attribute=*)
    int page_size = 1000;                     // paged results (RFC 2696); 0: no paging
    std::chrono::seconds timeout{30};         // longest wait for the server, each time
    std::string address_attribute = "mail";   // the mailbox's address, one value
    std::string unit_attribute = "mailHost";  // its unit, one value
    LdapUnitValue unit_value = LdapUnitValue::Verbatim;
    std::string state_attribute;  // empty: every mailbox active
    std::vector<LdapStateRule> state_map = default_state_map();
    std::string alias_attribute = "mailAlternateAddress";  // addresses that are aliases of the entry's; empty: none
    std::string alias_prefix;                              // only values with this prefix count, without it ("smtp:")
    std::string alias_filter;                              // a second search for aliases (lists); empty: none
    std::string alias_base;                                // its base; empty: base
    std::string alias_address_attribute = "mail";
    std::string alias_target_attribute = "mailForwardingAddress";
    LdapDomains domains = LdapDomains::FromAddresses;

    // active, suspended and disabled, each meaning itself.
    static std::vector<LdapStateRule> default_state_map();
};

struct Settings;  // settings.hpp

// The ldap_* keys of unitctl's key table, which apply to Settings::ldap.
std::span<const common::Key<Settings>> ldap_keys() noexcept;

// Applies `key` (an ldap_* key of ldap_keys()) to `settings`; returns an
// explanation when the key is unknown or the value bad, empty when it was
// taken.
std::string apply_ldap_key(std::string_view key, std::string_view value, LdapSettings& settings);

// The state a value of the state attribute maps to; nullopt when no rule
// matches it.
std::optional<MailboxState> map_ldap_state(const std::vector<LdapStateRule>& rules, std::string_view value) noexcept;

// a == b, ignoring ASCII case (LDAP values such as "SMTP:" and "Active").
bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept;

}  // namespace unit::ctl
