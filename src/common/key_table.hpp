// key_table.hpp: the one declarative table of configuration keys each
// program has (STYLE §7): a key's name, one-line doc, how its value is
// applied and shown, and whether a reload applies it drive the configuration
// file (`key = value`), the command line (--key-name, with '-' for '_'),
// --help, --dump's configuration (describe()), the reload's list of settings
// kept until a restart, and the man page tests. A key's default is the
// Settings struct's member initialiser, written once: --help shows it
// through the key's show function.
//
// Appliers return "" when they took the value, else why not; the table turns
// that into common::ConfigError naming the key (and FILE:LINE for the file).
// Logs nothing.
#pragma once

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config_file.hpp"
#include "common/kept_settings.hpp"
#include "common/log.hpp"

namespace unit::common {

// Value appliers shared by the tables.
std::string set_text(std::string& field, std::string_view value, bool may_be_empty = true);
std::string set_bool(bool& field, std::string_view value);
std::string set_duration(std::chrono::seconds& field, std::string_view value);
std::string set_timeout(std::chrono::seconds& field, std::string_view value);  // a duration of at least 1s
// A whole number of milliseconds, 1 to 600000 (ten minutes).
std::string set_milliseconds(std::chrono::milliseconds& field, std::string_view value);
std::string set_log_sink(LogSink& field, std::string_view value);           // syslog | stderr
std::string set_inet_endpoint(std::string& field, std::string_view value);  // inet:host:port, or empty
// An absolute path; empty too when `may_be_empty`.
std::string set_absolute_path(std::string& field, std::string_view value, bool may_be_empty = true);

template <class Number>
std::string set_number(Number& field, std::string_view value, Number min, Number max, int base = 10) {
    Number n{};
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n, base);
    if (ec != std::errc() || end != value.data() + value.size() || n < min || n > max)
        return fmt::format("bad number \"{}\" (expected {} to {})", value, min, max);
    field = n;
    return {};
}

// Values as `key = value` gives them, for the show functions.
std::string show_bool(bool value);                            // yes | no
std::string show_seconds(std::chrono::seconds value);         // "30s", "5m", "1d"
std::string show_list(const std::vector<std::string>& list);  // space separated

// "policy_listen" -> "policy-listen"
std::string option_name(std::string_view key);

enum class KeyKind {
    Value,       // one value; the command line replaces the file's
    Repeatable,  // a list; a command line that gives it replaces the file's list
    Flag,        // yes/no; "--name" alone on the command line means yes
};

// Whether a reload (SIGHUP) applies a changed value.
enum class Reload {
    Applied,
    AtRestart,  // read once, at start (a socket, the threads, the user...): the running value stays
};

template <class Settings>
struct Key {
    const char* name;
    const char* doc;  // --help adds the default: show() of a default-constructed Settings
    std::string (*apply)(std::string_view value, Settings& s);
    std::string (*show)(const Settings& s);  // the value, as the file would give it
    Reload reload = Reload::Applied;
    KeyKind kind = KeyKind::Value;
    void (*clear)(Settings& s) = nullptr;  // Repeatable: empties the list
};

inline constexpr const char* settings_title = "Settings (also `key = value` in the configuration file)";

// Parses argv against `options` (no abbreviations); ConfigError on a problem.
boost::program_options::variables_map parse_command_line(int argc, const char* const argv[],
                                                         const boost::program_options::options_description& options);

// --config FILE, else `fallback` when that file exists, else "".
std::string config_path(const boost::program_options::variables_map& vm, const char* fallback);

template <class Settings>
class KeyTable {
public:
    explicit constexpr KeyTable(std::span<const Key<Settings>> keys) : keys_(keys) {}

    std::span<const Key<Settings>> keys() const { return keys_; }

    const Key<Settings>* find(std::string_view name) const {
        for (const auto& k : keys_)
            if (name == k.name) return &k;
        return nullptr;
    }

    boost::program_options::options_description options(const char* title) const {
        namespace po = boost::program_options;
        po::options_description options(title);
        const Settings defaults{};
        for (const auto& k : keys_) {
            std::string help = help_text(k, defaults);
            std::string name = option_name(k.name);
            switch (k.kind) {
            case KeyKind::Value: options.add_options()(name.c_str(), po::value<std::string>(), help.c_str()); break;
            case KeyKind::Repeatable:
                options.add_options()(name.c_str(), po::value<std::vector<std::string>>(), help.c_str());
                break;
            case KeyKind::Flag:
                options.add_options()(name.c_str(), po::value<std::string>()->implicit_value("yes"), help.c_str());
                break;
            }
        }
        return options;
    }

    // The key's doc and, unless it is empty, its value in `defaults` (the
    // struct's member initialisers: the one place a default is written).
    static std::string help_text(const Key<Settings>& k, const Settings& defaults) {
        std::string value = k.show(defaults);
        return value.empty() ? std::string(k.doc) : fmt::format("{} (default: {})", k.doc, value);
    }

    // The configuration file (--config, else `fallback` when it exists), then
    // the command line, which wins. Returns the file's path ("" when none).
    std::string load(const boost::program_options::variables_map& vm, const char* fallback, Settings& s) const {
        std::string path = config_path(vm, fallback);
        if (!path.empty()) apply_file(path, s);
        apply_command_line(vm, s);
        return path;
    }

    void apply_file(const std::string& path, Settings& s) const {
        read_config_file(path, [&](std::string_view name, std::string_view value) -> std::string {
            const Key<Settings>* key = find(name);
            if (key == nullptr) return fmt::format("unknown key '{}'", name);
            std::string problem = key->apply(value, s);
            return problem.empty() ? problem : fmt::format("{}: {}", name, problem);
        });
    }

    void apply_command_line(const boost::program_options::variables_map& vm, Settings& s) const {
        for (const auto& k : keys_) {
            auto it = vm.find(option_name(k.name));
            if (it == vm.end()) continue;
            if (k.kind == KeyKind::Repeatable) {
                k.clear(s);
                for (const auto& v : it->second.template as<std::vector<std::string>>()) apply(k, v, s);
            } else {
                apply(k, it->second.template as<std::string>(), s);
            }
        }
    }

    // Each key and its value in `s`, in the table's order.
    std::vector<std::pair<std::string, std::string>> describe(const Settings& s) const {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& k : keys_) out.emplace_back(k.name, k.show(s));
        return out;
    }

    // The keys read once at start whose value a reload would change.
    KeptSettings kept_on_reload(const Settings& started, const Settings& reloaded) const {
        KeptSettings kept;
        for (const auto& k : keys_)
            if (k.reload == Reload::AtRestart) kept.compare(k.name, k.show(started), k.show(reloaded));
        return kept;
    }

private:
    static void apply(const Key<Settings>& k, std::string_view value, Settings& s) {
        if (auto problem = k.apply(value, s); !problem.empty())
            throw ConfigError(fmt::format("--{}: {}", option_name(k.name), problem));
    }

    std::span<const Key<Settings>> keys_;
};

}  // namespace unit::common
