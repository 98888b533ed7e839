#include "common/log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

namespace unit::common {

namespace {

struct LogState {
    std::atomic<LogSink> sink{LogSink::Stderr};
    std::atomic<bool> debug{false};
    std::string program = "unit";
    pid_t pid = getpid();  // the daemons do not fork once logging
};

LogState& state() {
    static LogState s;
    return s;
}

std::string_view prefix(Severity severity) {
    switch (severity) {
    case Severity::Debug:
    case Severity::Info: return "";
    case Severity::Warning: return "warning: ";
    case Severity::Error: return "error: ";
    case Severity::Fatal: return "fatal: ";
    }
    return "";
}

int priority(Severity severity) {
    switch (severity) {
    case Severity::Debug: return LOG_DEBUG;
    case Severity::Info: return LOG_INFO;
    case Severity::Warning: return LOG_WARNING;
    case Severity::Error: return LOG_ERR;
    case Severity::Fatal: return LOG_CRIT;
    }
    return LOG_INFO;
}

}  // namespace

std::string printable(std::string_view text, std::size_t max) {
    std::string out;
    for (char c : text.substr(0, max)) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) out += fmt::format("\\x{:02x}", byte);
        else out += c;
    }
    if (text.size() > max) out += "...";
    return out;
}

void open_log(LogSink sink, const char* program, bool debug) {
    LogState& s = state();
    s.program = program;
    s.debug = debug;
    s.sink = sink;
    s.pid = getpid();
    if (sink == LogSink::Syslog) openlog(program, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

bool debug_logging() noexcept { return state().debug.load(std::memory_order_relaxed); }

void log_line(Severity severity, std::string_view message) noexcept {
    LogState& s = state();
    switch (s.sink.load(std::memory_order_relaxed)) {
    case LogSink::None: return;
    case LogSink::Syslog:
        syslog(priority(severity), "%.*s%.*s", static_cast<int>(prefix(severity).size()), prefix(severity).data(),
               static_cast<int>(message.size()), message.data());
        return;
    case LogSink::Stderr: {
        // One write per line, so that lines of several threads do not mix.
        std::string line = fmt::format("{}[{}]: {}{}\n", s.program, s.pid, prefix(severity), message);
        ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
        (void)ignored;
        return;
    }
    }
}

}  // namespace unit::common
