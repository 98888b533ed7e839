#include "common/config_file.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>

namespace unit::common {

namespace {

std::string_view trim(std::string_view text) noexcept {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

}  // namespace

void read_config_file(const std::string& path, const ApplySetting& apply) {
    std::ifstream in(path);
    if (!in) throw ConfigError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    std::string line;
    for (unsigned number = 1; std::getline(in, line); ++number) {
        const auto text = trim(line);
        if (text.empty() || text.front() == '#') continue;
        const auto equals = text.find('=');
        if (equals == std::string_view::npos)
            throw ConfigError(fmt::format("{}:{}: expected 'key = value'", path, number));
        const auto key = trim(text.substr(0, equals));
        if (auto problem = apply(key, trim(text.substr(equals + 1))); !problem.empty())
            throw ConfigError(fmt::format("{}:{}: {}", path, number, problem));
    }
    if (in.bad()) throw ConfigError(fmt::format("{}: read error", path));
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

}  // namespace unit::common
