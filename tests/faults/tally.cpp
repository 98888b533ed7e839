#include "tally.hpp"

namespace unit::faults {

namespace {

std::size_t index_of(load::Protocol p) noexcept { return p == load::Protocol::Policy ? 0 : 1; }
std::size_t index_of(load::Verdict v) noexcept { return static_cast<std::size_t>(v); }

constexpr load::Protocol protocols[] = {load::Protocol::Policy, load::Protocol::Socketmap};

std::int64_t ticks(Clock::time_point t) noexcept { return t.time_since_epoch().count(); }

}  // namespace

void Counts::add(load::Protocol protocol, bool exists, load::Verdict verdict) noexcept {
    n[index_of(protocol)][exists ? 1 : 0][index_of(verdict)].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Counts::get(load::Protocol protocol, bool exists, load::Verdict verdict) const noexcept {
    return n[index_of(protocol)][exists ? 1 : 0][index_of(verdict)].load(std::memory_order_relaxed);
}

std::uint64_t Counts::get(bool exists, load::Verdict verdict) const noexcept {
    std::uint64_t sum = 0;
    for (auto p : protocols) sum += get(p, exists, verdict);
    return sum;
}

std::uint64_t Counts::get(load::Verdict verdict) const noexcept { return get(true, verdict) + get(false, verdict); }

std::uint64_t Counts::total() const noexcept {
    std::uint64_t sum = 0;
    for (auto v : {load::Verdict::Accept, load::Verdict::Reject, load::Verdict::Tempfail, load::Verdict::NoAnswer})
        sum += get(v);
    return sum;
}

void Tally::observe(const load::Request& request, const load::Reply& reply, std::chrono::nanoseconds latency) {
    load::Verdict verdict = load::classify(request.protocol, reply);
    all_.add(request.protocol, request.exists, verdict);
    // The observer runs when the reply is in: the request started `latency` ago.
    std::int64_t started = ticks(Clock::now() - latency);
    if (started >= window_begin_.load(std::memory_order_relaxed) &&
        started < window_end_.load(std::memory_order_relaxed)) {
        during_.add(request.protocol, request.exists, verdict);
        std::lock_guard lock(window_mutex_);
        window_latency_.add(latency);
    }
    if (started >= settled_from_.load(std::memory_order_relaxed))
        settled_.add(request.protocol, request.exists, verdict);
}

void Tally::set_window(Clock::time_point begin, Clock::time_point end) noexcept {
    window_end_.store(ticks(end));
    window_begin_.store(ticks(begin));
}

void Tally::set_settled_from(Clock::time_point from) noexcept { settled_from_.store(ticks(from)); }

double Tally::window_percentile_us(double p) const {
    std::lock_guard lock(window_mutex_);
    return window_latency_.percentile_us(p);
}

}  // namespace unit::faults
