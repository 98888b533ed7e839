// unitmilter: the routing-header milter of the unitpolicy directory
// (unitmilter(8)).
//
// main() reads the configuration, opens the libmilter socket (as root when
// need be) and gives a unix socket socket_mode and socket_group, drops
// privileges, and runs smfi_main() until SIGTERM, SIGHUP or SIGINT
// (libmilter's own signal thread stops it). SIGUSR1 reloads the
// configuration: a thread of ours waits for it with sigtimedwait() (the
// signal is blocked everywhere else) and installs the new snapshot; between
// signals, every snapshot_hold, it lets the idle directory connections end
// their read transactions and look for a replaced replica
// (tick_idle_readers()); listen, the
// socket's mode and group, and user need a restart. Exit: 0 after a clean stop, 2 for bad configuration, 1 for
// anything else that stops the filter.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/config_file.hpp"
#include "common/log.hpp"
#include "common/metrics_http.hpp"
#include "common/privileges.hpp"
#include "common/socket_access.hpp"
#include "common/version.hpp"
#include "milter/filter.hpp"
#include "milter/settings.hpp"

namespace {

using namespace unit::milter;
using unit::common::Severity;

constexpr std::size_t max_packet = 1024 * 1024;

// Waits for SIGUSR1 and reloads, and ticks the idle readers every
// tick_interval; ends when `stop` is set and SIGUSR1 comes.
class Reloader {
public:
    Reloader(int argc, const char* const* argv, std::shared_ptr<const Settings> running)
        : argc_(argc), argv_(argv), started_(running), running_(std::move(running)) {
        thread_ = std::thread([this] { run(); });
    }
    Reloader(const Reloader&) = delete;
    Reloader& operator=(const Reloader&) = delete;
    ~Reloader() {
        stop_ = true;
        pthread_kill(thread_.native_handle(), SIGUSR1);
        thread_.join();
    }

private:
    void run() {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        const timespec tick_interval{0, std::chrono::nanoseconds(unit::milter::snapshot_hold).count()};
        for (;;) {
            int signal = sigtimedwait(&set, nullptr, &tick_interval);
            if (stop_) return;
            if (signal == SIGUSR1) reload();
            else if (signal < 0 && errno == EAGAIN) tick_idle_readers();
        }
    }

    void reload() noexcept {
        try {
            auto next = std::make_shared<const Settings>(load_settings(argc_, argv_));
            const auto kept = kept_on_reload(*started_, *next);
            unit::common::open_log(next->log, "unitmilter", next->debug);
            install_settings(next);
            running_ = next;
            unit::common::log(kept.empty() ? Severity::Info : Severity::Warning, "{}", kept.message());
            for (const auto& line : warnings(*next)) unit::common::log(Severity::Warning, "{}", line);
        } catch (const std::exception& e) {
            unit::common::log(Severity::Error, "reload: {}: keeping the running configuration", e.what());
        }
    }

    int argc_;
    const char* const* argv_;
    const std::shared_ptr<const Settings> started_;  // what the socket, metrics and user were made with
    std::shared_ptr<const Settings> running_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

std::string socket_path(const std::string& listen) {
    for (const char* kind : {"unix:", "local:"})
        if (listen.rfind(kind, 0) == 0) return listen.substr(std::strlen(kind));
    return {};
}

int serve(int argc, const char* const argv[], std::shared_ptr<const Settings> settings) {
    const Settings& s = *settings;
    install_settings(settings);

    std::string conn = s.listen;
    if (smfi_setconn(conn.data()) != MI_SUCCESS)
        throw std::runtime_error("listen " + s.listen + ": bad connection spec");
    smfiDesc description = filter_description();
    if (smfi_register(description) != MI_SUCCESS) throw std::runtime_error("smfi_register failed");
    // libmilter drops a connection whose packet passes its limit (64 KiB by
    // default), and Postfix sends each header whole (header_size_limit is
    // 100 KiB): accept packets up to max_packet so that a big header is
    // stripped rather than the message tempfailed for ever.
    smfi_setmaxdatasize(max_packet);
    // libmilter creates the socket with the process's identity and umask.
    const auto gid = unit::common::socket_group_id(s.socket_group);
    bool opened = false;
    {
        unit::common::OwnerOnlyUmask owner_only;
        opened = smfi_opensocket(true) == MI_SUCCESS;
    }
    if (!opened) throw std::runtime_error("listen " + s.listen + ": cannot open the socket (see the mail log)");
    if (const auto path = socket_path(s.listen); !path.empty())
        unit::common::set_socket_access(path, s.socket_mode, gid);
    std::unique_ptr<unit::common::MetricsServer> metrics;  // bound while privileged, started below
    if (!s.metrics.empty()) {
        auto where = unit::common::parse_endpoint(s.metrics);
        if (!where) throw std::runtime_error("metrics: " + where.error().message);
        metrics = std::make_unique<unit::common::MetricsServer>(*where,
                                                                [] { return stats_prometheus(filter_stats()); });
    }
    unit::common::drop_privileges(s.user);

    // Blocked here, before any thread starts, so that every thread inherits
    // the mask: SIGUSR1 reaches only the reloader's sigwait(), and SIGHUP,
    // SIGTERM and SIGINT only libmilter's signal thread (smfi_main blocks
    // them too, but only after the reloader has started).
    sigset_t blocked;
    sigemptyset(&blocked);
    for (int signal : {SIGUSR1, SIGHUP, SIGTERM, SIGINT}) sigaddset(&blocked, signal);
    pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
    if (metrics) metrics->start();

    unit::common::log(Severity::Info, "starting: listen {}, role {}{}, database {}, trusted networks: {}", s.listen,
                      s.role == Role::Unit ? "unit " : "mx", s.unit, s.db,
                      s.trusted_networks.empty() ? std::string("none") : s.trusted_networks.to_string());
    for (const auto& line : warnings(s)) unit::common::log(Severity::Warning, "{}", line);
    int status = 0;
    {
        Reloader reloader(argc, argv, settings);
        status = smfi_main();
    }
    unit::common::log(Severity::Info, "stopped");
    return status == MI_SUCCESS ? 0 : 1;
}

}  // namespace

int main(int argc, char* argv[]) {
    unit::common::end_process_on_allocation_failure();
    // The stats are made by the first call of filter_stats(): stamped here,
    // unitmilter_uptime_seconds counts from the start, not from the first
    // connection or scrape.
    filter_stats().started = std::chrono::system_clock::now();
    signal(SIGPIPE, SIG_IGN);
    std::shared_ptr<const Settings> settings;
    try {
        settings = std::make_shared<const Settings>(load_settings(argc, argv));
    } catch (const std::exception& e) {
        std::cerr << "unitmilter: " << e.what() << '\n';
        return 2;
    }
    const Settings& s = *settings;
    switch (s.mode) {
    case Mode::Help: print_help(std::cout); return 0;
    case Mode::Version: std::cout << "unitmilter " UNIT_VERSION "\n"; return 0;
    case Mode::Serve: break;
    }
    unit::common::open_log(s.log, "unitmilter", s.debug);
    try {
        return serve(argc, argv, settings);
    } catch (const std::exception& e) {
        unit::common::log(Severity::Fatal, "{}", e.what());
        if (s.log != unit::common::LogSink::Stderr) std::cerr << "unitmilter: " << e.what() << '\n';
        return 1;
    }
}
