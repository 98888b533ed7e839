// attack_support.hpp: what the attacks share: attacking threads run until a
// deadline, tallies they add to, and the requests a well-formed client sends.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "target.hpp"

namespace unit::attacks {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Paces a loop: wait() returns once `interval` has passed since the last
// return (at once when the loop is late: no burst to catch up). An
// attacking thread that never paused would measure the machine's scheduler
// more than the server.
class Pacer {
public:
    explicit Pacer(std::chrono::microseconds interval) : interval_(interval), next_(Clock::now()) {}
    void wait();

private:
    std::chrono::microseconds interval_;
    Clock::time_point next_;
};

// Runs fn(index, deadline) on `threads` threads and waits for them.
void run_threads(unsigned threads, std::chrono::milliseconds duration,
                 const std::function<void(unsigned index, Clock::time_point deadline)>& fn);

// Problems found by several threads, each kind kept once with its count.
class Problems {
public:
    void add(const std::string& kind);
    std::vector<std::string> list() const;

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, std::uint64_t>> kinds_;
};

std::string policy_request(std::string_view recipient);
std::string netstring(std::string_view payload);
std::string socketmap_request(std::string_view map, std::string_view key);

// How long the server may take to notice a broken or stalled client: its
// request_timeout, and a margin for a busy machine.
std::chrono::milliseconds close_allowance(const Target& target);

}  // namespace unit::attacks
