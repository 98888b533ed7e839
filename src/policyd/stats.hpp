// stats.hpp: the live counters of a running unitpolicy, shared by its worker
// threads (relaxed atomics: each counter is exact, a snapshot of several is
// not a transaction) and served on the control socket.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "unit/resolver.hpp"

namespace unit::policyd {

// Request latency in microseconds, in buckets of a quarter power of two.
class LatencyHistogram {
public:
    void record(std::uint64_t micros) noexcept;
    // Upper bound of the bucket holding the p-th percentile (0 < p <= 100); 0 when empty.
    std::uint64_t percentile(double p) const noexcept;
    std::uint64_t count() const noexcept;
    // How many took at most `micros` (bucket upper bounds at or below it).
    std::uint64_t count_at_most(std::uint64_t micros) const noexcept;
    std::uint64_t sum_micros() const noexcept { return sum_.load(std::memory_order_relaxed); }

private:
    static constexpr int buckets = 4 * 40;
    std::array<std::atomic<std::uint64_t>, buckets> counts_{};
    std::atomic<std::uint64_t> sum_{0};
};

enum class ReplyKind { Ok, NotFound, Temp, Perm };
enum class VerdictKind { Dunno, Reject, Defer, Tempfail, NotRcpt };

struct Stats {
    using Counter = std::atomic<std::uint64_t>;
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

    Counter connections_accepted{0}, connections_open{0}, connections_closed_idle{0}, protocol_errors{0};
    Counter connections_closed_full{0};  // closed to make room for a new client (max_connections)
    Counter connections_closed_slow{0};  // a request or an answer stalled past request_timeout
    Counter policy_requests{0}, socketmap_requests{0};
    Counter socketmap_partial_keys{0};  // Postfix's "user", "@domain", "domain" lookups: no resolution
    std::array<Counter, 5> verdicts{};        // by VerdictKind
    std::array<Counter, 4> replies{};         // by ReplyKind
    std::array<Counter, 8> outcomes{};        // by unit::Outcome
    std::array<Counter, unit::tempfail_cause_count> tempfail_causes{}; // by unit::TempfailCause
    Counter replica_switches{0}, replica_refusals{0};
    // The snapshot answering now (the newest any worker has switched to).
    Counter replica_generation{0}, replica_published_at{0};
    LatencyHistogram latency;

    void count(VerdictKind v) noexcept { verdicts[static_cast<int>(v)].fetch_add(1, std::memory_order_relaxed); }
    void count(ReplyKind r) noexcept { replies[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed); }
    void count(Outcome o) noexcept { outcomes[static_cast<int>(o)].fetch_add(1, std::memory_order_relaxed); }
    void count(TempfailCause c) noexcept {
        tempfail_causes[static_cast<int>(c)].fetch_add(1, std::memory_order_relaxed);
    }
};

// The counters as "name value" lines, as one JSON object, or in the
// Prometheus text format (families named unitpolicy_*).
std::string stats_text(const Stats& stats);
std::string stats_json(const Stats& stats);
std::string stats_prometheus(const Stats& stats);

}  // namespace unit::policyd
