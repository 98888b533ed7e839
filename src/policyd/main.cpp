// unitpolicy: the Postfix policy delegation and socketmap server of the
// unitpolicy directory (unitpolicy(8)).
//
// main() only chooses the mode, sets up logging and privileges, and turns a
// start-up failure into one line on stderr: exit 2 for bad configuration,
// 1 for anything else that stops the daemon before it serves.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "common/config_file.hpp"
#include "common/log.hpp"
#include "common/privileges.hpp"
#include "common/version.hpp"
#include "policyd/conversation.hpp"
#include "policyd/diagnostics.hpp"
#include "policyd/server.hpp"
#include "policyd/settings.hpp"

namespace {

using namespace unit::policyd;
using unit::common::Severity;

// The policy protocol on stdin/stdout, one connection, for spawn(8). spawn
// connects stderr to the socket too: nothing may be written there.
int serve_stdio(std::shared_ptr<const Settings> settings) {
    Stats stats;
    Worker worker(settings, stats, nullptr);
    PolicyConversation conversation(worker);
    char buffer[16384];
    std::string out;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        bool ok = conversation.feed(std::string_view(buffer, static_cast<std::size_t>(n)), out);
        for (std::size_t done = 0; done < out.size();) {
            ssize_t w = write(STDOUT_FILENO, out.data() + done, out.size() - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return 0;
            done += static_cast<std::size_t>(w);
        }
        out.clear();
        if (!ok) {
            unit::common::log(Severity::Warning, "stdio: {}: closing", conversation.error());
            return 0;
        }
    }
}

int serve(int argc, const char* const argv[], std::shared_ptr<const Settings> settings) {
    auto reload = [argc, argv]() -> std::shared_ptr<const Settings> {
        try {
            return std::make_shared<const Settings>(load_settings(argc, argv));
        } catch (const std::exception& e) {
            unit::common::log(Severity::Error, "reload: {}: keeping the running configuration", e.what());
            return nullptr;
        }
    };
    Server server(settings, reload);
    unit::common::drop_privileges(settings->user);
    unit::common::log(Severity::Info, "starting: database {}, {} policy and {} socketmap listeners", settings->db,
                      settings->policy_listen.size(), settings->socketmap_listen.size());
    server.run();
    unit::common::log(Severity::Info, "stopped");
    return 0;
}

}  // namespace

// Under spawn(8) stderr is the client's socket: --stdio reports to syslog only.
bool stdio_requested(int argc, char* argv[]) {
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--stdio") return true;
    return false;
}

int main(int argc, char* argv[]) {
    unit::common::end_process_on_allocation_failure();
    signal(SIGPIPE, SIG_IGN);
    using unit::common::LogSink;
    const bool stdio = stdio_requested(argc, argv);
    unit::common::open_log(stdio ? LogSink::Syslog : LogSink::Stderr, "unitpolicy", false);
    std::shared_ptr<const Settings> settings;
    try {
        settings = std::make_shared<const Settings>(load_settings(argc, argv));
    } catch (const std::exception& e) {
        unit::common::log(Severity::Fatal, "{}", e.what());
        return 2;
    }
    const Settings& s = *settings;
    try {
        switch (s.mode) {
        case Mode::Help: print_help(std::cout); return 0;
        case Mode::Version: std::cout << "unitpolicy " UNIT_VERSION "\n"; return 0;
        case Mode::Query: return run_query(s, std::cout);
        case Mode::Dump: return run_dump(s, std::cout);
        case Mode::Stdio: unit::common::open_log(LogSink::Syslog, "unitpolicy", s.debug); return serve_stdio(settings);
        case Mode::Serve: unit::common::open_log(s.log, "unitpolicy", s.debug); return serve(argc, argv, settings);
        }
    } catch (const std::exception& e) {
        unit::common::log(Severity::Fatal, "{}", e.what());
        // A daemon logging to syslog still says why it did not start.
        if (s.mode == Mode::Serve && s.log != LogSink::Stderr) std::cerr << "unitpolicy: fatal: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
