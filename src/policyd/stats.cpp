#include "policyd/stats.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

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
    int log2 = std::bit_width(micros) - 1;          // micros in [2^log2, 2^(log2+1))
    int quarter = static_cast<int>((micros >> (log2 - 2)) & 3);
    return std::min(4 * (log2 - 1) + quarter, 4 * 40 - 1);
}

std::uint64_t upper_bound_of(int bucket) noexcept {
    if (bucket < 4) return static_cast<std::uint64_t>(bucket);
    int log2 = bucket / 4 + 1;
    int quarter = bucket % 4;
    return (std::uint64_t{1} << log2) + (static_cast<std::uint64_t>(quarter + 1) << (log2 - 2)) - 1;
}

std::uint64_t get(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

std::vector<std::pair<std::string, std::uint64_t>> flatten(const Stats& s) {
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - s.started);
    std::vector<std::pair<std::string, std::uint64_t>> v = {
        {"uptime_seconds", static_cast<std::uint64_t>(uptime.count())},
        {"connections_accepted", get(s.connections_accepted)},
        {"connections_open", get(s.connections_open)},
        {"connections_closed_idle", get(s.connections_closed_idle)},
        {"connections_closed_full", get(s.connections_closed_full)},
        {"connections_closed_peer", get(s.connections_closed_peer)},
        {"connections_closed_slow", get(s.connections_closed_slow)},
        {"protocol_errors", get(s.protocol_errors)},
        {"policy_requests", get(s.policy_requests)},
        {"socketmap_requests", get(s.socketmap_requests)},
    };
    const char* verdicts[] = {"dunno", "reject", "defer", "tempfail", "not_rcpt"};
    for (int i = 0; i < 5; ++i) v.emplace_back(fmt::format("policy_{}", verdicts[i]), get(s.verdicts[i]));
    const char* replies[] = {"ok", "notfound", "temp", "perm"};
    for (int i = 0; i < 4; ++i) v.emplace_back(fmt::format("socketmap_{}", replies[i]), get(s.replies[i]));
    v.emplace_back("socketmap_partial_keys", get(s.socketmap_partial_keys));
    for (int i = 0; i < 8; ++i)
        v.emplace_back(fmt::format("outcome_{}", to_string(static_cast<Outcome>(i))), get(s.outcomes[i]));
    for (std::size_t i = 1; i < unit::tempfail_cause_count; ++i)
        v.emplace_back(fmt::format("tempfail_{}", to_string(static_cast<TempfailCause>(i))), get(s.tempfail_causes[i]));
    v.emplace_back("replica_switches", get(s.replica_switches));
    v.emplace_back("replica_refusals", get(s.replica_refusals));
    for (std::size_t i = 0; i < unit::refusal_reason_count; ++i)
        v.emplace_back(fmt::format("replica_refusals_{}", to_string(static_cast<RefusalReason>(i))),
                       get(s.refusal_reasons[i]));
    v.emplace_back("replica_generation", get(s.replica_generation));
    v.emplace_back("replica_published_at", get(s.replica_published_at));
    std::uint64_t held = 0;
    for (const auto& [unit, count] : s.held()) held += count;
    v.emplace_back("held_messages", held);
    v.emplace_back("held_released", get(s.held_released));
    v.emplace_back("held_scan_errors", get(s.held_scan_errors));
    v.emplace_back("latency_count", s.latency.count());
    v.emplace_back("latency_p50_us", s.latency.percentile(50));
    v.emplace_back("latency_p99_us", s.latency.percentile(99));
    v.emplace_back("latency_p999_us", s.latency.percentile(99.9));
    return v;
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
    for (const auto& [name, value] : flatten(stats)) object.number(name, static_cast<std::int64_t>(value));
    object.number("replica_validating", replica.validating ? 1 : 0);
    object.string("replica_refused", stats.replica_notes.view().refused_detail);
    return object.text();
}

std::string stats_prometheus(const Stats& s) {
    using common::MetricsText;
    using Type = MetricsText::Type;
    MetricsText m;
    auto counter = [&](const char* name, const char* help, const Stats::Counter& value) {
        m.family(name, Type::Counter, help);
        m.sample(name, static_cast<double>(get(value)));
    };
    auto gauge = [&](const char* name, const char* help, double value) {
        m.family(name, Type::Gauge, help);
        m.sample(name, value);
    };
    auto uptime = std::chrono::duration<double>(std::chrono::system_clock::now() - s.started).count();
    gauge("unitpolicy_uptime_seconds", "Seconds since the daemon started.", uptime);
    common::build_info(m, "unitpolicy", {{"version", UNIT_VERSION}, {"sqlite", sqlite3_libversion()}});
    common::process_metrics(m, common::read_process());
    counter("unitpolicy_connections_accepted_total", "Client connections accepted.", s.connections_accepted);
    gauge("unitpolicy_connections_open", "Client connections open now.", static_cast<double>(get(s.connections_open)));
    counter("unitpolicy_connections_closed_idle_total", "Connections closed after the idle timeout.",
            s.connections_closed_idle);
    counter("unitpolicy_connections_closed_full_total",
            "Connections closed to make room at max_connections (the one waiting longest for a request).",
            s.connections_closed_full);
    counter("unitpolicy_connections_closed_peer_total",
            "Connections closed to make room for a new one from the same peer at max_connections_per_peer.",
            s.connections_closed_peer);
    counter("unitpolicy_connections_closed_slow_total",
            "Connections closed after request_timeout (a request trickling in, or answers left unread).",
            s.connections_closed_slow);
    counter("unitpolicy_protocol_errors_total", "Connections closed for a malformed or oversized request.",
            s.protocol_errors);

    m.family("unitpolicy_requests_total", Type::Counter, "Requests answered, by protocol.");
    m.sample("unitpolicy_requests_total", static_cast<double>(get(s.policy_requests)), {{"protocol", "policy"}});
    m.sample("unitpolicy_requests_total", static_cast<double>(get(s.socketmap_requests)), {{"protocol", "socketmap"}});
    m.family("unitpolicy_policy_verdicts_total", Type::Counter, "Policy answers, by kind.");
    const char* verdicts[] = {"dunno", "reject", "defer", "tempfail", "not_rcpt"};
    for (int i = 0; i < 5; ++i)
        m.sample("unitpolicy_policy_verdicts_total", static_cast<double>(get(s.verdicts[i])), {{"verdict", verdicts[i]}});
    m.family("unitpolicy_socketmap_replies_total", Type::Counter, "Socketmap answers, by kind.");
    const char* replies[] = {"ok", "notfound", "temp", "perm"};
    for (int i = 0; i < 4; ++i)
        m.sample("unitpolicy_socketmap_replies_total", static_cast<double>(get(s.replies[i])), {{"reply", replies[i]}});
    counter("unitpolicy_socketmap_partial_keys_total",
            "Keys that are not a full address (user, @domain, domain, .domain): NOTFOUND without a resolution.",
            s.socketmap_partial_keys);
    m.family("unitpolicy_resolutions_total", Type::Counter, "Address resolutions, by outcome.");
    for (int i = 0; i < 8; ++i)
        m.sample("unitpolicy_resolutions_total", static_cast<double>(get(s.outcomes[i])),
                 {{"outcome", to_string(static_cast<Outcome>(i))}});
    m.family("unitpolicy_tempfails_total", Type::Counter, "Temporary failures, by cause.");
    for (std::size_t i = 1; i < unit::tempfail_cause_count; ++i)
        m.sample("unitpolicy_tempfails_total", static_cast<double>(get(s.tempfail_causes[i])),
                 {{"cause", to_string(static_cast<TempfailCause>(i))}});

    counter("unitpolicy_replica_switches_total", "Switches to a new replica file (per worker).", s.replica_switches);
    m.family("unitpolicy_replica_refusals_total", Type::Counter,
             "Replacement replica files refused (each file once), by reason.");
    for (std::size_t i = 0; i < unit::refusal_reason_count; ++i)
        m.sample("unitpolicy_replica_refusals_total", static_cast<double>(get(s.refusal_reasons[i])),
                 {{"reason", to_string(static_cast<RefusalReason>(i))}});
    gauge("unitpolicy_replica_generation", "Generation of the snapshot answering now.",
          static_cast<double>(get(s.replica_generation)));
    gauge("unitpolicy_replica_published_timestamp_seconds", "When that snapshot was published (0: not stamped).",
          static_cast<double>(get(s.replica_published_at)));
    common::replica_metrics(m, "unitpolicy", s.replica_notes.view());

    m.family("unitpolicy_held_messages", Type::Gauge,
             "Deferred messages held for a unit, at the last scan of the queue (unit=\"(none)\": held recipients "
             "without a route now).");
    for (const auto& [unit, count] : s.held())
        m.sample("unitpolicy_held_messages", static_cast<double>(count), {{"unit", unit}});
    gauge("unitpolicy_held_scan_timestamp_seconds", "When the last scan of the queue ended (0: none yet).",
          static_cast<double>(get(s.held_scanned_at)));
    counter("unitpolicy_held_released_total", "Held messages released (postqueue -i) once their route changed.",
            s.held_released);
    counter("unitpolicy_held_scan_errors_total", "Scans of the queue that failed (postqueue missing or failing).",
            s.held_scan_errors);

    // Bucket bounds are those of the latency histogram nearest below each le.
    m.family("unitpolicy_request_duration_seconds", Type::Histogram, "Time to answer one request.");
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
