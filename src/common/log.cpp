#include "common/log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <new>
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

std::string escaped(unsigned char byte) { return fmt::format("\\x{:02x}", byte); }

// The length of the UTF-8 sequence `text` starts with, 0 when it does not
// start with one (ASCII, a bad or cut sequence, an overlong form, a
// surrogate) or when the character is a C1 control.
std::size_t utf8_sequence(std::string_view text) {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = b(0);
    std::size_t n;
    char32_t c;
    if (lead >= 0xc2 && lead <= 0xdf) n = 2, c = lead & 0x1f;
    else if (lead >= 0xe0 && lead <= 0xef) n = 3, c = lead & 0x0f;
    else if (lead >= 0xf0 && lead <= 0xf4) n = 4, c = lead & 0x07;
    else return 0;
    if (text.size() < n) return 0;
    for (std::size_t i = 1; i < n; ++i) {
        if ((b(i) & 0xc0) != 0x80) return 0;
        c = (c << 6) | (b(i) & 0x3f);
    }
    const bool overlong = (n == 3 && c < 0x800) || (n == 4 && c < 0x10000);
    const bool surrogate = c >= 0xd800 && c <= 0xdfff;
    const bool c1_control = c >= 0x80 && c <= 0x9f;
    if (overlong || surrogate || c1_control || c > 0x10ffff) return 0;
    return n;
}

// The last guard of log_line(): the line as it is when it holds no control
// byte and is not too long (the usual case, no copy), else escaped and cut.
std::string_view one_line(std::string_view message, std::string& storage) {
    const bool clean = message.size() <= max_log_line && std::none_of(message.begin(), message.end(), [](char c) {
                           const auto byte = static_cast<unsigned char>(c);
                           return byte < 0x20 || byte == 0x7f;
                       });
    if (clean) return message;
    storage.clear();
    for (char c : message.substr(0, max_log_line)) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) storage += escaped(byte);
        else storage += c;
    }
    if (message.size() > max_log_line) storage += "...";
    return storage;
}

}  // namespace

std::string printable(std::string_view text, std::size_t max) {
    const std::string_view kept = text.substr(0, max);
    std::string out;
    out.reserve(kept.size());
    for (std::size_t i = 0; i < kept.size();) {
        const auto byte = static_cast<unsigned char>(kept[i]);
        if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
            out += kept[i++];
        } else if (std::size_t n = utf8_sequence(kept.substr(i)); n > 0) {
            out.append(kept.substr(i, n));
            i += n;
        } else {
            out += escaped(byte);
            ++i;
        }
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

void log_line(Severity severity, std::string_view raw_message) noexcept {
    LogState& s = state();
    const LogSink sink = s.sink.load(std::memory_order_relaxed);
    if (sink == LogSink::None) return;
    std::string storage;
    const std::string_view message = one_line(raw_message, storage);
    if (sink == LogSink::Syslog) {
        syslog(priority(severity), "%.*s%.*s", static_cast<int>(prefix(severity).size()), prefix(severity).data(),
               static_cast<int>(message.size()), message.data());
        return;
    }
    // One write per line, so that lines of several threads do not mix.
    std::string line = fmt::format("{}[{}]: {}{}\n", s.program, s.pid, prefix(severity), message);
    ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

namespace {

// The new handler: it may not allocate, so the line is built on the stack.
[[noreturn]] void out_of_memory() {
    constexpr const char* message = "fatal: out of memory";
    const LogState& s = state();
    switch (s.sink.load(std::memory_order_relaxed)) {
    case LogSink::Syslog: syslog(LOG_CRIT, "%s", message); break;
    case LogSink::Stderr: {
        char line[256];
        const int n = std::snprintf(line, sizeof line, "%s[%d]: %s\n", s.program.c_str(), static_cast<int>(s.pid),
                                    message);
        if (n > 0) {
            ssize_t ignored = write(STDERR_FILENO, line, std::min(static_cast<std::size_t>(n), sizeof line - 1));
            (void)ignored;
        }
        break;
    }
    case LogSink::None: break;
    }
    _exit(1);
}

}  // namespace

void end_process_on_allocation_failure() noexcept { std::set_new_handler(out_of_memory); }

}  // namespace unit::common
