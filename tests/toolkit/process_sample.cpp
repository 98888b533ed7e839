// ProcessSample: a process's CPU time and resident memory from /proc.
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "load.hpp"

namespace unit::load {

std::optional<ProcessSample> ProcessSample::read(int pid) {
    std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
    std::string stat_line;
    if (!std::getline(stat_file, stat_line)) return std::nullopt;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    auto close_paren = stat_line.rfind(')');
    if (close_paren == std::string::npos) return std::nullopt;
    std::istringstream fields(stat_line.substr(close_paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // Fields 3..13 precede utime (14) and stime (15).
    for (int i = 3; i <= 13 && fields >> field; ++i) {
    }
    if (!(fields >> utime >> stime)) return std::nullopt;

    ProcessSample sample;
    sample.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    std::ifstream status_file("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status_file, line);) {
        if (line.rfind("VmRSS:", 0) != 0) continue;
        sample.rss_bytes = std::stoull(line.substr(6)) * 1024;
        return sample;
    }
    return std::nullopt;
}

}  // namespace unit::load
