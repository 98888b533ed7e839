// unitctl: the admin tool for the primary unitpolicy database (unitctl(8)).
//
// main() only parses, dispatches and turns the one exception that ends a
// command into its exit status and stderr line: 0 success, 1 a failed
// operation, 2 bad usage.
#include <unistd.h>

#include <exception>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "common/version.hpp"
#include "ctl/audit.hpp"
#include "ctl/cli.hpp"
#include "ctl/command.hpp"

namespace {

const bool stderr_is_terminal = ::isatty(STDERR_FILENO) == 1;

// The progress line of a command is erased before this (ProgressLine's
// destructor, on the way out of the command).
int fail(int status, const char* message) {
    std::cerr << "unitctl: " << message << '\n';
    return status;
}

// Output is buffered: a write error (a full disk, a closed pipe) shows only
// when it is flushed, and must not pass for success.
void flush_stdout() {
    std::cout.flush();
    if (!std::cout) throw unit::ctl::Failure("stdout: write error");
}

}  // namespace

int main(int argc, char* argv[]) {
    using namespace unit::ctl;
    unit::common::open_log(unit::common::LogSink::Stderr, "unitctl", false);
    unit::common::end_process_on_allocation_failure();
    // Listing a million mailboxes through synchronised iostreams is slow.
    std::ios::sync_with_stdio(false);
    try {
        auto request = parse_command_line(argc, argv);
        switch (request.action) {
        case Request::Action::Version: std::cout << "unitctl " UNIT_VERSION "\n"; break;
        case Request::Action::Help: print_help(std::cout, request.command); break;
        case Request::Action::Run: {
            // The one thing a handler shows on stderr, and only on a terminal.
            ProgressLine progress(std::cerr, stderr_is_terminal && request.progress);
            Invocation inv{std::move(request.settings),
                           std::move(request.operands),
                           std::move(request.options),
                           std::cout,
                           std::cin,
                           {},
                           progress};
            run_audited(*request.command, inv, std::vector<std::string>(argv, argv + argc));
            progress.clear();
            break;
        }
        }
        flush_stdout();
        return 0;
    } catch (const UsageError& e) {
        return fail(2, e.what());
    } catch (const Failure& e) {
        // Whatever a failed command managed to print (check's problems,
        // resolve's verdict) goes out before the error line.
        std::cout.flush();
        return fail(1, e.what());
    } catch (const std::exception& e) {
        return fail(1, e.what());
    }
}
