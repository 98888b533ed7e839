// metrics_http.hpp: the daemons' live counters for Prometheus.
//
// MetricsText builds the Prometheus text exposition format (version 0.0.4):
// one "# HELP" and "# TYPE" per family, then its samples with escaped label
// values. Pure; not thread-safe (one per scrape).
//
// MetricsServer answers HTTP/1.1 GET /metrics (Boost.Beast) on one
// inet:host:port endpoint, on a thread of its own so that a slow scraper
// never delays mail. A connection has 3 s to send its whole request, then
// 5 s to take the reply, and is closed after it. At most max_connections
// are open at once: a new one closes the one that has waited longest for
// its request (idle clients cannot lock a scraper out); only when every one
// is being answered is the new one closed instead.
// render() is called on that thread for every scrape: it must only read
// thread-safe state (atomics). Other paths get 404, other methods 405.
// The constructor binds (as root, before privileges are dropped) and throws
// std::runtime_error with a one-line reason; start() begins serving; the
// destructor stops the thread. Logs nothing (a failed scrape is the
// scraper's to see).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/endpoint.hpp"

namespace unit::common {

class MetricsText {
public:
    using Labels = std::vector<std::pair<std::string_view, std::string_view>>;
    enum class Type { Counter, Gauge, Histogram };

    // Starts a family; its samples follow with sample().
    void family(std::string_view name, Type type, std::string_view help);
    void sample(std::string_view name, double value, const Labels& labels = {});
    const std::string& text() const noexcept { return text_; }

private:
    std::string text_;
};

class MetricsServer {
public:
    using Render = std::function<std::string()>;
    static constexpr std::size_t max_connections = 16;

    MetricsServer(const Endpoint& where, Render render);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    void start();
    std::uint16_t port() const noexcept;  // the bound port (useful with port 0)

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace unit::common
