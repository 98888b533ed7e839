#include "ctl/settings.hpp"

#include <fmt/format.h>

#include <charconv>
#include <iterator>
#include <stdexcept>

#include "common/config_file.hpp"
#include "common/key_table.hpp"
#include "ctl/command.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

using common::parse_bool;
using common::parse_duration;

namespace {

using Key = common::Key<Settings>;

// unitctl's messages quote a value with '...', as its other messages do.
std::string set_bool(bool& field, std::string_view value) {
    auto parsed = parse_bool(value);
    if (!parsed) return fmt::format("bad boolean '{}' (expected yes or no)", value);
    field = *parsed;
    return {};
}

std::string set_duration(std::chrono::seconds& field, std::string_view value) {
    auto parsed = parse_duration(value);
    if (!parsed) return fmt::format("bad duration '{}' (expected N[s|m|h|d|w])", value);
    field = *parsed;
    return {};
}

// `field` takes any value but an empty one, which `problem` explains.
std::string set_nonempty(std::string& field, std::string_view value, const char* problem) {
    if (value.empty()) return problem;
    field = std::string(value);
    return {};
}

// A count from 1 to max_alias_targets_limit.
std::string set_count(int& field, std::string_view value) {
    int count = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), count);
    if (error != std::errc() || end != value.data() + value.size() || count < 1 || count > max_alias_targets_limit)
        return fmt::format("bad number '{}' (expected 1 to {})", value, max_alias_targets_limit);
    field = count;
    return {};
}

std::string set_audit_log(AuditLog& field, std::string_view value) {
    if (value == "syslog") field = AuditLog::Syslog;
    else if (value == "stderr") field = AuditLog::Stderr;
    else if (value == "none") field = AuditLog::None;
    else return fmt::format("bad audit log '{}' (expected syslog, stderr or none)", value);
    return {};
}

std::string show_audit_log(AuditLog value) {
    switch (value) {
    case AuditLog::Syslog: return "syslog";
    case AuditLog::Stderr: return "stderr";
    case AuditLog::None: return "none";
    }
    return "?";
}

const Key keys[] = {
    {"db", "the primary database, as --db",
     [](std::string_view v, Settings& s) { return set_nonempty(s.db, v, "empty database path"); },
     [](const Settings& s) -> std::string { return s.db; }},
    {"recipient_delimiter", "address extension delimiters, as Postfix's recipient_delimiter (empty: none)",
     [](std::string_view v, Settings& s) -> std::string {
         s.resolver.address.recipient_delimiter = std::string(v);
         return {};
     },
     [](const Settings& s) -> std::string { return s.resolver.address.recipient_delimiter; }},
    {"hold_transport", "the daemons' hold transport, which no unit may use",
     [](std::string_view v, Settings& s) { return set_nonempty(s.hold_transport, v, "empty transport name"); },
     [](const Settings& s) -> std::string { return s.hold_transport; }},
    {"max_alias_targets", "alias rows one expansion may visit, as the daemons'",
     [](std::string_view v, Settings& s) { return set_count(s.resolver.max_alias_targets, v); },
     [](const Settings& s) -> std::string { return std::to_string(s.resolver.max_alias_targets); }},
    {"fold_local_case", "fold the local part to lowercase",
     [](std::string_view v, Settings& s) { return set_bool(s.resolver.address.fold_local_case, v); },
     [](const Settings& s) -> std::string { return common::show_bool(s.resolver.address.fold_local_case); }},
    {"reject_max_age", "an older database answers unconfirmed, not unknown (0: never)",
     [](std::string_view v, Settings& s) { return set_duration(s.resolver.reject_max_age, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.resolver.reject_max_age); }},
    {"max_replica_age", "an older database answers tempfail (0: never)",
     [](std::string_view v, Settings& s) { return set_duration(s.resolver.max_replica_age, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.resolver.max_replica_age); }},
    {"audit_log", "where the audit lines go: syslog, stderr or none",
     [](std::string_view v, Settings& s) { return set_audit_log(s.audit_log, v); },
     [](const Settings& s) -> std::string { return show_audit_log(s.audit_log); }},
    {"fleet_hosts", "the hosts file of fleet status and fleet wait",
     [](std::string_view v, Settings& s) { return set_nonempty(s.fleet_hosts, v, "empty path"); },
     [](const Settings& s) -> std::string { return s.fleet_hosts; }},
};

// The keys above, then the ldap_* keys.
const common::KeyTable<Settings>& table() {
    static const std::vector<Key> all = [] {
        std::vector<Key> joined(std::begin(keys), std::end(keys));
        const auto ldap = ldap_keys();
        joined.insert(joined.end(), ldap.begin(), ldap.end());
        return joined;
    }();
    static const common::KeyTable<Settings> joined_table{all};
    return joined_table;
}

// A key a command names; a name that is not one is the program's bug.
const Key& find_key(std::string_view name) {
    const Key* key = table().find(name);
    if (key == nullptr) throw std::logic_error(fmt::format("no configuration key '{}'", name));
    return *key;
}

}  // namespace

void load_config_file(const std::string& path, Settings& settings) {
    try {
        table().apply_file(path, settings);
    } catch (const common::ConfigError& e) {
        throw UsageError(e.what());
    }
}

std::vector<std::pair<std::string, std::string>> describe(const Settings& settings) {
    return table().describe(settings);
}

void declare_key_options(po::options_description& options, std::span<const KeyOption> keys) {
    const Settings defaults{};
    for (const auto& option : keys) {
        const Key& key = find_key(option.key);
        options.add_options()(common::option_name(key.name).c_str(),
                              po::value<std::string>()->value_name(option.value_name),
                              common::KeyTable<Settings>::help_text(key, defaults).c_str());
    }
}

void apply_key_options(const po::variables_map& given, std::span<const KeyOption> keys, std::string_view command,
                       Settings& settings) {
    for (const auto& option : keys) {
        const Key& key = find_key(option.key);
        const auto name = common::option_name(key.name);
        if (given.count(name) == 0) continue;
        if (auto problem = key.apply(given[name].as<std::string>(), settings); !problem.empty())
            throw UsageError(fmt::format("{}: --{}: {}", command, name, problem));
    }
}

std::chrono::seconds duration_or_usage(std::string_view text, std::string_view what) {
    if (auto duration = parse_duration(text)) return *duration;
    throw UsageError(fmt::format("{}: bad duration '{}' (expected N[s|m|h|d|w])", what, text));
}

}  // namespace unit::ctl
