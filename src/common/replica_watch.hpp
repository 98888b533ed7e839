// replica_watch.hpp: how a daemon follows its replica. Each thread that owns
// a Directory (a unitpolicy worker, a unitmilter pooled connection) keeps a
// ReplicaWatch and shows it the Directory's status after each use; the
// watch counts into the daemon's one ReplicaCounters and logs what is news:
// a switch, a refused file (each file once among the Directories sharing a
// ValidationCache), a snapshot published in the future, a record of checked
// files that cannot be written, and a new reason why the file is not served.
//
// ReplicaCounters are relaxed atomics (each exact, several not a
// transaction) beside the ReplicaNotes under their mutex; a ReplicaWatch
// belongs to one thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/counter_list.hpp"
#include "common/metrics_http.hpp"
#include "common/replica_metrics.hpp"
#include "unit/directory.hpp"

namespace unit::common {

struct ReplicaCounters {
    using Counter = std::atomic<std::uint64_t>;
    Counter switches{0};  // good replacements switched to, by every Directory
    // Replacements refused, each file once, in all and by reason.
    Counter refusals{0};
    std::array<Counter, unit::refusal_reason_count> refusal_reasons{};  // by unit::RefusalReason
    // The snapshot a Directory last switched to (the first one opened, or a
    // replacement): its generation and meta.published_at (0: not stamped).
    Counter generation{0}, published_at{0};
    // Its primary, a pending replacement, the refusal holding.
    ReplicaNotes notes;
};

class ReplicaWatch {
public:
    // Starts from the Directory's status now: switches and refusals it
    // already counts are not news.
    explicit ReplicaWatch(const DirectoryStatus& now) noexcept
        : switches_seen_(now.switches), refusals_seen_(now.refusals) {}

    // Counts and logs what changed since the last call. Never throws: on
    // allocation failure what is left is noted at the next call.
    void observe(const DirectoryStatus& status, ValidationCache* validation, ReplicaCounters& counters) noexcept;

private:
    void observe_changes(const DirectoryStatus& status, ValidationCache* validation, ReplicaCounters& counters);

    std::uint64_t switches_seen_, refusals_seen_;
    std::int64_t generation_seen_ = -1;
    std::string problem_seen_;
};

// The counters' part of a daemon's counter list (counter_list.hpp).
template <class Out>
void each_replica_counter(const ReplicaCounters& c, Out& out) {
    using Type = MetricsText::Type;
    auto get = [](const ReplicaCounters::Counter& n) { return static_cast<double>(n.load(std::memory_order_relaxed)); };
    out.one("replica_switches", "replica_switches_total", Type::Counter,
            "Switches to a new replica file (per database connection).", get(c.switches));
    out.one("replica_refusals", "", Type::Counter, "", get(c.refusals));  // Prometheus sums the family below
    LabelledSamples reasons;
    for (std::size_t i = 0; i < unit::refusal_reason_count; ++i)
        reasons.emplace_back(to_string(static_cast<RefusalReason>(i)), get(c.refusal_reasons[i]));
    out.by("replica_refusals_{}", "replica_refusals_total", Type::Counter,
           "Replacement replica files refused (each file once), by reason.", "reason", reasons);
    out.one("replica_generation", "replica_generation", Type::Gauge, "Generation of the snapshot last switched to.",
            get(c.generation));
    out.one("replica_published_at", "replica_published_timestamp_seconds", Type::Gauge,
            "When that snapshot was published (0: not stamped).", get(c.published_at));
}

}  // namespace unit::common
