// counter() and wait_open_at_most(): the control socket's counters, read.
#include "target.hpp"

#include <thread>

namespace unit::attacks {

std::uint64_t counter(const Counters& counters, const std::string& name) {
    auto it = counters.find(name);
    return it == counters.end() ? 0 : it->second;
}

bool wait_open_at_most(const Target& target, std::uint64_t open, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        Counters now = read_counters(target.control);
        if (!now.empty() && counter(now, "connections_open") <= open) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace unit::attacks
