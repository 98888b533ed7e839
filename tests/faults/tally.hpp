// tally.hpp: the answers of one fault phase, counted as the load generator
// sees them, by protocol, by the workload's truth (existing or unknown
// address) and by verdict.
//
// A Tally counts every request of the phase in `all`; the requests that
// started inside the window [window_begin, window_end) also in `during`
// (with their latencies), and those that started at or after settled_from
// also in `settled`. Times are steady_clock. observe() is called from the
// load generator's threads: counts are atomic, the window histogram has a
// mutex (only requests inside the window take it). Logs nothing.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "load.hpp"

namespace unit::faults {

using Clock = std::chrono::steady_clock;

struct Counts {
    // [protocol][exists][verdict]
    std::array<std::array<std::array<std::atomic<std::uint64_t>, 4>, 2>, 2> n{};

    void add(load::Protocol protocol, bool exists, load::Verdict verdict) noexcept;
    std::uint64_t get(load::Protocol protocol, bool exists, load::Verdict verdict) const noexcept;
    // Summed over both protocols.
    std::uint64_t get(bool exists, load::Verdict verdict) const noexcept;
    // Summed over both protocols and both kinds of address.
    std::uint64_t get(load::Verdict verdict) const noexcept;
    std::uint64_t total() const noexcept;
};

class Tally {
public:
    void observe(const load::Request& request, const load::Reply& reply, std::chrono::nanoseconds latency);

    // The window and the settling point; before they are set nothing is in them.
    void set_window(Clock::time_point begin, Clock::time_point end) noexcept;
    void set_settled_from(Clock::time_point from) noexcept;

    const Counts& all() const noexcept { return all_; }
    const Counts& during() const noexcept { return during_; }
    const Counts& settled() const noexcept { return settled_; }
    // Percentile of the latencies of the requests in the window, in µs.
    double window_percentile_us(double p) const;

private:
    static constexpr std::int64_t never = INT64_MAX;
    Counts all_, during_, settled_;
    std::atomic<std::int64_t> window_begin_{never}, window_end_{never}, settled_from_{never};
    mutable std::mutex window_mutex_;
    load::Histogram window_latency_;
};

}  // namespace unit::faults
