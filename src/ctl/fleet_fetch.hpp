// fleet_fetch.hpp: GET each host's metrics URL, all at once.
//
// The requests run concurrently on one thread (Boost.Asio), each with its
// own deadline covering name resolution, connection, request and reply:
// a fleet of 200 hosts takes about one timeout, not 200. A reply is taken
// when its status is 200 and its body at most max_body bytes. Logs
// nothing; what went wrong for a host is its Fetched::error.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "ctl/fleet_hosts.hpp"

namespace unit::ctl {

struct Fetched {
    std::string body;
    std::string error;  // empty when the host answered 200
};

inline constexpr std::size_t max_body = 8 * 1024 * 1024;

// One Fetched per host, in the hosts' order.
std::vector<Fetched> fetch_all(const std::vector<FleetHost>& hosts, std::chrono::milliseconds timeout);

}  // namespace unit::ctl
