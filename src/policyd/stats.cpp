#include "policyd/stats.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include "common/counter_list.hpp"
#include "common/json_writer.hpp"
#include "common/metrics_http.hpp"
#include "common/process_metrics.hpp"
#include "common/version.hpp"

#include <bit>
#include <utility>
#include <vector>

namespace unit::policyd {

namespace {

int bucket_of(std::uint64_t micros) noexcept {
    if (micros < 4) return static_cast<int>(micros);
    int log2 = std::bit_width(micros) - 1;  // micros in [2^log2, 2^(log2+1))
    int quarter = static_cast<int>((micros >> (log2 - 2)) & 3);
    return std::min(4 * (log2 - 1) + quarter, 4 * 40 - 1);
}

std::uint64_t upper_bound_of(int bucket) noexcept {
    if (bucket < 4) return static_cast<std::uint64_t>(bucket);
    int log2 = bucket / 4 + 1;
    int quarter = bucket % 4;
    return (std::uint64_t{1} << log2) + (static_cast<std::uint64_t>(quarter + 1) << (log2 - 2)) - 1;
}

double get(const std::atomic<std::uint64_t>& c) { return static_cast<double>(c.load(std::memory_order_relaxed)); }

// A family counted by an enum: a sample per value, named by `name_of`.
template <std::size_t N, class NameOf>
common::LabelledSamples by_index(const std::array<Stats::Counter, N>& counters, NameOf name_of, std::size_t first = 0) {
    common::LabelledSamples samples;
    for (std::size_t i = first; i < N; ++i) samples.emplace_back(name_of(i), get(counters[i]));
    return samples;
}

constexpr const char* verdict_names[] = {"dunno", "reject", "defer", "tempfail", "not_rcpt"};
constexpr const char* reply_names[] = {"ok", "notfound", "temp", "perm"};

// The one list of unitpolicy's counters (counter_list.hpp): each family
// once, with its control-socket key, Prometheus name, type and help. The
// latency histogram and the replica's notes are written apart (their shapes
// differ between the two outputs).
template <class Out>
void each_counter(const Stats& s, Out& out) {
    using Type = common::MetricsText::Type;
    const auto uptime = std::chrono::duration<double>(std::chrono::system_clock::now() - s.started).count();
    out.one("uptime_seconds", "uptime_seconds", Type::Gauge, "Seconds since the daemon started.", uptime);
    out.one("connections_accepted", "connections_accepted_total", Type::Counter, "Client connections accepted.",
            get(s.connections_accepted));
    out.one("connections_open", "connections_open", Type::Gauge, "Client connections open now.",
            get(s.connections_open));
    out.one("connections_closed_idle", "connections_closed_idle_total", Type::Counter,
            "Connections closed after the idle timeout.", get(s.connections_closed_idle));
    out.one("connections_closed_full", "connections_closed_full_total", Type::Counter,
            "Connections closed to make room at max_connections (the one waiting longest for a request).",
            get(s.connections_closed_full));
    out.one("connections_closed_peer", "connections_closed_peer_total", Type::Counter,
            "Connections closed to make room for a new one from the same peer at max_connections_per_peer.",
            get(s.connections_closed_peer));
    out.one("connections_closed_slow", "connections_closed_slow_total", Type::Counter,
            "Connections closed after request_timeout (a request trickling in, or answers left unread).",
            get(s.connections_closed_slow));
    out.one("protocol_errors", "protocol_errors_total", Type::Counter,
            "Connections closed for a malformed or oversized request.", get(s.protocol_errors));
    out.by("{}_requests", "requests_total", Type::Counter, "Requests answered, by protocol.", "protocol",
           {{"policy", get(s.policy_requests)}, {"socketmap", get(s.socketmap_requests)}});
    out.by("policy_{}", "policy_verdicts_total", Type::Counter, "Policy answers, by kind.", "verdict",
           by_index(s.verdicts, [](std::size_t i) { return verdict_names[i]; }));
    out.by("socketmap_{}", "socketmap_replies_total", Type::Counter, "Socketmap answers, by kind.", "reply",
           by_index(s.replies, [](std::size_t i) { return reply_names[i]; }));
    out.one("socketmap_partial_keys", "socketmap_partial_keys_total", Type::Counter,
            "Keys that are not a full address (user, @domain, domain, .domain): NOTFOUND without a resolution.",
            get(s.socketmap_partial_keys));
    out.by("outcome_{}", "resolutions_total", Type::Counter, "Address resolutions, by outcome.", "outcome",
           by_index(s.outcomes, [](std::size_t i) { return to_string(static_cast<Outcome>(i)); }));
    out.by("tempfail_{}", "tempfails_total", Type::Counter, "Temporary failures, by cause.", "cause",
           by_index(
               s.tempfail_causes, [](std::size_t i) { return to_string(static_cast<TempfailCause>(i)); }, 1));
    common::each_replica_counter(s.replica, out);
    const auto held = s.held();
    common::LabelledSamples held_by_unit;
    double held_total = 0;
    for (const auto& [unit, count] : held) {
        held_by_unit.emplace_back(unit, static_cast<double>(count));
        held_total += static_cast<double>(count);
    }
    out.one("held_messages", "", Type::Gauge, "", held_total);  // Prometheus has it by unit
    out.by("", "held_messages", Type::Gauge,
           "Deferred messages held for a unit, at the last scan of the queue (unit=\"(none)\": held recipients "
           "without a route now).",
           "unit", held_by_unit);
    out.one("", "held_scan_timestamp_seconds", Type::Gauge, "When the last scan of the queue ended (0: none yet).",
            get(s.held_scanned_at));
    out.one("held_released", "held_released_total", Type::Counter,
            "Held messages released (postqueue -i) once their route changed.", get(s.held_released));
    out.one("held_scan_errors", "held_scan_errors_total", Type::Counter,
            "Scans of the queue that failed (postqueue missing or failing).", get(s.held_scan_errors));
}

}  // namespace

void LatencyHistogram::record(std::uint64_t micros) noexcept {
    counts_[static_cast<std::size_t>(bucket_of(micros))].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(micros, std::memory_order_relaxed);
}

std::uint64_t LatencyHistogram::count_at_most(std::uint64_t micros) const noexcept {
    std::uint64_t total = 0;
    for (int i = 0; i < buckets && upper_bound_of(i) <= micros; ++i)
        total += counts_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
    return total;
}

std::uint64_t LatencyHistogram::count() const noexcept {
    std::uint64_t total = 0;
    for (const auto& c : counts_) total += c.load(std::memory_order_relaxed);
    return total;
}

std::uint64_t LatencyHistogram::percentile(double p) const noexcept {
    std::uint64_t total = count();
    if (total == 0) return 0;
    auto rank = static_cast<std::uint64_t>(static_cast<double>(total) * p / 100.0 + 0.5);
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < buckets; ++i) {
        seen += counts_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
        if (seen >= rank) return upper_bound_of(i);
    }
    return upper_bound_of(buckets - 1);
}

void Stats::set_held(std::map<std::string, std::uint64_t> by_unit) {
    std::lock_guard lock(held_mutex_);
    held_ = std::move(by_unit);
}

std::map<std::string, std::uint64_t> Stats::held() const {
    std::lock_guard lock(held_mutex_);
    return held_;
}

std::string stats_json(const Stats& stats, const ReplicaView& replica) {
    common::JsonObject object;
    common::CounterJson out(object);
    each_counter(stats, out);
    object.number("latency_count", static_cast<std::int64_t>(stats.latency.count()));
    object.number("latency_p50_us", static_cast<std::int64_t>(stats.latency.percentile(50)));
    object.number("latency_p99_us", static_cast<std::int64_t>(stats.latency.percentile(99)));
    object.number("latency_p999_us", static_cast<std::int64_t>(stats.latency.percentile(99.9)));
    object.number("replica_validating", replica.validating ? 1 : 0);
    object.string("replica_refused", stats.replica.notes.view().refused_detail);
    return object.text();
}

std::string stats_prometheus(const Stats& s) {
    using common::MetricsText;
    MetricsText m;
    common::build_info(m, "unitpolicy", {{"version", UNIT_VERSION}, {"sqlite", sqlite3_libversion()}});
    common::process_metrics(m, common::read_process());
    common::CounterMetrics out(m, "unitpolicy");
    each_counter(s, out);
    common::replica_metrics(m, "unitpolicy", s.replica.notes.view());
    // Bucket bounds are those of the latency histogram nearest below each le.
    m.family("unitpolicy_request_duration_seconds", MetricsText::Type::Histogram, "Time to answer one request.");
    for (std::uint64_t le : {25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000})
        m.sample("unitpolicy_request_duration_seconds_bucket", static_cast<double>(s.latency.count_at_most(le)),
                 {{"le", fmt::format("{}", static_cast<double>(le) / 1e6)}});
    auto total = static_cast<double>(s.latency.count());
    m.sample("unitpolicy_request_duration_seconds_bucket", total, {{"le", "+Inf"}});
    m.sample("unitpolicy_request_duration_seconds_sum", static_cast<double>(s.latency.sum_micros()) / 1e6);
    m.sample("unitpolicy_request_duration_seconds_count", total);
    return m.text();
}

}  // namespace unit::policyd
