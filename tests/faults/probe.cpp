#include "probe.hpp"

#include <thread>

namespace unit::faults {

using Clock = std::chrono::steady_clock;

Probe::Probe(const std::string& policy_socket, const std::string& socketmap_socket, unsigned per_protocol) {
    for (unsigned i = 0; i < per_protocol; ++i) {
        lines_.push_back(Line{std::make_unique<load::Client>(policy_socket), load::Protocol::Policy});
        lines_.push_back(Line{std::make_unique<load::Client>(socketmap_socket), load::Protocol::Socketmap});
    }
}

load::Request Probe::request_for(const Line& line, const std::string& address) const {
    load::Request r;
    r.protocol = line.protocol;
    if (line.protocol == load::Protocol::Socketmap) r.map = "recipient";
    r.key = address;
    r.exists = true;
    return r;
}

bool Probe::connect(const std::string& address) {
    bool all = true;
    for (auto& line : lines_) all = line.client->ask(request_for(line, address)).ok && all;
    return all;
}

std::optional<std::chrono::nanoseconds> Probe::until_accepted(const std::string& address, Clock::time_point since,
                                                              std::chrono::milliseconds limit) {
    std::vector<bool> accepted(lines_.size(), false);
    std::size_t missing = lines_.size();
    Clock::time_point last{};
    while (missing > 0) {
        if (Clock::now() - since > limit) return std::nullopt;
        for (std::size_t i = 0; i < lines_.size(); ++i) {
            if (accepted[i]) continue;
            load::Request request = request_for(lines_[i], address);
            if (load::classify(request.protocol, lines_[i].client->ask(request)) != load::Verdict::Accept) continue;
            accepted[i] = true;
            --missing;
            last = Clock::now();
        }
        if (missing > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::chrono::duration_cast<std::chrono::nanoseconds>(last - since);
}

}  // namespace unit::faults
