// process_metrics.hpp: what a daemon tells of itself on /metrics, beyond its
// counters: PREFIX_build_info and the Prometheus client libraries' standard
// process_* families, read from /proc/self.
//
// read_process() reads /proc/self/stat, /proc/stat (btime), /proc/self/fd
// and RLIMIT_NOFILE; each value it could not read (no /proc) stays empty,
// and process_metrics() leaves that family out rather than report a 0.
// parse_proc_stat() is the pure part, for the tests. Reentrant; logs
// nothing; called on the metrics thread at every scrape.
#pragma once

#include <optional>
#include <string_view>

#include "common/metrics_http.hpp"

namespace unit::common {

struct ProcessSample {
    std::optional<double> start_time_seconds;  // Unix time the process started
    std::optional<double> cpu_seconds;         // user + system CPU time
    std::optional<double> resident_bytes;
    std::optional<double> virtual_bytes;
    std::optional<double> open_fds;
    std::optional<double> max_fds;  // the soft RLIMIT_NOFILE (absent when unlimited)
};

// The fields of one /proc/PID/stat line that a sample uses: utime + stime and
// starttime in clock ticks, vsize in bytes, rss in pages. Empty when `line`
// is not such a line (the command name, in parentheses, may hold anything,
// so fields are counted from its last ')').
struct ProcStat {
    double cpu_ticks = 0, start_ticks = 0, vsize_bytes = 0, rss_pages = 0;
};
std::optional<ProcStat> parse_proc_stat(std::string_view line);

ProcessSample read_process();

// Appends process_start_time_seconds, process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds and process_max_fds, each only when known.
void process_metrics(MetricsText& m, const ProcessSample& sample);

// Appends PREFIX_build_info{LABELS} 1 (constant labels such as version).
void build_info(MetricsText& m, std::string_view prefix, const MetricsText::Labels& labels);

}  // namespace unit::common
