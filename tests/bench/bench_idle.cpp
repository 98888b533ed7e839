// bench_idle: a well-behaved client's latency while an attacker holds idle
// connections to unitpolicy, against the same client with no attacker, in
// one run (issue 13, item 3).
//
// Starts the given unitpolicy (default limits: max_connections 1000) on a
// small directory, then runs two phases of --seconds each:
//   baseline  --clients clients of Postfix's kind: one persistent policy
//             connection each, one request every --interval-ms, and, when
//             the connection was found closed, a new one and the request
//             sent again once (Postfix's socketmap client does so at once,
//             its policy client after smtpd_policy_service_retry_delay, 1 s,
//             which is not waited here);
//   held      the same clients while an attacker holds --idle connections
//             that never send a byte, opening a new one as soon as the
//             server closes one (a client that only opens connections).
// With --inet the daemon listens on inet:127.0.0.1:PORT, the attacker
// connects from 127.0.0.2 and the clients from 127.0.0.1 (two peers).
// Prints, per phase: requests, p50/p99/max latency (ms, the retry
// included), requests that found their connection closed (retried), and
// requests that got no answer even after the retry (failed). A benchmark:
// exit status 0 unless something could not run.
//
// usage: bench_idle --unitpolicy PATH [--idle N] [--seconds S] [--clients N]
//                   [--interval-ms MS] [--inet] [--keep]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon.hpp"
#include "load.hpp"
#include "socket.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace load = unit::load;

struct Options {
    std::string unitpolicy;
    std::size_t idle = 1000;
    int seconds = 5;
    unsigned clients = 8;
    int interval_ms = 100;
    bool inet = false;
    bool keep = false;
};

std::optional<Options> parse(int argc, char* argv[]) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        const char* v = nullptr;
        if (a == "--unitpolicy" && (v = value())) o.unitpolicy = v;
        else if (a == "--idle" && (v = value())) o.idle = std::strtoul(v, nullptr, 10);
        else if (a == "--seconds" && (v = value())) o.seconds = std::atoi(v);
        else if (a == "--clients" && (v = value())) o.clients = static_cast<unsigned>(std::atoi(v));
        else if (a == "--interval-ms" && (v = value())) o.interval_ms = std::atoi(v);
        else if (a == "--inet") o.inet = true;
        else if (a == "--keep") o.keep = true;
        else return std::nullopt;
    }
    if (o.unitpolicy.empty() || o.seconds <= 0 || o.clients == 0) return std::nullopt;
    return o;
}

// Where the daemon listens, and from where a client connects (inet only).
struct Where {
    std::string path;        // unix
    std::uint16_t port = 0;  // inet, on 127.0.0.1
};

// A blocking connection, -1 on failure.
int dial(const Where& where, const char* from = "127.0.0.1") {
    if (!where.path.empty()) {
        std::string why;
        return unit::toolkit::connect_unix(where.path, why);
    }
    sockaddr_in source{}, target{};
    source.sin_family = target.sin_family = AF_INET;
    inet_pton(AF_INET, from, &source.sin_addr);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    target.sin_port = htons(where.port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) == 0 &&
        connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0)
        return fd;
    if (fd >= 0) close(fd);
    return -1;
}

// One request on `fd`: true when the whole answer came within 5 s.
bool exchange(int fd, const std::string& request, const std::string& answer) {
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return false;
    std::string got;
    char buffer[512];
    const auto deadline = Clock::now() + 5s;
    while (got.size() < answer.size()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return false;
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0) return false;
        got.append(buffer, static_cast<std::size_t>(n));
    }
    return got == answer;
}

struct Tally {
    std::mutex mutex;
    load::Histogram latency;
    std::uint64_t retried = 0, failed = 0;
};

// A client of Postfix's kind until `stop`.
void postfix_client(const Where& where, const std::string& recipient, std::chrono::milliseconds interval,
                    const std::atomic<bool>& stop, Tally& tally) {
    const std::string request = fmt::format("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient={}\n\n",
                                            recipient);
    const std::string answer = "action=DUNNO\n\n";
    load::Histogram latency;
    std::uint64_t retried = 0, failed = 0;
    int fd = -1;
    for (auto next = Clock::now(); !stop; next += interval) {
        std::this_thread::sleep_until(next);
        const auto start = Clock::now();
        bool ok = false;
        for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
            if (attempt == 1) ++retried;
            if (fd < 0) fd = dial(where);
            ok = fd >= 0 && exchange(fd, request, answer);
            if (!ok && fd >= 0) close(fd), fd = -1;
        }
        if (ok) latency.add(Clock::now() - start);
        else ++failed;
    }
    if (fd >= 0) close(fd);
    std::lock_guard lock(tally.mutex);
    tally.latency.merge(latency);
    tally.retried += retried;
    tally.failed += failed;
}

// The attacker: `count` connections that never say a word, each one the
// server closes opened again at once, until `stop`.
void hold_idle(const Where& where, std::size_t count, std::atomic<bool>& held, const std::atomic<bool>& stop,
               std::atomic<std::uint64_t>& reopened) {
    std::vector<pollfd> fds(count);
    for (auto& p : fds) p = {dial(where, "127.0.0.2"), POLLIN, 0};
    held = true;
    while (!stop) {
        if (poll(fds.data(), fds.size(), 10) <= 0) continue;
        for (auto& p : fds) {
            if (p.revents == 0) continue;
            if (p.fd >= 0) close(p.fd);
            p = {dial(where, "127.0.0.2"), POLLIN, 0};
            ++reopened;
        }
    }
    for (auto& p : fds)
        if (p.fd >= 0) close(p.fd);
}

struct Phase {
    std::string name;
    Tally tally;
    std::uint64_t reopened = 0;
};

void run_phase(const Options& o, const Where& where, const std::string& recipient, Phase& phase, bool attack) {
    std::atomic<bool> stop{false}, held{!attack};
    std::atomic<std::uint64_t> reopened{0};
    std::thread attacker;
    if (attack) attacker = std::thread([&] { hold_idle(where, o.idle, held, stop, reopened); });
    while (!held) std::this_thread::sleep_for(10ms);
    std::vector<std::thread> clients;
    for (unsigned i = 0; i < o.clients; ++i)
        clients.emplace_back([&, i] {
            std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms) * i / o.clients);  // spread out
            postfix_client(where, recipient, std::chrono::milliseconds(o.interval_ms), stop, phase.tally);
        });
    std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
    stop = true;
    for (auto& c : clients) c.join();
    if (attacker.joinable()) attacker.join();
    phase.reopened = reopened;
}

std::uint16_t free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size) != 0)
        throw std::runtime_error("no free port");
    close(fd);
    return ntohs(a.sin_port);
}

int run(const Options& o) {
    char pattern[] = "/tmp/unitpolicy-bench-idle.XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    const std::filesystem::path dir = pattern;
    load::DatasetSpec spec;
    spec.mailboxes = 1000;
    spec.units = 10;
    load::Dataset data = load::make_dataset(spec, dir / "primary.db", dir / "units.db");
    Where where;
    std::vector<std::string> argv = {o.unitpolicy, "--db", dir / "units.db", "--log",        "stderr",
                                     "--threads",  "2",    "--control",      dir / "control"};
    std::vector<std::string> wait_for = {dir / "control"};
    if (o.inet) {
        where.port = free_port();
        argv.insert(argv.end(), {"--policy-listen", fmt::format("inet:127.0.0.1:{}", where.port)});
    } else {
        where.path = dir / "policy";
        argv.insert(argv.end(), {"--policy-listen", "unix:" + where.path});
        wait_for.push_back(where.path);
    }
    std::string why;
    auto daemon = unit::toolkit::Daemon::start(argv, wait_for, dir / "unitpolicy.log", 10s, why);
    if (!daemon) throw std::runtime_error("unitpolicy did not start: " + why);
    std::this_thread::sleep_for(200ms);

    std::ifstream loadavg("/proc/loadavg");
    std::string load_average;
    loadavg >> load_average;
    std::cout << fmt::format(
        "# {} ({}), {} listener, {} clients each asking every {} ms, {} s per phase, "
        "load average {} on {} cores\n",
        o.unitpolicy, daemon->pid(), o.inet ? "inet" : "unix", o.clients, o.interval_ms, o.seconds, load_average,
        std::thread::hardware_concurrency());
    Phase phases[2];
    phases[0].name = "baseline";
    phases[1].name = fmt::format("{} idle held", o.idle);
    run_phase(o, where, data.existing.front(), phases[0], false);
    run_phase(o, where, data.existing.front(), phases[1], true);
    daemon->stop(SIGTERM);

    std::cout << fmt::format("{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>12}\n", "phase", "answered", "p50 ms",
                             "p99 ms", "max ms", "retried", "failed", "reopened/s");
    for (const auto& p : phases) {
        const auto& l = p.tally.latency;
        std::cout << fmt::format("{:<16} {:>8} {:>8.3f} {:>8.3f} {:>8.3f} {:>8} {:>7} {:>12.0f}\n", p.name, l.count(),
                                 l.percentile_us(50) / 1000, l.percentile_us(99) / 1000, l.percentile_us(100) / 1000,
                                 p.tally.retried, p.tally.failed, static_cast<double>(p.reopened) / o.seconds);
    }
    const double base = phases[0].tally.latency.percentile_us(99);
    if (base > 0)
        std::cout << fmt::format("p99 held / baseline: {:.2f}\n", phases[1].tally.latency.percentile_us(99) / base);
    if (o.keep) std::cout << "kept: " << dir.string() << '\n';
    else std::filesystem::remove_all(dir);
    return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
    auto options = parse(argc, argv);
    if (!options) {
        std::cerr << "usage: bench_idle --unitpolicy PATH [--idle N] [--seconds S] [--clients N] [--interval-ms MS] "
                     "[--inet] [--keep]\n";
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    try {
        return run(*options);
    } catch (const std::exception& e) {
        std::cerr << "bench_idle: " << e.what() << '\n';
        return 1;
    }
}
