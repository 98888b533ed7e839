// stats.hpp: the live counters of a running unitmilter, for --metrics.
// Relaxed atomics: each counter is exact, a snapshot of several is not a
// transaction. libmilter's callbacks carry no pointer of ours but the
// per-connection one, so the filter counts into the process's one
// MilterStats (filter_stats(), filter.hpp).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "common/replica_watch.hpp"
#include "unit/directory.hpp"

namespace unit::milter {

struct MilterStats {
    using Counter = std::atomic<std::uint64_t>;
    // When the filter started, for unitmilter_uptime_seconds: main() sets
    // it first thing, before any other thread runs (the default, the
    // object's construction, is the first call of filter_stats()).
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

    Counter connections{0};
    Counter messages_accepted{0};
    // Refused, by enhanced status code: 451 4.4.6 routing loop, 550 5.7.1
    // forged header flood, 451 4.3.0 directory unavailable or internal error.
    Counter refused_loop{0}, refused_header_flood{0}, refused_other{0};
    Counter loops_released{0};
    Counter headers_removed{0};                          // forged routing headers from untrusted clients
    Counter recipients_added{0}, recipients_removed{0};  // alias expansion
    Counter directory_tempfails{0};                      // messages with a recipient the directory could not resolve
    common::ReplicaCounters replica;                     // counted by each pooled connection's ReplicaWatch

    static void add(Counter& counter, std::uint64_t n = 1) noexcept { counter.fetch_add(n, std::memory_order_relaxed); }
};

// The counters in the Prometheus text format (families named unitmilter_*),
// from one list of them (stats.cpp).
std::string stats_prometheus(const MilterStats& stats);

}  // namespace unit::milter
