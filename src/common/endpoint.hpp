// endpoint.hpp: where a daemon listens, as Postfix spells it:
// "unix:/path" (a UNIX-domain socket) or "inet:host:port" ("inet:[::1]:port"
// for IPv6, "inet:*:port" or "inet:port" for every address).
// parse_endpoint() returns Errc::Invalid with the reason. Pure, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "unit/result.hpp"

namespace unit::common {

struct Endpoint {
    enum class Kind { Unix, Inet };
    Kind kind = Kind::Unix;
    std::string path;  // Unix
    std::string host;  // Inet: empty for every address
    std::uint16_t port = 0;
    std::string text;  // as given, for messages
};

Result<Endpoint> parse_endpoint(std::string_view text);

}  // namespace unit::common
