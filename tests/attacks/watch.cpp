// Watch: the well-behaved client's loop and the memory sampler.
#include "watch.hpp"

#include <optional>

namespace unit::attacks {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto sample_interval = std::chrono::milliseconds(5);

}  // namespace

Watch::Watch(const Target& target, std::chrono::microseconds interval) : interval_(interval) {
    client_thread_ = std::thread([this, &target] { ask_loop(target); });
    sampler_thread_ = std::thread([this, pid = target.pid] { sample_loop(pid); });
}

Watch::~Watch() {
    stop_ = true;
    if (client_thread_.joinable()) client_thread_.join();
    if (sampler_thread_.joinable()) sampler_thread_.join();
}

Observation Watch::finish() {
    stop_ = true;
    client_thread_.join();
    sampler_thread_.join();
    Observation result = std::move(client_);
    result.peak_rss = memory_.peak_rss;
    result.samples = memory_.samples;
    result.cpu_share = memory_.cpu_share;
    return result;
}

void Watch::ask_loop(const Target& target) {
    load::Client client(target.policy);
    const load::Request request{load::Protocol::Policy, "", target.mailbox, true};
    auto next = Clock::now();
    while (!stop_) {
        auto start = Clock::now();
        load::Reply reply = client.ask(request);
        auto took = Clock::now() - start;
        if (reply.ok && reply.text == "DUNNO") {
            client_.latency.add(took);
        } else {
            if (client_.failures++ == 0) client_.first_failure = reply.ok ? "answer " + reply.text : reply.text;
        }
        next += interval_;
        auto now = Clock::now();
        if (next > now) std::this_thread::sleep_until(next);
        else next = now;  // late (the machine is busy): no burst to catch up
    }
}

void Watch::sample_loop(int pid) {
    const auto started = Clock::now();
    std::optional<double> first_cpu;
    double last_cpu = 0;
    while (!stop_) {
        if (auto sample = load::ProcessSample::read(pid)) {
            memory_.peak_rss = std::max(memory_.peak_rss, sample->rss_bytes);
            ++memory_.samples;
            if (!first_cpu) first_cpu = sample->cpu_seconds;
            last_cpu = sample->cpu_seconds;
        }
        std::this_thread::sleep_for(sample_interval);
    }
    const double watched = std::chrono::duration<double>(Clock::now() - started).count();
    if (first_cpu && watched > 0) memory_.cpu_share = (last_cpu - *first_cpu) / watched;
}

}  // namespace unit::attacks
