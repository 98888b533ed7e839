#include "common/endpoint.hpp"

#include <fmt/format.h>

#include <charconv>

namespace unit::common {

namespace {

Result<std::uint16_t> parse_port(std::string_view text, std::string_view whole) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
        return make_error(Errc::Invalid, fmt::format("{}: bad port \"{}\"", whole, text));
    return static_cast<std::uint16_t>(value);
}

Result<Endpoint> parse_inet(std::string_view rest, std::string_view whole) {
    Endpoint e{Endpoint::Kind::Inet, {}, {}, 0, std::string(whole)};
    std::string_view host;
    std::string_view port = rest;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            return make_error(Errc::Invalid, fmt::format("{}: expected inet:[address]:port", whole));
        host = rest.substr(1, close - 1);
        port = rest.substr(close + 2);
    } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host == "*") host = {};
    auto number = parse_port(port, whole);
    if (!number) return number.error();
    e.host = std::string(host);
    e.port = number.value();
    return e;
}

}  // namespace

Result<Endpoint> parse_endpoint(std::string_view text) {
    if (text.rfind("unix:", 0) == 0) {
        auto path = text.substr(5);
        if (path.empty() || path.front() != '/')
            return make_error(Errc::Invalid, fmt::format("{}: a unix socket needs an absolute path", text));
        if (path.size() >= 108) return make_error(Errc::Invalid, fmt::format("{}: socket path too long", text));
        return Endpoint{Endpoint::Kind::Unix, std::string(path), {}, 0, std::string(text)};
    }
    if (text.rfind("inet:", 0) == 0) return parse_inet(text.substr(5), text);
    return make_error(Errc::Invalid, fmt::format("{}: expected unix:/path or inet:host:port", text));
}

}  // namespace unit::common
