#include "milter/stats.hpp"

#include <sqlite3.h>

#include "common/metrics_http.hpp"
#include "common/process_metrics.hpp"
#include "common/replica_metrics.hpp"
#include "common/version.hpp"

namespace unit::milter {

std::string stats_prometheus(const MilterStats& s) {
    using common::MetricsText;
    using Type = MetricsText::Type;
    MetricsText m;
    auto value = [](const MilterStats::Counter& c) { return static_cast<double>(c.load(std::memory_order_relaxed)); };
    auto counter = [&](const char* name, const char* help, const MilterStats::Counter& c) {
        m.family(name, Type::Counter, help);
        m.sample(name, value(c));
    };
    m.family("unitmilter_uptime_seconds", Type::Gauge, "Seconds since the filter started.");
    m.sample("unitmilter_uptime_seconds",
             std::chrono::duration<double>(std::chrono::system_clock::now() - s.started).count());
    common::build_info(m, "unitmilter", {{"version", UNIT_VERSION}, {"sqlite", sqlite3_libversion()}});
    common::process_metrics(m, common::read_process());
    counter("unitmilter_connections_total", "MTA connections.", s.connections);
    m.family("unitmilter_messages_total", Type::Counter, "Messages at end of data, by result (refused: the reply's code).");
    m.sample("unitmilter_messages_total", value(s.messages_accepted), {{"result", "accepted"}});
    m.sample("unitmilter_messages_total", value(s.refused_loop), {{"result", "refused_4.4.6_loop"}});
    m.sample("unitmilter_messages_total", value(s.refused_header_flood), {{"result", "refused_5.7.1_header_flood"}});
    m.sample("unitmilter_messages_total", value(s.refused_other), {{"result", "refused_4.3.0"}});
    counter("unitmilter_loops_released_total", "Messages past max_hops taken again because the loop was over.",
            s.loops_released);
    counter("unitmilter_headers_removed_total", "Routing headers removed from untrusted clients' messages.",
            s.headers_removed);
    counter("unitmilter_directory_tempfails_total", "Messages with a recipient the directory could not resolve.",
            s.directory_tempfails);
    m.family("unitmilter_alias_recipients_total", Type::Counter, "Envelope recipients changed by alias expansion.");
    m.sample("unitmilter_alias_recipients_total", value(s.recipients_added), {{"change", "added"}});
    m.sample("unitmilter_alias_recipients_total", value(s.recipients_removed), {{"change", "removed"}});
    counter("unitmilter_replica_switches_total", "Switches to a new replica file (per pooled connection).",
            s.replica_switches);
    m.family("unitmilter_replica_refusals_total", Type::Counter,
             "Replacement replica files refused (each file once), by reason.");
    for (std::size_t i = 0; i < unit::refusal_reason_count; ++i)
        m.sample("unitmilter_replica_refusals_total", value(s.refusal_reasons[i]),
                 {{"reason", to_string(static_cast<unit::RefusalReason>(i))}});
    m.family("unitmilter_replica_generation", Type::Gauge, "Generation of the snapshot the last lookup used.");
    m.sample("unitmilter_replica_generation", value(s.replica_generation));
    m.family("unitmilter_replica_published_timestamp_seconds", Type::Gauge,
             "When that snapshot was published (0: not stamped).");
    m.sample("unitmilter_replica_published_timestamp_seconds", value(s.replica_published_at));
    common::replica_metrics(m, "unitmilter", s.replica_notes.view());
    return m.text();
}

}  // namespace unit::milter
