#include "unit/values.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "unit/address.hpp"

namespace unit {

namespace {

constexpr std::size_t max_transport_length = 64;
constexpr std::size_t max_nexthop_length = 255;

bool is_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool is_hostname(std::string_view s) noexcept {
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool is_ipv6(std::string_view s) noexcept {
    if (s.substr(0, 5) == "ipv6:" || s.substr(0, 5) == "IPv6:") s.remove_prefix(5);
    if (s.find(':') == std::string_view::npos) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    });
}

bool is_port(std::string_view s) noexcept {
    if (s.empty()) return false;
    if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        unsigned port = 0;
        auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), port);
        return error == std::errc() && end == s.data() + s.size() && port >= 1 && port <= 65535;
    }
    return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-' || c == '_'; });
}

bool is_unix_path(std::string_view s) noexcept {
    return s.size() > 1 && s.front() == '/' && std::all_of(s.begin(), s.end(), [](char c) {
               return is_alnum(c) || c == '/' || c == '-' || c == '_' || c == '.';
           });
}

// host, host:port, [host], [host]:port, [ipv6], [ipv6]:port.
bool is_inet_nexthop(std::string_view s) noexcept {
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) return false;
        auto inside = s.substr(1, close - 1);
        auto rest = s.substr(close + 1);
        if (!is_hostname(inside) && !is_ipv6(inside)) return false;
        return rest.empty() || (rest.front() == ':' && is_port(rest.substr(1)));
    }
    auto colon = s.find(':');
    if (colon == std::string_view::npos) return is_hostname(s);
    return is_hostname(s.substr(0, colon)) && is_port(s.substr(colon + 1));
}

bool has_control_or_space(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
}

// For messages: a value with control characters is shown escaped.
std::string shown(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 80)) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '\\' || c == '"') out += fmt::format("\\x{:02x}", u);
        else out += c;
    }
    if (s.size() > 80) out += "...";
    return out;
}

// Why each value is refused, or nullptr when it is good.
const char* transport_problem(std::string_view transport, std::string_view hold_transport) noexcept {
    if (transport.empty()) return "empty";
    if (transport.size() > max_transport_length) return "longer than 64 bytes";
    if (!std::all_of(transport.begin(), transport.end(),
                     [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; }))
        return "a master.cf service name is letters, digits, '-', '_' and '.'";
    for (auto reserved : reserved_transports)
        if (transport == reserved) return "Postfix's own special service, not a route to a unit";
    if (transport == hold_transport) return "the hold transport: mail routed through it is never delivered";
    return nullptr;
}

const char* nexthop_problem(std::string_view nexthop) noexcept {
    if (nexthop.empty()) return "empty";
    if (nexthop.size() > max_nexthop_length) return "longer than 255 bytes";
    if (has_control_or_space(nexthop) || nexthop.find(',') != std::string_view::npos)
        return "white space, a control character or a comma";
    if (nexthop.substr(0, 5) == "unix:")
        return is_unix_path(nexthop.substr(5)) ? nullptr : "unix: takes an absolute path";
    auto inet = nexthop.substr(0, 5) == "inet:" ? nexthop.substr(5) : nexthop;
    return is_inet_nexthop(inet) ? nullptr : "expected host, host:port, [host], [host]:port or [IPv6]:port";
}

const char* alias_target_problem(std::string_view target) noexcept {
    if (target.empty()) return "empty";
    if (target.size() > max_address_length) return "longer than 320 bytes";
    if (has_control_or_space(target)) return "white space or a control character";
    constexpr std::string_view specials = ",\"<>();:\\[]";
    if (target.find_first_of(specials) != std::string_view::npos)
        return "not exactly one address (a comma, quote, bracket or ';' ':')";
    auto at = target.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == target.size() ||
        target.find('@', at + 1) != std::string_view::npos)
        return "not exactly one address local@domain";
    return nullptr;
}

// The verdict on a value: nothing, or Errc::Invalid saying why.
Result<void> verdict(std::string_view what, std::string_view value, const char* problem) noexcept {
    if (problem == nullptr) return {};
    try {
        return make_error(Errc::Invalid, fmt::format("bad {} \"{}\": {}", what, shown(value), problem));
    } catch (const std::exception& e) {  // allocation failure: still a refusal
        return make_error(Errc::Invalid, e.what());
    }
}

}  // namespace

Result<void> check_transport(std::string_view transport, std::string_view hold_transport) noexcept {
    return verdict("transport", transport, transport_problem(transport, hold_transport));
}

Result<void> check_nexthop(std::string_view nexthop) noexcept {
    return verdict("nexthop", nexthop, nexthop_problem(nexthop));
}

Result<void> check_alias_target(std::string_view target) noexcept {
    return verdict("alias target", target, alias_target_problem(target));
}

}  // namespace unit
