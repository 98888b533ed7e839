#include "milter/stats.hpp"

#include <sqlite3.h>

#include "common/counter_list.hpp"
#include "common/metrics_http.hpp"
#include "common/process_metrics.hpp"
#include "common/replica_metrics.hpp"
#include "common/version.hpp"

namespace unit::milter {

namespace {

double get(const MilterStats::Counter& c) { return static_cast<double>(c.load(std::memory_order_relaxed)); }

// The one list of unitmilter's counters (common/counter_list.hpp); it has
// no control socket, so no JSON keys.
template <class Out>
void each_counter(const MilterStats& s, Out& out) {
    using Type = common::MetricsText::Type;
    out.one("", "uptime_seconds", Type::Gauge, "Seconds since the filter started.",
            std::chrono::duration<double>(std::chrono::system_clock::now() - s.started).count());
    out.one("", "connections_total", Type::Counter, "MTA connections.", get(s.connections));
    out.by("", "messages_total", Type::Counter, "Messages at end of data, by result (refused: the reply's code).",
           "result",
           {{"accepted", get(s.messages_accepted)},
            {"refused_4.4.6_loop", get(s.refused_loop)},
            {"refused_5.7.1_header_flood", get(s.refused_header_flood)},
            {"refused_4.3.0", get(s.refused_other)}});
    out.one("", "loops_released_total", Type::Counter, "Messages past max_hops taken again because the loop was over.",
            get(s.loops_released));
    out.one("", "headers_removed_total", Type::Counter, "Routing headers removed from untrusted clients' messages.",
            get(s.headers_removed));
    out.one("", "directory_tempfails_total", Type::Counter,
            "Messages with a recipient the directory could not resolve.", get(s.directory_tempfails));
    out.by("", "alias_recipients_total", Type::Counter, "Envelope recipients changed by alias expansion.", "change",
           {{"added", get(s.recipients_added)}, {"removed", get(s.recipients_removed)}});
    common::each_replica_counter(s.replica, out);
}

}  // namespace

std::string stats_prometheus(const MilterStats& s) {
    common::MetricsText m;
    common::build_info(m, "unitmilter", {{"version", UNIT_VERSION}, {"sqlite", sqlite3_libversion()}});
    common::process_metrics(m, common::read_process());
    common::CounterMetrics out(m, "unitmilter");
    each_counter(s, out);
    common::replica_metrics(m, "unitmilter", s.replica.notes.view());
    return m.text();
}

}  // namespace unit::milter
