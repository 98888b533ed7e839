// The attack helpers: paced loops, attacking threads, tallies of problems, requests.
#include "attack_support.hpp"

#include <fmt/format.h>

#include <thread>

namespace unit::attacks {

void Pacer::wait() {
    next_ += interval_;
    const auto now = Clock::now();
    if (next_ > now) std::this_thread::sleep_until(next_);
    else next_ = now;
}

void run_threads(unsigned threads, std::chrono::milliseconds duration,
                 const std::function<void(unsigned index, Clock::time_point deadline)>& fn) {
    const auto deadline = Clock::now() + duration;
    std::vector<std::thread> running;
    for (unsigned i = 0; i < threads; ++i) running.emplace_back([&fn, i, deadline] { fn(i, deadline); });
    for (auto& t : running) t.join();
}

void Problems::add(const std::string& kind) {
    std::lock_guard lock(mutex_);
    for (auto& [text, count] : kinds_)
        if (text == kind) {
            ++count;
            return;
        }
    kinds_.emplace_back(kind, 1);
}

std::vector<std::string> Problems::list() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [text, count] : kinds_) out.push_back(count == 1 ? text : fmt::format("{} (x{})", text, count));
    return out;
}

std::string policy_request(std::string_view recipient) {
    return fmt::format(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.7\n"
        "sender=attacker@example.org\nrecipient={}\n\n",
        recipient);
}

std::string netstring(std::string_view payload) { return fmt::format("{}:{},", payload.size(), payload); }

std::string socketmap_request(std::string_view map, std::string_view key) {
    return netstring(fmt::format("{} {}", map, key));
}

std::chrono::milliseconds close_allowance(const Target& target) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(target.limits.request_timeout) + 2000ms;
}

}  // namespace unit::attacks
