// target.hpp: the unitpolicy daemon under attack: where its sockets are,
// the limits it was started with (the attacks and the memory bounds derive
// from them), and its live counters from the control socket.
//
// read_counters() (tests/toolkit/socket.hpp) connects to the control socket
// and parses the one JSON line of integer counters the daemon serves
// (unitpolicy(8), "Control socket"); it returns an empty map when the
// daemon does not answer within 2 s.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "socket.hpp"

namespace unit::attacks {

struct Limits {
    std::size_t max_connections = 1000;
    std::size_t max_line = 8192;
    std::size_t max_request = 65536;
    std::chrono::seconds request_timeout{2};
    unsigned threads = 2;
};

// What the server may hold per connection beside the request bytes (see
// src/policyd/server.cpp): one parsing slice past a limit, and the answers
// it keeps while a client does not read them (pending and being sent).
inline constexpr std::size_t server_feed_slice = 128;
inline constexpr std::size_t server_pending_output = 16 * 1024;
inline constexpr std::size_t server_read_chunk = 16 * 1024;

struct Target {
    std::string policy;  // unix socket paths
    std::string socketmap;
    std::string control;
    int pid = -1;
    Limits limits;
    std::string mailbox;  // an existing mailbox, for the well-behaved client
    std::string alias;    // an alias (its answer lists two targets)
};

using toolkit::Counters;
using toolkit::read_counters;

std::uint64_t counter(const Counters& counters, const std::string& name);  // 0 when absent

// Polls the counters until connections_open is at most `open`; false after `timeout`.
bool wait_open_at_most(const Target& target, std::uint64_t open, std::chrono::milliseconds timeout);

}  // namespace unit::attacks
