// probe.hpp: how long until the daemon, on every one of its worker
// threads, answers an address as existing.
//
// A Probe keeps `per_protocol` connections of each protocol open (opened
// one after the other, so the daemon's round-robin spreads them over its
// workers; give at least as many as the daemon has threads). until_accepted()
// asks for the address on each connection in turn (policy RCPT and the
// `recipient` map) until every connection has answered it as existing once,
// and returns the time from `since` to the last of those first answers; it
// returns nullopt when `limit` passes first. Not thread-safe. Logs nothing.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "load.hpp"

namespace unit::faults {

class Probe {
public:
    Probe(const std::string& policy_socket, const std::string& socketmap_socket, unsigned per_protocol);

    // Opens every connection with one request for `address`; false when one gets no answer.
    bool connect(const std::string& address);
    std::optional<std::chrono::nanoseconds> until_accepted(const std::string& address,
                                                           std::chrono::steady_clock::time_point since,
                                                           std::chrono::milliseconds limit);

private:
    struct Line {
        std::unique_ptr<load::Client> client;
        load::Protocol protocol;
    };
    load::Request request_for(const Line& line, const std::string& address) const;

    std::vector<Line> lines_;
};

}  // namespace unit::faults
