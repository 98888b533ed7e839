#include "milter/networks.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace unit::milter {

namespace {

constexpr std::uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int bits_of(int family) noexcept { return family == AF_INET ? 32 : 128; }

// The widest private range of each family: 10.0.0.0/8 (RFC 1918) and
// fc00::/7 (unique local addresses, RFC 4193).
int narrowest_trusted_prefix(int family) noexcept { return family == AF_INET ? 8 : 7; }

std::string spelling(const Networks::Network& n) { return fmt::format("{}/{}", n.address.to_string(), n.prefix); }

IpAddress unmap(IpAddress a) noexcept {
    if (a.family == AF_INET6 && std::memcmp(a.bytes.data(), mapped_prefix, sizeof mapped_prefix) == 0) {
        IpAddress v4;
        v4.family = AF_INET;
        std::copy_n(a.bytes.begin() + 12, 4, v4.bytes.begin());
        return v4;
    }
    return a;
}

// Whether the first `prefix` bits of a and b agree.
bool same_prefix(const IpAddress& a, const IpAddress& b, int prefix) noexcept {
    int full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a.bytes.data(), b.bytes.data(), static_cast<std::size_t>(full)) != 0) return false;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a.bytes[static_cast<std::size_t>(full)] & mask) == (b.bytes[static_cast<std::size_t>(full)] & mask);
}

// The network address of `a` under `prefix`: the host bits cleared.
IpAddress masked(IpAddress a, int prefix) noexcept {
    for (int bit = prefix; bit < bits_of(a.family); ++bit)
        a.bytes[static_cast<std::size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
    return a;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) noexcept {
    if (text.size() > 1 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    if (text.size() > 5 && (text.substr(0, 5) == "IPv6:" || text.substr(0, 5) == "ipv6:")) text.remove_prefix(5);
    char buffer[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buffer) return std::nullopt;
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    IpAddress a;
    if (text.find(':') == std::string_view::npos) {
        a.family = AF_INET;
        if (inet_pton(AF_INET, buffer, a.bytes.data()) != 1) return std::nullopt;
    } else {
        a.family = AF_INET6;
        if (inet_pton(AF_INET6, buffer, a.bytes.data()) != 1) return std::nullopt;
    }
    return unmap(a);
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* address) noexcept {
    if (address == nullptr) return std::nullopt;
    IpAddress a;
    if (address->sa_family == AF_INET) {
        sockaddr_in in{};
        std::memcpy(&in, address, sizeof in);
        a.family = AF_INET;
        std::memcpy(a.bytes.data(), &in.sin_addr, 4);
        return a;
    }
    if (address->sa_family == AF_INET6) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, address, sizeof in6);
        a.family = AF_INET6;
        std::memcpy(a.bytes.data(), &in6.sin6_addr, 16);
        return unmap(a);
    }
    return std::nullopt;
}

Peer Peer::from_connect(const sockaddr* hostaddr, std::string_view client_addr_macro) noexcept {
    Peer peer;
    peer.address = IpAddress::from_sockaddr(hostaddr);
    if (!peer.address) {
        peer.address = IpAddress::parse(client_addr_macro);
        return peer;
    }
    in_port_t port = 0;
    if (hostaddr->sa_family == AF_INET) {
        sockaddr_in in{};
        std::memcpy(&in, hostaddr, sizeof in);
        port = in.sin_port;
    } else {
        sockaddr_in6 in6{};
        std::memcpy(&in6, hostaddr, sizeof in6);
        port = in6.sin6_port;
    }
    peer.local_submission = port == 0;
    return peer;
}

bool Peer::trusted_by(const Networks& networks) const noexcept {
    return !local_submission && address && networks.contains(*address);
}

std::string IpAddress::to_string() const {
    char buffer[INET6_ADDRSTRLEN];
    if (family != AF_INET && family != AF_INET6) return "unknown";
    if (inet_ntop(family, bytes.data(), buffer, sizeof buffer) == nullptr) return "unknown";
    return buffer;
}

Result<Networks> Networks::parse(std::string_view text) {
    Networks result;
    auto is_separator = [](char c) { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!text.empty()) {
        while (!text.empty() && is_separator(text.front())) text.remove_prefix(1);
        std::size_t end = 0;
        while (end < text.size() && !is_separator(text[end])) ++end;
        std::string_view entry = text.substr(0, end);
        text.remove_prefix(end);
        if (entry.empty()) continue;

        std::string_view address_text = entry, prefix_text;
        if (auto slash = entry.rfind('/'); slash != std::string_view::npos) {
            address_text = entry.substr(0, slash);
            prefix_text = entry.substr(slash + 1);
        }
        if (address_text.size() > 1 && address_text.front() == '[' && address_text.back() == ']')
            address_text = address_text.substr(1, address_text.size() - 2);
        std::optional<IpAddress> address;
        if (address_text.find(':') != std::string_view::npos || address_text.find('.') != std::string_view::npos)
            address = IpAddress::parse(address_text);
        if (!address)
            return make_error(Errc::Invalid,
                              fmt::format("trusted_networks: \"{}\": not an IPv4 or IPv6 address", entry));
        // An IPv4-mapped network written in IPv6 notation is matched as IPv4:
        // its prefix shrinks by the 96 mapped bits.
        bool was_mapped = address_text.find(':') != std::string_view::npos && address->family == AF_INET;
        int max_bits = was_mapped ? 128 : bits_of(address->family);
        int prefix = max_bits;
        if (!prefix_text.empty() || entry.back() == '/') {
            auto [ptr, ec] = std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
            if (ec != std::errc() || ptr != prefix_text.data() + prefix_text.size() || prefix < 0 || prefix > max_bits)
                return make_error(Errc::Invalid, fmt::format("trusted_networks: \"{}\": bad prefix length (0 to {})",
                                                             entry, max_bits));
        }
        if (was_mapped) {
            if (prefix < 96)
                return make_error(Errc::Invalid,
                                  fmt::format("trusted_networks: \"{}\": IPv4-mapped prefix shorter than 96", entry));
            prefix -= 96;
        }
        if (IpAddress network = masked(*address, prefix); network.bytes != address->bytes)
            return make_error(Errc::Invalid,
                              fmt::format("trusted_networks: \"{}\": host bits set beyond /{} (perhaps {}/{})", entry,
                                          prefix, network.to_string(), prefix));
        result.networks_.push_back(Network{*address, prefix});
    }
    return result;
}

bool Networks::contains(const IpAddress& raw) const noexcept {
    IpAddress address = unmap(raw);
    return std::any_of(networks_.begin(), networks_.end(), [&](const Network& n) {
        return n.address.family == address.family && same_prefix(n.address, address, n.prefix);
    });
}

bool Networks::contains(std::string_view address) const noexcept {
    auto parsed = IpAddress::parse(address);
    return parsed && contains(*parsed);
}

std::string Networks::to_string() const {
    std::string out;
    for (const auto& n : networks_) {
        if (!out.empty()) out += ", ";
        out += spelling(n);
    }
    return out;
}

std::vector<std::string> Networks::too_wide() const {
    std::vector<std::string> wide;
    for (const auto& n : networks_)
        if (n.prefix < narrowest_trusted_prefix(n.address.family)) wide.push_back(spelling(n));
    return wide;
}

}  // namespace unit::milter
