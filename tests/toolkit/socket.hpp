// socket.hpp: what every test client of the daemons does first: connect
// to a Unix socket; and what it reads from a control socket.
//
// Contract:
// - connect_unix() makes one blocking, close-on-exec connection. It never
//   throws: on failure it returns -1 with `why` set (the path is in it).
//   A non-zero send timeout bounds each send and the connect itself (Linux
//   honours SO_SNDTIMEO when the listener's backlog is full); a non-zero
//   receive timeout bounds each read. Zero leaves the call unbounded.
// - read_control() reads a control socket's answer (unitpolicy(8),
//   "Control socket": one JSON line, then the end of the connection)
//   without writing anything; nullopt when it cannot connect or the
//   connection is not closed within `timeout`.
// - parse_counters() reads that flat JSON object of unsigned integers as
//   name -> value; it stops at the first value that is not one.
// Nothing here logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace unit::toolkit {

int connect_unix(const std::string& path, std::string& why,
                 std::chrono::milliseconds send_timeout = std::chrono::milliseconds::zero(),
                 std::chrono::milliseconds receive_timeout = std::chrono::milliseconds::zero());

using Counters = std::map<std::string, std::uint64_t>;

std::optional<std::string> read_control(const std::string& path,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(2));
Counters parse_counters(std::string_view json);
// read_control() then parse_counters(); empty when the daemon does not answer.
Counters read_counters(const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace unit::toolkit
