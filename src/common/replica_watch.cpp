#include "common/replica_watch.hpp"

#include <ctime>

#include "common/log.hpp"

namespace unit::common {

void ReplicaWatch::observe(const DirectoryStatus& status, ValidationCache* validation,
                           ReplicaCounters& counters) noexcept {
    counters.notes.set_pending(status.pending.has_value());
    try {
        observe_changes(status, validation, counters);
    } catch (const std::exception&) {  // allocation failure: the next call notes it
    }
}

void ReplicaWatch::observe_changes(const DirectoryStatus& status, ValidationCache* validation,
                                   ReplicaCounters& counters) {
    if (status.serving && status.snapshot.generation != generation_seen_) {  // the first snapshot, or a switch
        generation_seen_ = status.snapshot.generation;
        counters.generation.store(static_cast<std::uint64_t>(generation_seen_), std::memory_order_relaxed);
        counters.published_at.store(static_cast<std::uint64_t>(status.snapshot.published_at.value_or(0)),
                                    std::memory_order_relaxed);
        counters.notes.serving(status.snapshot.primary_id);
        if (auto text = clock_skew_to_report(status, validation, std::time(nullptr)))
            log(Severity::Warning, "replica: {}", *text);
    }
    if (validation)
        if (auto text = validation->record_problem_to_report()) log(Severity::Warning, "replica: {}", *text);
    if (status.switches != switches_seen_) {
        counters.switches.fetch_add(status.switches - switches_seen_, std::memory_order_relaxed);
        switches_seen_ = status.switches;
        counters.notes.serving(status.snapshot.primary_id);  // a takeover may keep the generation
        counters.notes.switched();
        log(Severity::Info, "replica: switched to generation {}", status.snapshot.generation);
    }
    if (status.refusals != refusals_seen_) {
        refusals_seen_ = status.refusals;
        if (auto text = refusal_to_report(status, validation)) {
            counters.refusals.fetch_add(1, std::memory_order_relaxed);
            counters.refusal_reasons[static_cast<std::size_t>(status.refused->reason)].fetch_add(
                1, std::memory_order_relaxed);
            log(Severity::Warning, "replica: refused {}", *text);
            counters.notes.refused(to_string(status.refused->reason), std::time(nullptr), std::move(*text));
        }
    }
    if (status.problem != problem_seen_) {  // each new problem once, not per request
        problem_seen_ = status.problem;
        if (!problem_seen_.empty() && !status.refused) log(Severity::Warning, "replica: {}", problem_seen_);
    }
}

}  // namespace unit::common
