// networks.hpp: the trusted_networks list and matching a client address
// against it.
//
// Networks::parse() reads IPv4 and IPv6 networks separated by commas and/or
// white space: "10.0.0.0/8, 192.0.2.7 2001:db8::/32 [::1]/128". An address
// without "/N" is one host. IPv6 may be written in brackets, as Postfix's
// mynetworks does. Addresses are parsed with inet_pton(); an entry with bits
// set beyond its prefix length ("10.0.0.1/8") is refused, as a typo.
// Outcomes: the list, or Errc::Invalid naming the bad entry. An empty text is
// an empty list (nothing is trusted).
//
// contains() matches a client address: an IpAddress (from_sockaddr(), as
// libmilter's connect callback gives it), or a text as the {client_addr}
// macro carries it ("192.0.2.1", "2001:db8::1", "IPv6:2001:db8::1",
// "[192.0.2.1]"). An IPv4-mapped IPv6 address (::ffff:192.0.2.1) matches the
// IPv4 networks. Anything unparsable matches nothing.
//
// Peer::from_connect() reads the client of a milter connection as the
// connect callback gives it (the {client_addr} macro when the callback has
// no IP address). Postfix runs non_smtpd_milters on mail that has no SMTP
// client (sendmail(1), postsuper -r) with a stand-in client: "localhost",
// 127.0.0.1 (or ::1 when inet_protocols lists IPv6 first) and port 0
// (cleanup_milter.c, cleanup_milter_client_init()). No TCP client has port
// 0, so a connect with port 0 is such a local submission, and trusted_by()
// never trusts it, whatever trusted_networks says: loopback in the list must
// not let local users forge routes. (A port smtpd does not know, as from an
// XCLIENT without PORT, also reaches the filter as 0: that client is not
// trusted either.)
//
// too_wide() names the networks wider than the widest private range of their
// family (10.0.0.0/8; fc00::/7): IPv4 shorter than /8, IPv6 shorter than /7,
// 0.0.0.0/0 and ::/0 above all. Such a list trusts clients of the whole
// Internet, or of a large part of it, with the routing headers: unitmilter
// warns about it at start-up and reload (settings.hpp, warnings()).
//
// Values; const members are thread-safe; no logging; noexcept but parse().
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "unit/result.hpp"

namespace unit::milter {

struct IpAddress {
    int family = 0;                        // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{};  // AF_INET: the first 4

    // IPv4-mapped IPv6 becomes IPv4.
    static std::optional<IpAddress> parse(std::string_view text) noexcept;
    static std::optional<IpAddress> from_sockaddr(const sockaddr* address) noexcept;
    std::string to_string() const;
};

class Networks;

struct Peer {
    std::optional<IpAddress> address;
    bool local_submission = false;  // port 0: Postfix's stand-in for mail without an SMTP client

    static Peer from_connect(const sockaddr* hostaddr, std::string_view client_addr_macro) noexcept;
    bool trusted_by(const Networks& networks) const noexcept;
};

class Networks {
public:
    struct Network {
        IpAddress address;
        int prefix = 0;  // bits
    };

    static Result<Networks> parse(std::string_view text);

    bool contains(const IpAddress& address) const noexcept;
    bool contains(std::string_view address) const noexcept;
    bool empty() const noexcept { return networks_.empty(); }
    const std::vector<Network>& networks() const noexcept { return networks_; }
    // The canonical spelling, "10.0.0.0/8, 2001:db8::/32", for --help and logs.
    std::string to_string() const;
    // The networks wider than private ranges, each as "0.0.0.0/0", in order.
    std::vector<std::string> too_wide() const;

private:
    std::vector<Network> networks_;
};

}  // namespace unit::milter
