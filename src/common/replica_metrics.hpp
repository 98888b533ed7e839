// replica_metrics.hpp: what a daemon tells of its replica on /metrics beyond
// its counters, for a replica barrier (`unitctl fleet`): the primary that
// published the snapshot served, whether a replacement is pending, and the
// refusal holding now and when the last one happened.
//
// ReplicaNotes is written by the threads that watch their Directory's status
// and read by the metrics thread: its strings are under a mutex. Each
// writer stores what it sees; with several (workers, pooled connections),
// the last one wins, which is what a scrape between two of them may show.
#pragma once

#include <atomic>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>

#include "common/metrics_http.hpp"

namespace unit::common {

class ReplicaNotes {
public:
    struct View {
        std::string primary_id;        // meta.primary_id of the snapshot served; "" when none
        bool pending = false;          // a replacement noticed, neither served nor refused yet
        std::string refused_reason;    // the refusal holding now (until a switch); "" when none
        std::time_t last_refusal = 0;  // when the last refusal was noted; 0 when never
        std::string refused_detail;    // its whole text, "PATH: reason: why", when the writer gave one
    };

    void serving(std::string_view primary_id);
    void set_pending(bool pending) noexcept { pending_.store(pending, std::memory_order_relaxed); }
    void refused(std::string_view reason, std::time_t when, std::string detail = {});
    void switched();  // a switch ends the refusal holding
    View view() const;

private:
    mutable std::mutex mutex_;
    View view_;  // but pending: it is noted at every lookup, without the lock
    std::atomic<bool> pending_{false};
};

// Appends PREFIX_replica_info{primary_id="..."} 1, PREFIX_replica_pending,
// PREFIX_replica_refused{reason="..."} 1 (only while a refusal holds) and
// PREFIX_replica_last_refusal_timestamp_seconds.
void replica_metrics(MetricsText& m, std::string_view prefix, const ReplicaNotes::View& view);

}  // namespace unit::common
