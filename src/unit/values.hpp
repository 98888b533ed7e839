// values.hpp: the values of the database that reach Postfix verbatim, and
// which of them are well-formed.
//
// A unit's transport and nexthop become a transport(5) answer
// ("transport:nexthop"); an alias target becomes one recipient of a
// virtual(5) answer ("t1,t2,..."). A value with a comma, white space or a
// control character would change what Postfix reads (two recipients, a
// broken reply, a forged log line), and the transports error, discard and
// retry would bounce, drop or defer mail without a word. unitctl refuses such
// values when they are written; the readers treat one found in a replica as
// bad data (a tempfail for the address that needs it, never emitted).
//
// Each check returns nothing when the value is good, and Errc::Invalid with
// the reason otherwise. Pure functions, thread-safe, no logging.
#pragma once

#include <string_view>

#include "unit/export.hpp"
#include "unit/result.hpp"

namespace unit {

// The transports that are Postfix's own special services, never a unit's
// route: error(8) and discard(8) (bounce or drop), retry (defer).
inline constexpr std::string_view reserved_transports[] = {"error", "discard", "retry"};

// A master.cf service name: letters, digits, '-', '_', '.', at most 64
// bytes, not one of reserved_transports nor `hold_transport` (the daemons'
// hold transport: a unit routed through it would never be delivered).
UNIT_EXPORT Result<void> check_transport(std::string_view transport,
                                         std::string_view hold_transport = "unithold") noexcept;

// A Postfix next-hop as smtp(8) and lmtp(8) take it: host, host:port,
// [host], [host]:port, [IPv6 address] and [IPv6 address]:port (IPv6 only in
// brackets; an "ipv6:" prefix inside them is allowed), with an optional
// "inet:" prefix, or "unix:/path" (an LMTP socket). host is a DNS name
// (letters, digits, '-', '_', dots) or an IPv4 address; port a number from
// 1 to 65535 or a service name. At most 255 bytes.
UNIT_EXPORT Result<void> check_nexthop(std::string_view nexthop) noexcept;

// An alias target that is exactly one address: local@domain, a single '@',
// no white space, control characters, comma, quotes, angle brackets,
// parentheses, ';', ':' or '\', at most max_address_length bytes.
UNIT_EXPORT Result<void> check_alias_target(std::string_view target) noexcept;

}  // namespace unit
