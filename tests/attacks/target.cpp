// read_counters(): the control socket's JSON line, as name -> value.
#include "target.hpp"

#include <charconv>
#include <thread>

#include "raw_socket.hpp"

namespace unit::attacks {

Counters read_counters(const std::string& control) {
    Counters counters;
    RawSocket socket = RawSocket::connect(control);
    if (!socket.ok() || !socket.wait_closed(std::chrono::seconds(2))) return counters;
    const std::string& json = socket.received();
    // {"name":123,"other":4,...}: every value is an unsigned integer.
    for (std::size_t at = json.find('"'); at != std::string::npos; at = json.find('"', at)) {
        std::size_t end = json.find('"', at + 1);
        if (end == std::string::npos || end + 2 > json.size() || json[end + 1] != ':') break;
        std::uint64_t value = 0;
        auto [next, ec] = std::from_chars(json.data() + end + 2, json.data() + json.size(), value);
        if (ec != std::errc()) break;
        counters[json.substr(at + 1, end - at - 1)] = value;
        at = static_cast<std::size_t>(next - json.data());
    }
    return counters;
}

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
