#include "ctl/settings.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>

#include "ctl/command.hpp"

namespace unit::ctl {

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

constexpr std::array<ConfigKey, 5> config_keys{{
    {"db", apply_db},
    {"recipient_delimiter", apply_delimiter},
    {"fold_local_case", apply_fold},
    {"reject_max_age", [](std::string_view v, Settings& s) { return apply_duration(v, s.reject_max_age); }},
    {"max_replica_age", [](std::string_view v, Settings& s) { return apply_duration(v, s.max_replica_age); }},
}};

std::string_view trim(std::string_view text) noexcept {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

void apply_line(std::string_view line, const std::string& where, Settings& settings) {
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) throw UsageError(fmt::format("{}: expected 'key = value'", where));
    const auto key = trim(line.substr(0, equals));
    const auto value = trim(line.substr(equals + 1));
    for (const auto& known : config_keys) {
        if (known.name != key) continue;
        if (auto problem = known.apply(value, settings); !problem.empty())
            throw UsageError(fmt::format("{}: {}: {}", where, key, problem));
        return;
    }
    throw UsageError(fmt::format("{}: unknown key '{}'", where, key));
}

}  // namespace

void load_config_file(const std::string& path, Settings& settings) {
    std::ifstream in(path);
    if (!in) throw UsageError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    std::string line;
    for (unsigned number = 1; std::getline(in, line); ++number) {
        const auto text = trim(line);
        if (text.empty() || text.front() == '#') continue;
        apply_line(text, fmt::format("{}:{}", path, number), settings);
    }
    if (in.bad()) throw UsageError(fmt::format("{}: read error", path));
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) noexcept {
    long long number = 0;
    const auto* end = text.data() + text.size();
    const auto [rest, ec] = std::from_chars(text.data(), end, number);
    if (ec != std::errc() || rest == text.data() || number < 0) return std::nullopt;
    long long unit = 1;
    if (rest != end) {
        if (rest + 1 != end) return std::nullopt;
        switch (*rest) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return std::nullopt;
        }
    }
    // Refuse values that would overflow rather than wrap around.
    if (number > std::numeric_limits<std::int32_t>::max() / unit) return std::nullopt;
    return std::chrono::seconds(number * unit);
}

std::optional<bool> parse_bool(std::string_view text) noexcept {
    if (text == "yes" || text == "true" || text == "on" || text == "1") return true;
    if (text == "no" || text == "false" || text == "off" || text == "0") return false;
    return std::nullopt;
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
