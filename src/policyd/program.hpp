// program.hpp: runs a program (Postfix's postqueue) without a shell and
// within bounds, for the held-mail watcher (held_mail.hpp).
//
// run_program() starts argv[0] (an absolute path; argv as given, never
// through a shell) with posix_spawn, stdin from /dev/null and no other
// descriptor of the caller than its stdout and stderr pipes, and hands each
// line of its standard output, without the newline, to on_line as it
// arrives. Its standard error is kept (the first max_error bytes) to say why
// it failed. A line longer than max_line is a failure, and so is a run
// longer than `timeout`: the program is then killed (SIGKILL) and reaped.
// The result is an error (Errc::Unavailable) with one line of text when the
// program cannot be started, is killed, exits non-zero ("exit status N:
// LINE", LINE the first line of its standard error with "fatal:", else its
// first line) or dies of a signal. on_line must not throw: the child would
// not be reaped. Blocks the
// calling thread; thread-safe (no shared state). Logs nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "unit/result.hpp"

namespace unit::policyd {

struct ProgramLimits {
    std::chrono::milliseconds timeout{60'000};
    std::size_t max_line = 16 << 20;
};

Result<void> run_program(const std::vector<std::string>& argv, const ProgramLimits& limits,
                         const std::function<void(std::string_view line)>& on_line);

}  // namespace unit::policyd
