// watch.hpp: what the attacks are judged by, measured while one runs: a
// well-behaved client (one persistent policy connection, one request in
// flight, as a Postfix smtpd has) and the daemon's resident memory.
//
// Watch starts both on construction and stops them in finish(): the client
// asks for `mailbox` every `interval` and times each answer; the sampler
// reads /proc/PID every 5 ms and keeps the peak, and the daemon's CPU
// share over the whole time. A request that gets no
// answer (closed connection, 5 s timeout) is a failure: its reason is kept.
// Not copyable; finish() joins the two threads and may be called once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "load.hpp"
#include "target.hpp"

namespace unit::attacks {

struct Observation {
    load::Histogram latency;  // the well-behaved client's answered requests
    std::uint64_t failures = 0;
    std::string first_failure;
    std::uint64_t peak_rss = 0;  // bytes
    std::uint64_t samples = 0;   // RSS samples taken
    double cpu_share = 0;        // the daemon's CPU time over the time watched (1: one core)
};

class Watch {
public:
    explicit Watch(const Target& target, std::chrono::microseconds interval = std::chrono::microseconds(1000));
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

    Observation finish();

private:
    void ask_loop(const Target& target);
    void sample_loop(int pid);

    std::chrono::microseconds interval_;
    std::atomic<bool> stop_{false};
    Observation client_, memory_;  // each written by its own thread only
    std::thread client_thread_, sampler_thread_;
};

}  // namespace unit::attacks
