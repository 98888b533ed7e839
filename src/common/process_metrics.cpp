#include "common/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

namespace unit::common {

namespace {

std::optional<double> number(std::string_view text) {
    unsigned long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return static_cast<double>(value);
}

std::optional<std::string> first_line(const char* path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    return line;
}

// /proc/stat's "btime SECONDS": when the system booted, in Unix time.
std::optional<double> boot_time() {
    std::ifstream in("/proc/stat");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("btime ")) return number(std::string_view(line).substr(6));
    return std::nullopt;
}

std::optional<double> open_fds() {
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc/self/fd", ec), end;
    if (ec) return std::nullopt;
    double count = 0;
    for (; it != end; it.increment(ec)) {
        if (ec) return std::nullopt;
        ++count;
    }
    return count;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view line) {
    auto paren = line.rfind(')');
    if (paren == std::string_view::npos) return std::nullopt;
    // Fields after the command name, from field 3 (state): split on spaces.
    std::string_view rest = line.substr(paren + 1);
    std::optional<double> fields[25];  // field numbers as in proc(5), 3..24
    int field = 2;
    while (!rest.empty() && field < 24) {
        while (rest.starts_with(' ')) rest.remove_prefix(1);
        if (rest.empty()) break;
        auto space = rest.find(' ');
        auto token = rest.substr(0, space);
        ++field;
        fields[field] = number(token);
        rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space);
    }
    // 14 utime, 15 stime, 22 starttime, 23 vsize, 24 rss
    for (int f : {14, 15, 22, 23, 24})
        if (!fields[f]) return std::nullopt;
    return ProcStat{*fields[14] + *fields[15], *fields[22], *fields[23], *fields[24]};
}

ProcessSample read_process() {
    ProcessSample sample;
    const long ticks = sysconf(_SC_CLK_TCK);
    const long page = sysconf(_SC_PAGESIZE);
    if (auto line = first_line("/proc/self/stat"))
        if (auto stat = parse_proc_stat(*line); stat && ticks > 0 && page > 0) {
            sample.cpu_seconds = stat->cpu_ticks / static_cast<double>(ticks);
            sample.virtual_bytes = stat->vsize_bytes;
            sample.resident_bytes = stat->rss_pages * static_cast<double>(page);
            if (auto boot = boot_time())
                sample.start_time_seconds = *boot + stat->start_ticks / static_cast<double>(ticks);
        }
    sample.open_fds = open_fds();
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        sample.max_fds = static_cast<double>(limit.rlim_cur);
    return sample;
}

void process_metrics(MetricsText& m, const ProcessSample& s) {
    auto family = [&](std::string_view name, MetricsText::Type type, std::string_view help,
                      const std::optional<double>& value) {
        if (!value) return;
        m.family(name, type, help);
        m.sample(name, *value);
    };
    using Type = MetricsText::Type;
    family("process_start_time_seconds", Type::Gauge, "Start time of the process since unix epoch in seconds.",
           s.start_time_seconds);
    family("process_cpu_seconds_total", Type::Counter, "Total user and system CPU time spent in seconds.",
           s.cpu_seconds);
    family("process_resident_memory_bytes", Type::Gauge, "Resident memory size in bytes.", s.resident_bytes);
    family("process_virtual_memory_bytes", Type::Gauge, "Virtual memory size in bytes.", s.virtual_bytes);
    family("process_open_fds", Type::Gauge, "Number of open file descriptors.", s.open_fds);
    family("process_max_fds", Type::Gauge, "Maximum number of open file descriptors.", s.max_fds);
}

void build_info(MetricsText& m, std::string_view prefix, const MetricsText::Labels& labels) {
    const auto name = fmt::format("{}_build_info", prefix);
    m.family(name, MetricsText::Type::Gauge, "Always 1; its labels say which build is running.");
    m.sample(name, 1, labels);
}

}  // namespace unit::common
