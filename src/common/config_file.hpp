// config_file.hpp: the `key = value` configuration files of the programs,
// and the value syntax they share.
//
// read_config_file() calls apply(key, value) for each setting line (blank
// lines and lines starting with '#' are skipped; spaces around key and value
// are trimmed). apply returns an explanation for a bad key or value, or ""
// when it took the value. Every problem (unreadable file, a line without
// '=', an explanation from apply) throws ConfigError "FILE:LINE: ...".
// Logs nothing.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace unit::common {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using ApplySetting = std::function<std::string(std::string_view key, std::string_view value)>;

void read_config_file(const std::string& path, const ApplySetting& apply);

// Postfix time units: "90", "90s", "15m", "2h", "1d", "1w"; nullopt otherwise.
std::optional<std::chrono::seconds> parse_duration(std::string_view text) noexcept;
// yes|no|true|false|on|off|1|0; nullopt otherwise.
std::optional<bool> parse_bool(std::string_view text) noexcept;

}  // namespace unit::common
