#include "ctl/ldap_settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "common/config_file.hpp"

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

using Apply = std::string (*)(std::string_view value, LdapSettings& s);

struct LdapKey {
    std::string_view name;
    Apply apply;
};

constexpr std::array<LdapKey, 21> ldap_keys{{
    {"ldap_uri",
     [](std::string_view v, LdapSettings& s) {
         auto problem = check_uri(v);
         if (problem.empty()) s.uri = std::string(trim(v));
         return problem;
     }},
    {"ldap_bind_dn", [](std::string_view v, LdapSettings& s) { return set_string(v, s.bind_dn); }},
    {"ldap_password_file", [](std::string_view v, LdapSettings& s) { return set_string(v, s.password_file); }},
    {"ldap_sasl_mechanism",
     [](std::string_view v, LdapSettings& s) -> std::string {
         if (!v.empty() && !equal_ignoring_case(v, "EXTERNAL"))
             return fmt::format("unsupported mechanism '{}' (expected EXTERNAL or nothing)", v);
         s.sasl_mechanism = v.empty() ? "" : "EXTERNAL";
         return {};
     }},
    {"ldap_base", [](std::string_view v, LdapSettings& s) { return set_string(v, s.base); }},
    {"ldap_scope",
     [](std::string_view v, LdapSettings& s) -> std::string {
         if (v == "sub") s.scope = LdapScope::Sub;
         else if (v == "one") s.scope = LdapScope::One;
         else if (v == "base") s.scope = LdapScope::Base;
         else return fmt::format("bad scope '{}' (expected sub, one or base)", v);
         return {};
     }},
    {"ldap_filter", [](std::string_view v, LdapSettings& s) { return set_string(v, s.filter); }},
    {"ldap_page_size",
     [](std::string_view v, LdapSettings& s) -> std::string {
         const auto size = parse_number<int>(v);
         if (!size || *size < 0 || *size > 1'000'000)
             return fmt::format("bad page size '{}' (expected 0 to 1000000)", v);
         s.page_size = *size;
         return {};
     }},
    {"ldap_timeout",
     [](std::string_view v, LdapSettings& s) -> std::string {
         const auto timeout = common::parse_duration(v);
         if (!timeout || timeout->count() <= 0)
             return fmt::format("bad duration '{}' (expected N[s|m|h|d|w], not 0)", v);
         s.timeout = *timeout;
         return {};
     }},
    {"ldap_address_attribute",
     [](std::string_view v, LdapSettings& s) { return set_attribute(v, s.address_attribute, false); }},
    {"ldap_unit_attribute",
     [](std::string_view v, LdapSettings& s) { return set_attribute(v, s.unit_attribute, false); }},
    {"ldap_unit_value",
     [](std::string_view v, LdapSettings& s) -> std::string {
         if (v == "verbatim") s.unit_value = LdapUnitValue::Verbatim;
         else if (v == "first_label") s.unit_value = LdapUnitValue::FirstLabel;
         else return fmt::format("bad value '{}' (expected verbatim or first_label)", v);
         return {};
     }},
    {"ldap_state_attribute",
     [](std::string_view v, LdapSettings& s) { return set_attribute(v, s.state_attribute, true); }},
    {"ldap_state_map", [](std::string_view v, LdapSettings& s) { return set_state_map(v, s.state_map); }},
    {"ldap_alias_attribute",
     [](std::string_view v, LdapSettings& s) { return set_attribute(v, s.alias_attribute, true); }},
    {"ldap_alias_prefix", [](std::string_view v, LdapSettings& s) { return set_string(v, s.alias_prefix); }},
    {"ldap_alias_filter", [](std::string_view v, LdapSettings& s) { return set_string(v, s.alias_filter); }},
    {"ldap_alias_base", [](std::string_view v, LdapSettings& s) { return set_string(v, s.alias_base); }},
    {"ldap_alias_address_attribute",
     [](std::string_view v, LdapSettings& s) { return set_attribute(v, s.alias_address_attribute, false); }},
    {"ldap_alias_target_attribute",
     [](std::string_view v, LdapSettings& s) { return set_attribute(v, s.alias_target_attribute, false); }},
    {"ldap_domains",
     [](std::string_view v, LdapSettings& s) -> std::string {
         if (v == "from_addresses") s.domains = LdapDomains::FromAddresses;
         else if (v == "keep") s.domains = LdapDomains::Keep;
         else return fmt::format("bad value '{}' (expected from_addresses or keep)", v);
         return {};
     }},
}};

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

std::string apply_ldap_key(std::string_view key, std::string_view value, LdapSettings& settings) {
    for (const auto& known : ldap_keys)
        if (known.name == key) return known.apply(value, settings);
    return fmt::format("unknown key '{}'", key);
}

std::optional<MailboxState> map_ldap_state(const std::vector<LdapStateRule>& rules, std::string_view value) noexcept {
    for (const auto& rule : rules) {
        switch (rule.match) {
        case LdapStateRule::Match::Any:
            return rule.state;
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
