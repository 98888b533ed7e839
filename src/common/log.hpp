// log.hpp: the log sink of a daemon, in Postfix's style
// ("unitpolicy[PID]: warning: object: problem: cause").
//
// open_log() chooses the sink once, at start-up (syslog facility mail, or
// stderr with the program name and PID in front, or nothing); after that
// log() may be called from any thread. A message is always one line of
// at most max_log_line bytes: a control byte a caller let through is
// escaped here, the last guard behind printable(). It is, with the configuration, the
// only process-wide mutable state (STYLE §6). Debug lines are written only
// when debug logging is on.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace unit::common {

enum class LogSink { Syslog, Stderr, None };
enum class Severity { Debug, Info, Warning, Error, Fatal };

void open_log(LogSink sink, const char* program, bool debug);

// A value from a client, a message or the database, fit for a log line:
// at most `max` bytes of it, "..." when cut, and every byte that could
// break the line, drive a terminal or pass for an escape written as
// \xNN: ASCII control bytes and DEL, the backslash itself, C1 controls
// (U+0080..U+009F) and bytes that are not UTF-8. Valid UTF-8 (an
// SMTPUTF8 address) stays readable. Every such value in a log line goes
// through this one function.
std::string printable(std::string_view text, std::size_t max = 320);

// The longest line log() writes; the rest is cut ("...").
inline constexpr std::size_t max_log_line = 4096;

bool debug_logging() noexcept;
void log_line(Severity severity, std::string_view message) noexcept;

// Makes an allocation that fails end the process, as Postfix's mymalloc
// does: "fatal: out of memory" goes to the log sink, written without
// allocating, and the process exits with status 1. Each program calls it
// first thing in main(), so that no code has to answer for std::bad_alloc.
// Nothing is lost: Postfix defers while a daemon is gone (the default
// smtpd_policy_service_default_action and milter_default_action are 4xx),
// and its supervisor starts it again.
void end_process_on_allocation_failure() noexcept;

template <class... Args>
void log(Severity severity, fmt::format_string<Args...> format, Args&&... args) noexcept {
    if (severity == Severity::Debug && !debug_logging()) return;
    log_line(severity, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace unit::common
