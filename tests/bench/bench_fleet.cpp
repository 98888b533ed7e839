// bench_fleet: how long `unitctl fleet` takes to ask a large fleet, the
// hosts answering and the hosts silent (issue 15: 200 hosts must not take
// 200 timeouts).
//
//   bench_fleet [HOSTS] [TIMEOUT_MS]
//
// Asks HOSTS (default 200) metrics URLs at once, as fleet status does
// (fetch_all, report_of): first each served by its own MetricsServer on
// loopback (a unitpolicy's exporter, answering a replica generation), then
// all pointing at a socket that listens but never answers; prints the time
// of each round and how many hosts answered. A benchmark, not a test:
// meson builds it, `meson test` does not run it.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "common/endpoint.hpp"
#include "common/metrics_http.hpp"
#include "ctl/fleet_fetch.hpp"
#include "ctl/fleet_report.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using unit::ctl::FleetHost;

std::vector<FleetHost> hosts_at(int port, int count) {
    std::vector<FleetHost> hosts;
    for (int i = 0; i < count; ++i)
        hosts.push_back(unit::ctl::parse_metrics_url(fmt::format("http://127.0.0.1:{}/metrics", port),
                                                     fmt::format("host{}", i))
                            .value());
    return hosts;
}

void round(const char* what, const std::vector<FleetHost>& hosts, std::chrono::milliseconds timeout) {
    const auto start = Clock::now();
    int answered = 0;
    for (const auto& fetched : unit::ctl::fetch_all(hosts, timeout))
        answered += unit::ctl::report_of(fetched).answered() ? 1 : 0;
    fmt::print("{} hosts {}, timeout {} ms: {:.3f} s, {} answered\n", hosts.size(), what, timeout.count(),
               std::chrono::duration<double>(Clock::now() - start).count(), answered);
}

// A loopback socket that completes connections (the kernel's backlog) but
// never reads them; closed at once when `keep` is false (a free port).
int listening_port(int backlog, bool keep = true) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) != 0 || ::listen(fd, backlog) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0)
        throw std::runtime_error("cannot listen on loopback");
    if (!keep) ::close(fd);
    return ntohs(address.sin_port);
}

}  // namespace

int main(int argc, char* argv[]) {
    const int count = argc > 1 ? std::atoi(argv[1]) : 200;
    const std::chrono::milliseconds timeout(argc > 2 ? std::atoi(argv[2]) : 1000);
    // One exporter per host, as a fleet has: one alone takes 16 connections at once.
    std::vector<std::unique_ptr<unit::common::MetricsServer>> servers;
    std::vector<FleetHost> answering;
    for (int i = 0; i < count; ++i) {
        auto where = unit::common::parse_endpoint(fmt::format("inet:127.0.0.1:{}", listening_port(1, false)));
        servers.push_back(std::make_unique<unit::common::MetricsServer>(*where, [] {
            return std::string("unitpolicy_replica_generation 42\nunitpolicy_replica_info{primary_id=\"ab\"} 1\n");
        }));
        servers.back()->start();
        answering.push_back(hosts_at(servers.back()->port(), 1).front());
    }
    round("answering", answering, timeout);
    round("silent", hosts_at(listening_port(count), count), timeout);
}
