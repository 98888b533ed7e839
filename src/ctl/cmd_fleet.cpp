// cmd_fleet.cpp: fleet status, fleet wait: what each daemon of the fleet
// serves, read from its /metrics (fleet_report.hpp), and a barrier that
// waits until every one serves a generation. They write nothing.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <ostream>
#include <thread>

#include "common/json_writer.hpp"
#include "ctl/command.hpp"
#include "ctl/fleet_fetch.hpp"
#include "ctl/fleet_hosts.hpp"
#include "ctl/fleet_report.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long one request of `wait` may take, at most: a host that does not
// answer is asked again at the next poll.
constexpr std::chrono::milliseconds max_request_time = 5s;
constexpr std::chrono::milliseconds poll_interval = 1s;

void declare_status(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("hosts", po::value<std::string>()->value_name("FILE"), "the hosts file (default: fleet_hosts)")
        ("timeout", po::value<std::string>()->value_name("S"), "how long each host may take (default 5s)");
    // clang-format on
    declare_json(options);
}

void declare_wait(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("generation", po::value<std::int64_t>()->value_name("G"),
         "the generation to wait for (default: the primary's)")
        ("timeout", po::value<std::string>()->value_name("S"), "how long to wait (default 300s)")
        ("hosts", po::value<std::string>()->value_name("FILE"), "the hosts file (default: fleet_hosts)");
    // clang-format on
}

std::vector<FleetHost> hosts_of(const Invocation& inv, std::string_view command) {
    auto path = inv.option("hosts").value_or(inv.settings.fleet_hosts);
    if (path.empty())
        throw UsageError(fmt::format("{}: no hosts file (--hosts FILE, or fleet_hosts in the configuration)", command));
    return unwrap(read_fleet_hosts(path));
}

std::chrono::milliseconds timeout_of(const Invocation& inv, std::string_view command, std::chrono::seconds fallback) {
    auto text = inv.option("timeout");
    return text ? duration_or_usage(*text, fmt::format("{}: --timeout", command)) : fallback;
}

std::vector<HostReport> reports_of(const std::vector<FleetHost>& hosts, std::chrono::milliseconds timeout) {
    std::vector<HostReport> reports;
    for (const auto& fetched : fetch_all(hosts, timeout)) reports.push_back(report_of(fetched));
    return reports;
}

void run_status(Invocation& inv) {
    const auto hosts = hosts_of(inv, "fleet status");
    const auto timeout = timeout_of(inv, "fleet status", 5s);
    const auto reports = reports_of(hosts, std::max<std::chrono::milliseconds>(timeout, 1ms));
    const auto now = std::time(nullptr);
    std::size_t silent = 0;
    const bool json = json_output(inv);
    common::JsonArrayWriter array(inv.out);
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        if (json) array.add(status_json(hosts[i], reports[i], now));
        else inv.out << status_line(hosts[i], reports[i], now) << '\n';
        silent += reports[i].answered() ? 0 : 1;
    }
    if (json) array.close();
    if (silent != 0) throw Failure(fmt::format("fleet status: {} of {} hosts did not answer", silent, hosts.size()));
}

Target target_of(const Invocation& inv) {
    if (auto g = inv.options.find("generation"); g != inv.options.end())
        return Target{g->second.as<std::int64_t>(), std::nullopt};  // no database read
    auto meta = read_database_meta(inv.settings.db);
    if (!meta)
        throw Failure(fmt::format("fleet wait: no --generation, and the primary cannot say its own: {}",
                                  meta.error().message));
    return Target{meta->generation, meta->primary_id};
}

void run_wait(Invocation& inv) {
    const auto hosts = hosts_of(inv, "fleet wait");
    const auto timeout = timeout_of(inv, "fleet wait", 300s);
    const auto target = target_of(inv);
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    for (;;) {
        const auto poll = Clock::now();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - poll);
        const auto reports = reports_of(hosts, std::clamp<std::chrono::milliseconds>(left, 100ms, max_request_time));
        const auto lines = lagging(hosts, reports, target);
        const auto took = std::chrono::duration<double>(Clock::now() - start).count();
        if (lines.empty()) {
            inv.progress.clear();
            inv.out << fmt::format("every host ({}) serves generation {} or later, after {:.1f} s\n", hosts.size(),
                                   target.generation, took);
            return;
        }
        inv.progress.show(fmt::format("{} of {} hosts lag behind generation {} ({:.0f} s)", lines.size(), hosts.size(),
                                      target.generation, took));
        if (Clock::now() >= deadline) {
            inv.progress.clear();
            for (const auto& line : lines) inv.out << line << '\n';
            throw Failure(fmt::format("fleet wait: {} of {} hosts lag behind generation {} after {:.1f} s",
                                      lines.size(), hosts.size(), target.generation, took));
        }
        std::this_thread::sleep_until(std::min(poll + poll_interval, deadline));
    }
}

constexpr std::array<Command, 2> commands{{
    {"fleet status", "", "[--hosts FILE] [--timeout S] [--json]", "show what each host of the fleet serves",
     declare_status, run_status, true},
    {"fleet wait", "", "[--generation G] [--timeout S] [--hosts FILE]", "wait until every host serves a generation",
     declare_wait, run_wait, true},
}};

}  // namespace

std::span<const Command> fleet_commands() noexcept { return commands; }

}  // namespace unit::ctl
