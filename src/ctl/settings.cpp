#include "ctl/settings.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>

#include "common/config_file.hpp"
#include "ctl/command.hpp"

namespace unit::ctl {

using common::parse_bool;
using common::parse_duration;

namespace {

// Applies one value to the settings; returns an explanation when the value
// is bad, empty when it was taken.
using Apply = std::string (*)(std::string_view value, Settings& settings);

struct ConfigKey {
    std::string_view name;
    Apply apply;
};

std::string apply_db(std::string_view value, Settings& s) {
    if (value.empty()) return "empty database path";
    s.db = std::string(value);
    return {};
}

std::string apply_delimiter(std::string_view value, Settings& s) {
    // Empty is legal: no address extensions.
    s.recipient_delimiter = std::string(value);
    return {};
}

std::string apply_fold(std::string_view value, Settings& s) {
    s.fold_local_case = parse_bool(value);
    return s.fold_local_case ? std::string() : fmt::format("bad boolean '{}' (expected yes or no)", value);
}

std::string apply_duration(std::string_view value, std::optional<std::chrono::seconds>& field) {
    field = parse_duration(value);
    return field ? std::string() : fmt::format("bad duration '{}' (expected N[s|m|h|d|w])", value);
}

std::string apply_hold_transport(std::string_view value, Settings& s) {
    if (value.empty()) return "empty transport name";
    s.hold_transport = std::string(value);
    return {};
}

// A count from 1 to max_alias_targets_limit.
std::optional<int> parse_count(std::string_view text) {
    int value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error == std::errc() && end == text.data() + text.size() && value >= 1 && value <= max_alias_targets_limit)
        return value;
    return std::nullopt;
}

std::string apply_max_alias_targets(std::string_view value, Settings& s) {
    auto count = parse_count(value);
    if (!count) return fmt::format("bad number '{}' (expected 1 to {})", value, max_alias_targets_limit);
    s.max_alias_targets = *count;
    return {};
}

std::string apply_audit_log(std::string_view value, Settings& s) {
    if (value == "syslog") s.audit_log = AuditLog::Syslog;
    else if (value == "stderr") s.audit_log = AuditLog::Stderr;
    else if (value == "none") s.audit_log = AuditLog::None;
    else return fmt::format("bad audit log '{}' (expected syslog, stderr or none)", value);
    return {};
}

std::string apply_fleet_hosts(std::string_view value, Settings& s) {
    if (value.empty()) return "empty path";
    s.fleet_hosts = std::string(value);
    return {};
}

constexpr std::array<ConfigKey, 9> config_keys{{
    {"db", apply_db},
    {"recipient_delimiter", apply_delimiter},
    {"fold_local_case", apply_fold},
    {"reject_max_age", [](std::string_view v, Settings& s) { return apply_duration(v, s.reject_max_age); }},
    {"max_replica_age", [](std::string_view v, Settings& s) { return apply_duration(v, s.max_replica_age); }},
    {"hold_transport", apply_hold_transport},
    {"max_alias_targets", apply_max_alias_targets},
    {"audit_log", apply_audit_log},
    {"fleet_hosts", apply_fleet_hosts},
}};

}  // namespace

void load_config_file(const std::string& path, Settings& settings) {
    try {
        common::read_config_file(path, [&](std::string_view key, std::string_view value) -> std::string {
            if (key.starts_with("ldap_")) {
                auto problem = apply_ldap_key(key, value, settings.ldap);
                return problem.empty() || problem.starts_with("unknown key") ? problem
                                                                             : fmt::format("{}: {}", key, problem);
            }
            for (const auto& known : config_keys) {
                if (known.name != key) continue;
                auto problem = known.apply(value, settings);
                return problem.empty() ? problem : fmt::format("{}: {}", key, problem);
            }
            return fmt::format("unknown key '{}'", key);
        });
    } catch (const common::ConfigError& e) {
        throw UsageError(e.what());
    }
}

std::chrono::seconds duration_or_usage(std::string_view text, std::string_view what) {
    if (auto duration = parse_duration(text)) return *duration;
    throw UsageError(fmt::format("{}: bad duration '{}' (expected N[s|m|h|d|w])", what, text));
}

bool bool_or_usage(std::string_view text, std::string_view what) {
    if (auto value = parse_bool(text)) return *value;
    throw UsageError(fmt::format("{}: bad boolean '{}' (expected yes or no)", what, text));
}

}  // namespace unit::ctl
