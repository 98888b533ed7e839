#include "ctl/ldap_settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include "common/config_file.hpp"
#include "ctl/settings.hpp"

namespace unit::ctl {

namespace {

std::string_view trim(std::string_view text) noexcept {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

template <class T>
std::optional<T> parse_number(std::string_view text) noexcept {
    T value{};
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Every blank-separated URI has a scheme libldap connects with.
std::string check_uri(std::string_view value) {
    if (trim(value).empty()) return "empty URI";
    std::size_t pos = 0;
    while (pos < value.size()) {
        const auto start = value.find_first_not_of(" \t", pos);
        if (start == std::string_view::npos) break;
        const auto end = std::min(value.find_first_of(" \t", start), value.size());
        const auto uri = value.substr(start, end - start);
        constexpr std::array<std::string_view, 3> schemes{"ldap://", "ldaps://", "ldapi://"};
        const bool known = std::any_of(schemes.begin(), schemes.end(), [&](std::string_view scheme) {
            return uri.size() >= scheme.size() && equal_ignoring_case(uri.substr(0, scheme.size()), scheme);
        });
        if (!known) return fmt::format("'{}' is not an ldap://, ldaps:// or ldapi:// URI", uri);
        pos = end;
    }
    return {};
}

// An attribute description: a name or an OID, with options (";binary").
bool is_attribute(std::string_view name) noexcept {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == ';';
    });
}

std::string set_attribute(std::string_view value, std::string& field, bool optional) {
    if (value.empty() && optional) {
        field.clear();
        return {};
    }
    if (!is_attribute(value)) return fmt::format("bad attribute name '{}'", value);
    field = std::string(value);
    return {};
}

std::string set_string(std::string_view value, std::string& field) {
    field = std::string(value);
    return {};
}

// "RULE, RULE, ..." with RULE = VALUE:STATE | &N:STATE | *:STATE.
std::string set_state_map(std::string_view value, std::vector<LdapStateRule>& rules) {
    std::vector<LdapStateRule> parsed;
    std::size_t pos = 0;
    while (pos <= value.size()) {
        const auto end = std::min(value.find(',', pos), value.size());
        const auto text = trim(value.substr(pos, end - pos));
        pos = end + 1;
        if (text.empty()) continue;
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0)
            return fmt::format("bad rule '{}' (expected VALUE:STATE, &N:STATE or *:STATE)", text);
        const auto what = trim(text.substr(0, colon));
        const auto state = parse_mailbox_state(trim(text.substr(colon + 1)));
        if (!state || *state == MailboxState::Moving)
            return fmt::format("bad rule '{}' (the state is active, suspended or disabled)", text);
        LdapStateRule rule;
        rule.state = *state;
        if (what == "*") {
            rule.match = LdapStateRule::Match::Any;
        } else if (what.front() == '&') {
            const auto bits = parse_number<std::uint64_t>(what.substr(1));
            if (!bits || *bits == 0) return fmt::format("bad rule '{}' (&N takes a positive decimal N)", text);
            rule.match = LdapStateRule::Match::AnyBit;
            rule.bits = *bits;
        } else {
            rule.value = std::string(what);
        }
        parsed.push_back(std::move(rule));
    }
    if (parsed.empty()) return "no rule (expected VALUE:STATE, ...)";
    rules = std::move(parsed);
    return {};
}

std::string show_scope(LdapScope scope) {
    switch (scope) {
    case LdapScope::Base: return "base";
    case LdapScope::One: return "one";
    case LdapScope::Sub: return "sub";
    }
    return "?";
}

// As ldap_state_map takes it: "active:active, suspended:suspended, ...".
std::string show_state_map(const std::vector<LdapStateRule>& rules) {
    std::vector<std::string> texts;
    for (const auto& rule : rules) {
        std::string match = rule.match == LdapStateRule::Match::Any      ? std::string("*")
                            : rule.match == LdapStateRule::Match::AnyBit ? fmt::format("&{}", rule.bits)
                                                                         : rule.value;
        texts.push_back(fmt::format("{}:{}", match, to_string(rule.state)));
    }
    return fmt::format("{}", fmt::join(texts, ", "));
}

using Key = common::Key<Settings>;

const Key keys[] = {
    {"ldap_uri", "the LDAP server of sync --ldap: ldap://, ldaps:// or ldapi:// URIs, blank-separated (empty: none)",
     [](std::string_view v, Settings& s) {
         auto problem = check_uri(v);
         if (problem.empty()) s.ldap.uri = std::string(trim(v));
         return problem;
     },
     [](const Settings& s) -> std::string { return s.ldap.uri; }},
    {"ldap_bind_dn", "a simple bind as this DN, with ldap_password_file (empty: none)",
     [](std::string_view v, Settings& s) { return set_string(v, s.ldap.bind_dn); },
     [](const Settings& s) -> std::string { return s.ldap.bind_dn; }},
    {"ldap_password_file", "the file whose first line is the bind DN's password",
     [](std::string_view v, Settings& s) { return set_string(v, s.ldap.password_file); },
     [](const Settings& s) -> std::string { return s.ldap.password_file; }},
    {"ldap_sasl_mechanism", "EXTERNAL: bind as the connection's identity (empty: none)",
     [](std::string_view v, Settings& s) -> std::string {
         if (!v.empty() && !equal_ignoring_case(v, "EXTERNAL"))
             return fmt::format("unsupported mechanism '{}' (expected EXTERNAL or nothing)", v);
         s.ldap.sasl_mechanism = v.empty() ? "" : "EXTERNAL";
         return {};
     },
     [](const Settings& s) -> std::string { return s.ldap.sasl_mechanism; }},
    {"ldap_base", "the base DN of the search for mailboxes",
     [](std::string_view v, Settings& s) { return set_string(v, s.ldap.base); },
     [](const Settings& s) -> std::string { return s.ldap.base; }},
    {"ldap_scope", "the scope of the searches: sub, one or base",
     [](std::string_view v, Settings& s) -> std::string {
         if (v == "sub") s.ldap.scope = LdapScope::Sub;
         else if (v == "one") s.ldap.scope = LdapScope::One;
         else if (v == "base") s.ldap.scope = LdapScope::Base;
         else return fmt::format("bad scope '{}' (expected sub, one or base)", v);
         return {};
     },
     [](const Settings& s) { return show_scope(s.ldap.scope); }},
    {"ldap_filter", "the search filter for mailboxes (empty: the address attribute present)",
     [](std::string_view v, Settings& s) { return set_string(v, s.ldap.filter); },
     [](const Settings& s) -> std::string { return s.ldap.filter; }},
    {"ldap_page_size", "entries per page of paged results (0: no paging)",
     [](std::string_view v, Settings& s) -> std::string {
         const auto size = parse_number<int>(v);
         if (!size || *size < 0 || *size > 1'000'000)
             return fmt::format("bad page size '{}' (expected 0 to 1000000)", v);
         s.ldap.page_size = *size;
         return {};
     },
     [](const Settings& s) { return std::to_string(s.ldap.page_size); }},
    {"ldap_timeout", "the longest wait for the server, each time",
     [](std::string_view v, Settings& s) -> std::string {
         const auto timeout = common::parse_duration(v);
         if (!timeout || timeout->count() <= 0)
             return fmt::format("bad duration '{}' (expected N[s|m|h|d|w], not 0)", v);
         s.ldap.timeout = *timeout;
         return {};
     },
     [](const Settings& s) { return common::show_seconds(s.ldap.timeout); }},
    {"ldap_address_attribute", "the attribute holding a mailbox's address",
     [](std::string_view v, Settings& s) { return set_attribute(v, s.ldap.address_attribute, false); },
     [](const Settings& s) -> std::string { return s.ldap.address_attribute; }},
    {"ldap_unit_attribute", "the attribute holding a mailbox's unit",
     [](std::string_view v, Settings& s) { return set_attribute(v, s.ldap.unit_attribute, false); },
     [](const Settings& s) -> std::string { return s.ldap.unit_attribute; }},
    {"ldap_unit_value", "how its value becomes a unit name: verbatim or first_label",
     [](std::string_view v, Settings& s) -> std::string {
         if (v == "verbatim") s.ldap.unit_value = LdapUnitValue::Verbatim;
         else if (v == "first_label") s.ldap.unit_value = LdapUnitValue::FirstLabel;
         else return fmt::format("bad value '{}' (expected verbatim or first_label)", v);
         return {};
     },
     [](const Settings& s) -> std::string {
         return s.ldap.unit_value == LdapUnitValue::FirstLabel ? "first_label" : "verbatim";
     }},
    {"ldap_state_attribute", "the attribute holding the account's state (empty: every mailbox active)",
     [](std::string_view v, Settings& s) { return set_attribute(v, s.ldap.state_attribute, true); },
     [](const Settings& s) -> std::string { return s.ldap.state_attribute; }},
    {"ldap_state_map", "rules VALUE:STATE, &N:STATE or *:STATE, comma-separated, the first match wins",
     [](std::string_view v, Settings& s) { return set_state_map(v, s.ldap.state_map); },
     [](const Settings& s) { return show_state_map(s.ldap.state_map); }},
    {"ldap_alias_attribute", "an attribute of a mailbox entry whose values are its aliases (empty: none)",
     [](std::string_view v, Settings& s) { return set_attribute(v, s.ldap.alias_attribute, true); },
     [](const Settings& s) -> std::string { return s.ldap.alias_attribute; }},
    {"ldap_alias_prefix", "only values of ldap_alias_attribute with this prefix are aliases, without it",
     [](std::string_view v, Settings& s) { return set_string(v, s.ldap.alias_prefix); },
     [](const Settings& s) -> std::string { return s.ldap.alias_prefix; }},
    {"ldap_alias_filter", "a second search, for aliases of their own (empty: none)",
     [](std::string_view v, Settings& s) { return set_string(v, s.ldap.alias_filter); },
     [](const Settings& s) -> std::string { return s.ldap.alias_filter; }},
    {"ldap_alias_base", "the base of that search (empty: ldap_base)",
     [](std::string_view v, Settings& s) { return set_string(v, s.ldap.alias_base); },
     [](const Settings& s) -> std::string { return s.ldap.alias_base; }},
    {"ldap_alias_address_attribute", "the alias's address in that search",
     [](std::string_view v, Settings& s) { return set_attribute(v, s.ldap.alias_address_attribute, false); },
     [](const Settings& s) -> std::string { return s.ldap.alias_address_attribute; }},
    {"ldap_alias_target_attribute", "the alias's targets in that search, one address per value",
     [](std::string_view v, Settings& s) { return set_attribute(v, s.ldap.alias_target_attribute, false); },
     [](const Settings& s) -> std::string { return s.ldap.alias_target_attribute; }},
    {"ldap_domains", "the served domains: from_addresses (those of the addresses read) or keep",
     [](std::string_view v, Settings& s) -> std::string {
         if (v == "from_addresses") s.ldap.domains = LdapDomains::FromAddresses;
         else if (v == "keep") s.ldap.domains = LdapDomains::Keep;
         else return fmt::format("bad value '{}' (expected from_addresses or keep)", v);
         return {};
     },
     [](const Settings& s) -> std::string { return s.ldap.domains == LdapDomains::Keep ? "keep" : "from_addresses"; }},
};

}  // namespace

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        return lower(x) == lower(y);
    });
}

std::vector<LdapStateRule> LdapSettings::default_state_map() {
    std::vector<LdapStateRule> rules;
    for (auto state : {MailboxState::Active, MailboxState::Suspended, MailboxState::Disabled})
        rules.push_back({LdapStateRule::Match::Equal, std::string(to_string(state)), 0, state});
    return rules;
}

std::span<const common::Key<Settings>> ldap_keys() noexcept { return keys; }

std::string apply_ldap_key(std::string_view key, std::string_view value, LdapSettings& settings) {
    for (const auto& known : keys) {
        if (known.name != key) continue;
        // The table's appliers take the whole Settings: lend it these.
        Settings whole;
        whole.ldap = std::move(settings);
        auto problem = known.apply(value, whole);
        settings = std::move(whole.ldap);
        return problem;
    }
    return fmt::format("unknown key '{}'", key);
}

std::optional<MailboxState> map_ldap_state(const std::vector<LdapStateRule>& rules, std::string_view value) noexcept {
    for (const auto& rule : rules) {
        switch (rule.match) {
        case LdapStateRule::Match::Any: return rule.state;
        case LdapStateRule::Match::Equal:
            if (equal_ignoring_case(rule.value, value)) return rule.state;
            break;
        case LdapStateRule::Match::AnyBit:
            if (auto number = parse_number<std::uint64_t>(value); number && (*number & rule.bits) != 0)
                return rule.state;
            break;
        }
    }
    return std::nullopt;
}

}  // namespace unit::ctl
