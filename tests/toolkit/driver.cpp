// drive(): the workload on N threads, one request in flight on each.
#include <memory>
#include <thread>

#include "load.hpp"

namespace unit::load {

namespace {

using Clock = std::chrono::steady_clock;

// After a request got no answer (the server is gone or refuses), wait a
// little before the next one, as Postfix does, rather than spin on
// connect().
constexpr auto no_answer_pause = std::chrono::milliseconds(10);

// One sending thread: a connection per protocol, opened when first needed,
// so a single-protocol workload uses exactly one connection per thread.
class Sender {
public:
    Sender(const DriverOptions& options)
        : policy_(options.policy_socket, options.timeout), socketmap_(options.socketmap_socket, options.timeout) {}

    Reply ask(const Request& request) {
        return (request.protocol == Protocol::Policy ? policy_ : socketmap_).ask(request);
    }

private:
    Client policy_, socketmap_;
};

struct ThreadResult {
    std::uint64_t requests = 0;
    Histogram latency;
};

bool should_stop(const std::atomic<bool>* stop, Clock::time_point end, bool timed) noexcept {
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) return true;
    return timed && Clock::now() >= end;
}

void run_thread(const DriverOptions& options, const std::vector<Request>& workload, std::size_t offset,
                const Observer& observer, const std::atomic<bool>* stop, Clock::time_point end, ThreadResult& result) {
    Sender sender(options);
    bool timed = options.duration.count() > 0;
    std::size_t i = offset;
    while (!should_stop(stop, end, timed)) {
        const Request& request = workload[i];
        i = i + 1 == workload.size() ? 0 : i + 1;
        auto start = Clock::now();
        Reply reply = sender.ask(request);
        auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
        result.requests++;
        result.latency.add(latency);
        if (observer) observer(request, reply, latency);
        if (!reply.ok) std::this_thread::sleep_for(no_answer_pause);
    }
}

}  // namespace

double DriverResult::rate() const noexcept {
    double seconds = std::chrono::duration<double>(elapsed).count();
    return seconds > 0 ? static_cast<double>(requests) / seconds : 0;
}

DriverResult drive(const DriverOptions& options, const std::vector<Request>& workload, const Observer& observer,
                   const std::atomic<bool>* stop) {
    DriverResult total;
    if (workload.empty() || options.connections == 0) return total;
    std::vector<ThreadResult> results(options.connections);
    std::vector<std::thread> threads;
    threads.reserve(options.connections);
    auto start = Clock::now();
    auto end = start + options.duration;
    for (unsigned t = 0; t < options.connections; ++t) {
        std::size_t offset = workload.size() * t / options.connections;
        threads.emplace_back(run_thread, std::cref(options), std::cref(workload), offset, std::cref(observer), stop,
                             end, std::ref(results[t]));
    }
    for (auto& thread : threads) thread.join();
    total.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    for (const auto& r : results) {
        total.requests += r.requests;
        total.latency.merge(r.latency);
    }
    return total;
}

}  // namespace unit::load
