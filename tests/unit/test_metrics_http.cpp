// The Prometheus text format and the HTTP endpoint, scraped with curl.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "common/metrics_http.hpp"
#include "test_support.hpp"

using unit::common::Endpoint;
using unit::common::MetricsServer;
using unit::common::MetricsText;
using unit::test::run_command;

namespace {

Endpoint loopback_any_port() {
    Endpoint e;
    e.kind = Endpoint::Kind::Inet;
    e.host = "127.0.0.1";
    e.port = 0;
    e.text = "inet:127.0.0.1:0";
    return e;
}

std::string url(const MetricsServer& server, const char* path) {
    return "http://127.0.0.1:" + std::to_string(server.port()) + path;
}

// curl's status line code, headers and body.
unit::test::CommandResult curl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-S", "-m", "5", "-i"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
}

int idle_connection(std::uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

}  // namespace

TEST_CASE("metrics text: families, labels escaped, values") {
    MetricsText m;
    m.family("unit_requests_total", MetricsText::Type::Counter, "Requests answered.");
    m.sample("unit_requests_total", 12, {{"protocol", "policy"}});
    m.sample("unit_requests_total", 3, {{"protocol", "a\"b\\c\nd"}});
    m.family("unit_open", MetricsText::Type::Gauge, "Open connections.");
    m.sample("unit_open", 0.5);
    CHECK(m.text() ==
          "# HELP unit_requests_total Requests answered.\n"
          "# TYPE unit_requests_total counter\n"
          "unit_requests_total{protocol=\"policy\"} 12\n"
          "unit_requests_total{protocol=\"a\\\"b\\\\c\\nd\"} 3\n"
          "# HELP unit_open Open connections.\n"
          "# TYPE unit_open gauge\n"
          "unit_open 0.5\n");
}

TEST_CASE("metrics server: curl scrapes the current counters each time") {
    std::atomic<int> scrapes{0};
    MetricsServer server(loopback_any_port(), [&] {
        MetricsText m;
        m.family("unit_scrapes_total", MetricsText::Type::Counter, "Scrapes.");
        m.sample("unit_scrapes_total", ++scrapes);
        return m.text();
    });
    REQUIRE(server.port() != 0);
    server.start();

    auto first = curl({url(server, "/metrics")});
    REQUIRE(first.exit_code == 0);
    CHECK(first.out.find("HTTP/1.1 200 OK") == 0);
    CHECK(first.out.find("Content-Type: text/plain; version=0.0.4; charset=utf-8") != std::string::npos);
    CHECK(first.out.find("\r\n\r\n# HELP unit_scrapes_total Scrapes.\n# TYPE unit_scrapes_total counter\n"
                         "unit_scrapes_total 1\n") != std::string::npos);
    auto second = curl({url(server, "/metrics")});
    CHECK(second.out.find("unit_scrapes_total 2\n") != std::string::npos);
}

TEST_CASE("metrics server: other paths are 404, other methods 405, a huge header is refused") {
    MetricsServer server(loopback_any_port(), [] { return std::string("x 1\n"); });
    server.start();
    CHECK(curl({url(server, "/")}).out.find("HTTP/1.1 404") == 0);
    CHECK(curl({"-X", "POST", url(server, "/metrics")}).out.find("HTTP/1.1 405") == 0);
    auto huge = curl({"-H", "X-Big: " + std::string(20'000, 'a'), url(server, "/metrics")});
    CHECK(huge.out.find("200 OK") == std::string::npos);
    CHECK(curl({url(server, "/metrics")}).out.find("HTTP/1.1 200 OK") == 0);  // still serving
}

TEST_CASE("metrics server: idle connections do not block a scrape") {
    MetricsServer server(loopback_any_port(), [] { return std::string("x 1\n"); });
    server.start();
    std::vector<int> idle;
    for (int i = 0; i < 40; ++i) idle.push_back(idle_connection(server.port()));
    CHECK(curl({url(server, "/metrics")}).out.find("HTTP/1.1 200 OK") == 0);
    for (int fd : idle) close(fd);
}

// Whether the server closes `fd` within `ms` milliseconds.
bool closed_within(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    char byte;
    return poll(&p, 1, ms) == 1 && read(fd, &byte, 1) <= 0;
}

TEST_CASE("metrics server: a scrape is answered while more idle connections than the limit are held") {
    MetricsServer server(loopback_any_port(), [] { return std::string("x 1\n"); });
    server.start();
    std::vector<int> idle;  // 100: more than any limit, the one before this test (64) included
    for (int i = 0; i < 100; ++i) idle.push_back(idle_connection(server.port()));
    auto started = std::chrono::steady_clock::now();
    auto scrape = curl({"-m", "2", url(server, "/metrics")});
    CHECK(scrape.out.find("HTTP/1.1 200 OK") == 0);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(1));
    // The newest idle connections are still open; the oldest made room.
    CHECK(closed_within(idle.front(), 1000));
    pollfd newest{idle.back(), POLLIN, 0};
    CHECK(poll(&newest, 1, 0) == 0);
    for (int fd : idle) close(fd);
}

TEST_CASE("metrics server: a request not whole within 3 s is closed") {
    MetricsServer server(loopback_any_port(), [] { return std::string("x 1\n"); });
    server.start();
    int slow = idle_connection(server.port());
    const std::string part = "GET /metrics HTTP/1.1\r\n";
    REQUIRE(write(slow, part.data(), part.size()) == static_cast<ssize_t>(part.size()));
    auto started = std::chrono::steady_clock::now();
    CHECK(closed_within(slow, 4500));
    auto after = std::chrono::steady_clock::now() - started;
    CHECK(after > std::chrono::milliseconds(2500));
    CHECK(after < std::chrono::milliseconds(4000));
    close(slow);
}

TEST_CASE("metrics server: a unix endpoint or a busy port is a one-line error") {
    Endpoint unix_endpoint;
    unix_endpoint.kind = Endpoint::Kind::Unix;
    unix_endpoint.path = "/tmp/x";
    unix_endpoint.text = "unix:/tmp/x";
    CHECK_THROWS_WITH(MetricsServer(unix_endpoint, [] { return std::string(); }),
                      "metrics: unix:/tmp/x: an inet:host:port endpoint is required");
    MetricsServer first(loopback_any_port(), [] { return std::string(); });
    auto taken = loopback_any_port();
    taken.port = first.port();
    taken.text = "inet:127.0.0.1:" + std::to_string(first.port());
    CHECK_THROWS_AS(MetricsServer(taken, [] { return std::string(); }), std::runtime_error);
}
