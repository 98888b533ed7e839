// stats.hpp: the live counters of a running unitpolicy, shared by its worker
// threads (relaxed atomics: each counter is exact, a snapshot of several is
// not a transaction) and served on the control socket.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/replica_watch.hpp"
#include "policyd/answers.hpp"
#include "unit/directory.hpp"
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

struct Stats {
    using Counter = std::atomic<std::uint64_t>;
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

    Counter connections_accepted{0}, connections_open{0}, connections_closed_idle{0}, protocol_errors{0};
    Counter connections_closed_full{0};  // closed to make room for a new client (max_connections)
    Counter connections_closed_peer{0};  // closed to make room for its peer's new one (max_connections_per_peer)
    Counter connections_closed_slow{0};  // a request or an answer stalled past request_timeout
    Counter policy_requests{0}, socketmap_requests{0};
    Counter socketmap_partial_keys{0};  // keys that are not a full address: no resolution
    std::array<Counter, 5> verdicts{};  // by VerdictKind
    std::array<Counter, 4> replies{};   // by ReplyKind
    std::array<Counter, 8> outcomes{};  // by unit::Outcome
    std::array<Counter, unit::tempfail_cause_count> tempfail_causes{};  // by unit::TempfailCause
    common::ReplicaCounters replica;                                    // counted by each worker's ReplicaWatch
    LatencyHistogram latency;
    // The held-mail watcher (held_mail.hpp): messages released, scans that
    // failed, when the last scan ended (Unix time, 0: none yet), and what it
    // found held, per unit.
    Counter held_released{0}, held_scan_errors{0}, held_scanned_at{0};
    void set_held(std::map<std::string, std::uint64_t> by_unit);
    std::map<std::string, std::uint64_t> held() const;

    void count(VerdictKind v) noexcept { verdicts[static_cast<int>(v)].fetch_add(1, std::memory_order_relaxed); }
    void count(ReplyKind r) noexcept { replies[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed); }
    void count(Outcome o) noexcept { outcomes[static_cast<int>(o)].fetch_add(1, std::memory_order_relaxed); }
    void count(TempfailCause c) noexcept {
        tempfail_causes[static_cast<int>(c)].fetch_add(1, std::memory_order_relaxed);
    }

private:
    mutable std::mutex held_mutex_;
    std::map<std::string, std::uint64_t> held_;
};

// What the daemon says of its replica beyond the counters: whether a
// replacement is being validated now.
struct ReplicaView {
    bool validating = false;
};

// The counters, the replica's state and the last refused file, as one flat
// JSON object (the control socket's answer); the counters in the Prometheus
// text format (families named unitpolicy_*). Both read one list of the
// counters (stats.cpp).
std::string stats_json(const Stats& stats, const ReplicaView& replica = {});
std::string stats_prometheus(const Stats& stats);

}  // namespace unit::policyd
