// bench_lookup: the lookup benchmark of DESIGN §8 (tests/bench/README.md
// is its manual). For one directory size it starts the floor server beside
// unitpolicy (policy, then socketmap; their runs alternate), then
// unitmilter, and drives each with the load generator of tests/toolkit/; it prints one JSON
// object per figure on standard output (--json) and a readable line per
// figure on standard error. With --target it drives a server it did not
// start (baselines.sh).
//
// A figure is the median of --repeats short runs after a warm-up, each
// with the server's CPU time from /proc/PID/stat; the counts are summed;
// each run's rate and p99 are printed too (the spread). Start-up is timed
// twice per repeat: on a new file, then restarted on the same file.
// The floor's and unitpolicy's runs alternate, so that a ratio between
// them compares runs seconds apart, not minutes.
// The programs measured are found beside this one in the build tree
// (../../src/...), or named by UNITPOLICY, UNITMILTER, FLOOR_SERVER.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "bench_keys.hpp"
#include "daemon.hpp"
#include "load.hpp"
#include "milter_client.hpp"

using namespace std::chrono_literals;
using unit::load::Protocol;
using unit::load::Request;
using unit::load::Verdict;

namespace {

struct Options {
    std::size_t mailboxes = 0;
    std::string dir;
    std::vector<unsigned> connections{8, 64};
    double seconds = 5;
    double unknown_share = 0.2;
    unsigned repeats = 3;
    std::set<std::string> only{"floor", "policy", "socketmap", "startup", "milter"};
    bool json = false;
    std::string target;  // policy:unix:PATH or socketmap:unix:PATH:MAP
    std::string keys;
    std::string label = "target";
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "bench_lookup: " << why << "\n"
              << "usage: bench_lookup --mailboxes N --dir DIR [--connections 8,64] [--seconds S] [--repeats R]\n"
                 "                    [--unknown-share 0.2] [--only floor,policy,socketmap,startup,milter] [--json]\n"
                 "       bench_lookup --target policy:unix:PATH|socketmap:unix:PATH:MAP --keys FILE\n"
                 "                    [--connections N] [--seconds S] [--unknown-share 0.2] [--label NAME] [--json]\n";
    std::exit(2);
}

std::vector<std::string> split(const std::string& text, char by) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, by);)
        if (!part.empty()) parts.push_back(part);
    return parts;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string option = argv[i];
        if (option == "--json") {
            o.json = true;
            continue;
        }
        static const std::set<std::string> known{"--mailboxes",     "--dir",  "--connections", "--seconds", "--repeats",
                                                 "--unknown-share", "--only", "--target",      "--keys",    "--label"};
        if (!known.contains(option)) usage("unknown option " + option);
        if (i + 1 >= argc) usage(option + " needs a value");
        std::string value = argv[++i];
        try {
            if (option == "--mailboxes") o.mailboxes = std::stoul(value);
            else if (option == "--dir") o.dir = value;
            else if (option == "--connections") {
                o.connections.clear();
                for (const auto& c : split(value, ',')) o.connections.push_back(static_cast<unsigned>(std::stoul(c)));
            } else if (option == "--seconds") o.seconds = std::stod(value);
            else if (option == "--repeats") o.repeats = static_cast<unsigned>(std::stoul(value));
            else if (option == "--unknown-share") o.unknown_share = std::stod(value);
            else if (option == "--only") {
                auto parts = split(value, ',');
                o.only = {parts.begin(), parts.end()};
            } else if (option == "--target") o.target = value;
            else if (option == "--keys") o.keys = value;
            else o.label = value;  // --label
        } catch (const std::logic_error&) {
            usage("bad value for " + option + ": " + value);
        }
    }
    if (o.connections.empty() || o.seconds <= 0 || o.repeats == 0) usage("bad --connections, --seconds or --repeats");
    if (o.target.empty() && (o.mailboxes == 0 || o.dir.empty())) usage("give --mailboxes and --dir, or --target");
    if (!o.target.empty() && o.keys.empty()) usage("--target needs --keys");
    return o;
}

std::string program(const char* variable, const std::string& relative) {
    if (const char* path = std::getenv(variable)) return path;
    auto self = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    return (self / relative).lexically_normal().string();
}

// ------------------------------------------------------------ figures

struct Run {
    double rate = 0, p50 = 0, p99 = 0, p999 = 0, cpu_us = -1;
};

struct Figure {
    std::uint64_t requests = 0;
    double seconds = 0;
    Run median;
    std::uint64_t rss_bytes = 0;
    std::uint64_t counts[4] = {};  // by Verdict
    std::uint64_t wrong = 0;
    std::vector<Run> runs;  // in the order they ran: the spread of the figure
};

double median_of(std::vector<Run>& runs, double Run::*field) {
    std::sort(runs.begin(), runs.end(), [&](const Run& a, const Run& b) { return a.*field < b.*field; });
    return runs[runs.size() / 2].*field;
}

// "[a,b,c]": one field of each run, in run order.
std::string run_list(const std::vector<Run>& runs, double Run::*field, int decimals = 0) {
    std::string out = "[";
    for (const auto& run : runs) out += fmt::format("{}{:.{}f}", out.size() > 1 ? "," : "", run.*field, decimals);
    return out + "]";
}

// One server's figure, built run by run, so that the runs of two servers
// can alternate: a ratio between them then sees the same machine, not
// whatever else it was doing a minute apart. pid > 0: the server whose CPU
// time and memory are measured.
class Series {
public:
    Series(unit::load::DriverOptions driver, const std::vector<Request>& workload, int pid, bool check_truth)
        : driver_(std::move(driver)), workload_(workload), pid_(pid), check_truth_(check_truth) {}

    // Connections, caches and threads warm; nothing counted.
    void warm_up(std::chrono::milliseconds duration) {
        driver_.duration = duration;
        unit::load::drive(driver_, workload_);
    }

    void run(std::chrono::milliseconds duration) {
        driver_.duration = duration;
        auto before = pid_ > 0 ? unit::load::ProcessSample::read(pid_) : std::nullopt;
        auto result = unit::load::drive(driver_, workload_,
                                        [this](const Request& request, const unit::load::Reply& reply,
                                               std::chrono::nanoseconds) { count(request, reply); });
        auto after = pid_ > 0 ? unit::load::ProcessSample::read(pid_) : std::nullopt;
        Run run{result.rate(), result.latency.percentile_us(50), result.latency.percentile_us(99),
                result.latency.percentile_us(99.9), -1};
        if (before && after && result.requests > 0)
            run.cpu_us = (after->cpu_seconds - before->cpu_seconds) * 1e6 / static_cast<double>(result.requests);
        if (after) figure_.rss_bytes = after->rss_bytes;
        figure_.requests += result.requests;
        figure_.seconds += std::chrono::duration<double>(result.elapsed).count();
        runs_.push_back(run);
    }

    // The medians of the runs so far; the counts summed.
    Figure figure() {
        Figure f = figure_;
        f.runs = runs_;  // before median_of sorts them
        f.median = {median_of(runs_, &Run::rate), median_of(runs_, &Run::p50), median_of(runs_, &Run::p99),
                    median_of(runs_, &Run::p999), median_of(runs_, &Run::cpu_us)};
        for (int v = 0; v < 4; ++v) f.counts[v] = counts_[v];
        f.wrong = wrong_;
        return f;
    }

private:
    void count(const Request& request, const unit::load::Reply& reply) {
        Verdict verdict = unit::load::classify(request.protocol, reply);
        counts_[static_cast<int>(verdict)].fetch_add(1, std::memory_order_relaxed);
        bool contradicts = (verdict == Verdict::Accept && !request.exists) ||
                           (verdict == Verdict::Reject && request.exists);
        if (check_truth_ && contradicts) wrong_.fetch_add(1, std::memory_order_relaxed);
    }

    unit::load::DriverOptions driver_;
    const std::vector<Request>& workload_;
    int pid_;
    bool check_truth_;
    Figure figure_;
    std::vector<Run> runs_;
    std::atomic<std::uint64_t> counts_[4] = {};  // by Verdict; the observer runs on the driver's threads
    std::atomic<std::uint64_t> wrong_{0};
};

// The length of one run of a figure, and of the warm-up before the first.
std::chrono::milliseconds run_length(const Options& o) {
    return std::chrono::milliseconds(static_cast<long>(o.seconds * 1000 / o.repeats));
}
std::chrono::milliseconds warm_up_length(const Options& o) {
    return std::min<std::chrono::milliseconds>(500ms, run_length(o));
}

void print(const Options& o, const std::string& json, const std::string& human) {
    std::cerr << human << std::endl;
    if (o.json) std::cout << json << std::endl;
}

void print_lookup(const Options& o, const std::string& server, Protocol protocol, const std::string& map,
                  unsigned connections, const Figure& f, bool measured_server, double floor_rate) {
    const char* protocol_name = protocol == Protocol::Policy ? "policy" : "socketmap";
    std::string json = fmt::format(R"({{"kind":"lookup","server":"{}","protocol":"{}")", server, protocol_name);
    if (!map.empty()) json += fmt::format(R"(,"map":"{}")", map);
    if (o.mailboxes > 0) json += fmt::format(R"(,"mailboxes":{})", o.mailboxes);
    json += fmt::format(R"(,"connections":{},"requests":{},"seconds":{:.2f},"rate":{:.0f},"p50_us":{:.0f},)"
                        R"("p99_us":{:.0f},"p999_us":{:.0f})",
                        connections, f.requests, f.seconds, f.median.rate, f.median.p50, f.median.p99, f.median.p999);
    json += fmt::format(R"(,"rates":{},"p99s_us":{})", run_list(f.runs, &Run::rate), run_list(f.runs, &Run::p99));
    if (measured_server)
        json += fmt::format(R"(,"cpu_us_per_lookup":{:.2f},"rss_bytes":{})", f.median.cpu_us, f.rss_bytes);
    json += fmt::format(R"(,"accept":{},"reject":{},"tempfail":{},"noanswer":{},"wrong":{}}})", f.counts[0],
                        f.counts[1], f.counts[2], f.counts[3], f.wrong);
    std::string share = floor_rate > 0 ? fmt::format(" ({:.0f}% of floor)", 100 * f.median.rate / floor_rate) : "";
    std::string human = fmt::format("{} {}{} {} conns: {:.0f}/s{} p50 {:.0f} p99 {:.0f} p999 {:.0f} us", server,
                                    protocol_name, map.empty() ? "" : "/" + map, connections, f.median.rate, share,
                                    f.median.p50, f.median.p99, f.median.p999);
    if (measured_server)
        human += fmt::format(", cpu {:.2f} us/lookup, rss {:.1f} MB", f.median.cpu_us, f.rss_bytes / 1048576.0);
    human += fmt::format(", tempfail {} noanswer {} wrong {}", f.counts[2], f.counts[3], f.wrong);
    print(o, json, human);
}

// ------------------------------------------------------------ workloads

std::vector<Request> only_protocol(const unit::load::Dataset& data, double unknown_share, Protocol protocol,
                                   const std::string& map = {}) {
    // An alias exists for the recipient map only: transportmx answers for
    // the mailboxes Postfix rewrites it to, so other maps get no aliases.
    const std::unordered_set<std::string> aliases(data.aliases.begin(), data.aliases.end());
    const bool keep_aliases = map.empty() || map == "recipient";
    std::vector<Request> picked;
    for (auto& r : unit::load::mixed_workload(data, unknown_share, 200'000)) {
        if (r.protocol != protocol || (!keep_aliases && aliases.contains(r.key))) continue;
        if (!map.empty()) r.map = map;
        picked.push_back(std::move(r));
    }
    return picked;
}

// ------------------------------------------------------------ servers

struct Bench {
    Options o;
    std::string dir;  // work files: sockets and logs
    std::string replica;
    unit::load::Dataset data;
    double floor_rate[2][256] = {};  // by protocol, connections (when < 256)

    unit::toolkit::Daemon start(const std::vector<std::string>& argv, const std::vector<std::string>& sockets,
                                const std::string& name) {
        for (const auto& s : sockets) std::filesystem::remove(s);
        std::string why;
        auto process = unit::toolkit::Daemon::start(argv, sockets, dir + "/" + name + ".log", 30s, why);
        if (!process) throw std::runtime_error(why);
        return std::move(*process);
    }

    std::vector<std::string> unitpolicy_argv(const std::string& policy, const std::string& map) const {
        std::vector<std::string> argv{program("UNITPOLICY", "../../src/policyd/unitpolicy"), "--db", replica, "--log",
                                      "stderr"};
        if (!policy.empty()) argv.insert(argv.end(), {"--policy-listen", "unix:" + policy});
        if (!map.empty()) argv.insert(argv.end(), {"--socketmap-listen", "unix:" + map});
        return argv;
    }

    double floor_of(Protocol p, unsigned c) const { return c < 256 ? floor_rate[static_cast<int>(p)][c] : 0; }

    // The floor and unitpolicy (either may be left out) at each connection
    // count, their runs alternating.
    void lookups(Protocol protocol, bool with_floor, bool with_unitpolicy) {
        const bool socketmap = protocol == Protocol::Socketmap;
        const std::string map_name = socketmap ? "recipient+transportmx" : "";
        auto workload = only_protocol(data, o.unknown_share, protocol);
        for (unsigned c : o.connections) {
            std::vector<unit::toolkit::Daemon> processes;
            std::vector<std::pair<std::string, std::unique_ptr<Series>>> series;
            auto add = [&](const std::string& server, const std::string& policy, const std::string& map,
                           const std::vector<std::string>& argv) {
                processes.push_back(start(argv, {socketmap ? map : policy}, server));
                unit::load::DriverOptions driver;
                driver.policy_socket = policy;
                driver.socketmap_socket = map;
                driver.connections = c;
                series.emplace_back(server, std::make_unique<Series>(driver, workload, processes.back().pid(),
                                                                     server != "floor"));
            };
            if (with_floor) {
                const std::string policy = dir + "/floor-policy.sock", map = dir + "/floor-map.sock";
                add("floor", policy, map,
                    {program("FLOOR_SERVER", "floor_server"), "--policy", policy, "--socketmap", map});
            }
            if (with_unitpolicy) {
                const std::string policy = dir + "/policy.sock", map = dir + "/map.sock";
                add("unitpolicy", policy, map, unitpolicy_argv(socketmap ? "" : policy, socketmap ? map : ""));
            }
            for (auto& [server, s] : series) s->warm_up(warm_up_length(o));
            for (unsigned r = 0; r < o.repeats; ++r)
                for (auto& [server, s] : series) s->run(run_length(o));
            for (auto& [server, s] : series) {
                Figure f = s->figure();
                if (server == "floor" && c < 256) floor_rate[static_cast<int>(protocol)][c] = f.median.rate;
                print_lookup(o, server, protocol, map_name, c, f, true, server == "floor" ? 0 : floor_of(protocol, c));
            }
        }
    }

    // From exec to the first socketmap answer on DB; the memory then.
    std::pair<double, std::uint64_t> start_once(const std::string& db) {
        const std::string map = dir + "/map.sock";
        std::filesystem::remove(map);
        unit::load::Request probe{Protocol::Socketmap, "recipient", data.existing.front(), true};
        auto argv = unitpolicy_argv("", map);
        argv[2] = db;  // after --db
        // The record of checked files that lets a restart skip the check
        // (a fresh copy is another file: its first start checks it).
        const std::string record = dir + "/checked";
        std::filesystem::create_directories(record);
        argv.insert(argv.end(), {"--cache-directory", record});
        auto t0 = std::chrono::steady_clock::now();
        auto process = start(argv, {}, "startup");
        unit::load::Client client(map, 1s);
        for (;;) {
            auto reply = client.ask(probe);
            if (reply.ok) {
                if (unit::load::classify(Protocol::Socketmap, reply) != Verdict::Accept)
                    throw std::runtime_error("start-up probe: unexpected answer " + reply.text);
                break;
            }
            if (!process.alive()) throw std::runtime_error("unitpolicy exited during start-up (see startup.log)");
            if (std::chrono::steady_clock::now() - t0 > 30s) throw std::runtime_error("unitpolicy: no answer in 30 s");
            std::this_thread::sleep_for(1ms);
        }
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        auto sample = unit::load::ProcessSample::read(process.pid());
        process.stop();  // SIGTERM: a clean exit, whatever the daemon keeps for its next start written
        return {ms, sample ? sample->rss_bytes : 0};
    }

    // Start-up twice, --repeats times, alternating: a first start on a
    // file no unitpolicy has opened (a fresh copy of the replica: a new
    // inode, as a publication's rename gives), then a restart on the same
    // unchanged file, which a daemon remembering a validated file's
    // verdict may answer without validating it again.
    void startup() {
        const std::string db = dir + "/startup.db";
        std::vector<Run> first, restart;
        std::uint64_t rss[2] = {};
        for (unsigned r = 0; r < o.repeats; ++r) {
            std::filesystem::remove(db);
            std::filesystem::copy_file(replica, db);
            auto [first_ms, first_rss] = start_once(db);
            auto [restart_ms, restart_rss] = start_once(db);
            first.push_back(Run{.rate = first_ms});
            restart.push_back(Run{.rate = restart_ms});
            rss[0] = std::max(rss[0], first_rss);
            rss[1] = std::max(rss[1], restart_rss);
        }
        std::filesystem::remove(db);
        const std::pair<const char*, std::vector<Run>*> starts[] = {{"first", &first}, {"restart", &restart}};
        for (unsigned i = 0; i < 2; ++i) {
            auto& runs = *starts[i].second;
            std::string list = run_list(runs, &Run::rate, 1);
            double ms = median_of(runs, &Run::rate);
            print(o,
                  fmt::format(
                      R"({{"kind":"startup","server":"unitpolicy","mailboxes":{},"start":"{}","startup_ms":{:.1f},)"
                      R"("runs_ms":{},"rss_bytes":{}}})",
                      o.mailboxes, starts[i].first, ms, list, rss[i]),
                  fmt::format("unitpolicy start-up ({}): {:.1f} ms to the first answer (runs {}), rss {:.1f} MB",
                              starts[i].first, ms, list, rss[i] / 1048576.0));
        }
    }

    void milter() {
        const std::string sock = dir + "/milter.sock";
        auto process = start({program("UNITMILTER", "../../src/milter/unitmilter"), "--db", replica, "--listen",
                              "unix:" + sock, "--log", "stderr", "--role", "mx", "--hostname", "bench.example"},
                             {sock}, "milter");
        for (unsigned c : o.connections) milter_run(process.pid(), sock, c);
    }

    void milter_run(int pid, const std::string& sock, unsigned connections) {
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> outcomes[4] = {};
        std::vector<unit::load::Histogram> latencies(connections);
        auto body = [&](unsigned index) {
            unit::toolkit::MilterClient client(sock, 5s);
            unit::toolkit::MilterMessage m;
            m.headers = {{"From", "Sender <sender@example.net>"},
                         {"To", "<to@example.com>"},
                         {"Subject", "benchmark"},
                         {"Date", "Sun, 29 Nov 2026 12:00:00 +0000"},
                         {"Message-ID", "<bench@example.net>"}};
            for (std::size_t i = index * 7919; !stop.load(std::memory_order_relaxed); ++i) {
                m.recipients = {"<" + data.existing[i % data.existing.size()] + ">"};
                auto t0 = std::chrono::steady_clock::now();
                auto result = client.transaction(m);
                latencies[index].add(std::chrono::steady_clock::now() - t0);
                outcomes[static_cast<int>(result.outcome)].fetch_add(1, std::memory_order_relaxed);
                if (result.outcome == unit::toolkit::MilterOutcome::NoAnswer) {
                    std::cerr << "bench_lookup: milter: " << result.why << std::endl;
                    std::this_thread::sleep_for(10ms);
                }
            }
        };
        auto before = unit::load::ProcessSample::read(pid);
        auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> threads;
        for (unsigned i = 0; i < connections; ++i) threads.emplace_back(body, i);
        std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(o.seconds * 1000)));
        stop = true;
        for (auto& t : threads) t.join();
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        auto after = unit::load::ProcessSample::read(pid);
        unit::load::Histogram all;
        for (const auto& h : latencies) all.merge(h);
        std::uint64_t messages = all.count();
        double cpu = before && after && messages > 0 ? (after->cpu_seconds - before->cpu_seconds) * 1e6 / messages : -1;
        std::uint64_t rss = after ? after->rss_bytes : 0;
        double rate = messages / seconds;
        print(
            o,
            fmt::format(R"({{"kind":"milter","server":"unitmilter","mailboxes":{},"connections":{},"messages":{},)"
                        R"("seconds":{:.2f},"rate":{:.0f},"p50_us":{:.0f},"p99_us":{:.0f},"cpu_us_per_message":{:.1f},)"
                        R"("rss_bytes":{},"continue":{},"tempfail":{},"reject":{},"noanswer":{}}})",
                        o.mailboxes, connections, messages, seconds, rate, all.percentile_us(50), all.percentile_us(99),
                        cpu, rss, outcomes[0].load(), outcomes[1].load(), outcomes[2].load(), outcomes[3].load()),
            fmt::format(
                "unitmilter {} conns: {:.0f} msgs/s p50 {:.0f} p99 {:.0f} us, cpu {:.1f} us/msg, rss {:.1f} MB, "
                "tempfail {} reject {} noanswer {}",
                connections, rate, all.percentile_us(50), all.percentile_us(99), cpu, rss / 1048576.0,
                outcomes[1].load(), outcomes[2].load(), outcomes[3].load()));
        if (outcomes[0] == 0 || outcomes[2] > 0 || outcomes[3] > 0)
            throw std::runtime_error("unitmilter refused or dropped messages (see milter.log)");
    }
};

int run_directory(const Options& o) {
    std::filesystem::create_directories(o.dir);
    auto prepared = unit::bench::prepare_directory(o.dir, o.mailboxes);
    std::uint64_t bytes = std::filesystem::file_size(prepared.replica);
    print(o,
          fmt::format(R"({{"kind":"dataset","mailboxes":{},"made":{},"seconds":{:.1f},"replica_bytes":{}}})",
                      o.mailboxes, prepared.made, prepared.seconds, bytes),
          fmt::format("directory of {} mailboxes: {} ({:.1f} s), replica {:.1f} MB", o.mailboxes,
                      prepared.made ? "made" : "reused", prepared.seconds, bytes / 1048576.0));
    Bench bench;
    bench.o = o;
    bench.dir = o.dir + "/run";
    std::filesystem::create_directories(bench.dir);
    bench.replica = prepared.replica;
    bench.data = std::move(prepared.data);
    bool all_right = true;
    auto part = [&](const char* name, bool wanted, const std::function<void()>& body) {
        if (!wanted) return;
        try {
            body();
        } catch (const std::exception& e) {
            std::cerr << "bench_lookup: " << name << ": " << e.what() << std::endl;
            all_right = false;
        }
    };
    // The floor's runs alternate with unitpolicy's, protocol by protocol.
    const bool floor = o.only.contains("floor");
    for (const auto& [name, protocol] :
         {std::pair{"policy", Protocol::Policy}, std::pair{"socketmap", Protocol::Socketmap}}) {
        const bool ours = o.only.contains(name);
        part(name, floor || ours, [&, protocol = protocol] { bench.lookups(protocol, floor, ours); });
    }
    part("startup", o.only.contains("startup"), [&] { bench.startup(); });
    part("milter", o.only.contains("milter"), [&] { bench.milter(); });
    return all_right ? 0 : 1;
}

int run_target(const Options& o) {
    auto parts = split(o.target, ':');
    bool socketmap = !parts.empty() && parts[0] == "socketmap";
    if (parts.size() != (socketmap ? 4u : 3u) || parts[1] != "unix" || (!socketmap && parts[0] != "policy"))
        usage("--target policy:unix:PATH or socketmap:unix:PATH:MAP");
    Protocol protocol = socketmap ? Protocol::Socketmap : Protocol::Policy;
    auto data = unit::bench::read_keys(o.keys);
    auto workload = only_protocol(data, o.unknown_share, protocol, socketmap ? parts[3] : "");
    for (unsigned c : o.connections) {
        unit::load::DriverOptions driver;
        (socketmap ? driver.socketmap_socket : driver.policy_socket) = parts[2];
        driver.connections = c;
        Series series(driver, workload, 0, true);
        series.warm_up(warm_up_length(o));
        for (unsigned r = 0; r < o.repeats; ++r) series.run(run_length(o));
        Figure f = series.figure();
        print_lookup(o, o.label, protocol, socketmap ? parts[3] : "", c, f, false, 0);
        if (f.counts[static_cast<int>(Verdict::NoAnswer)] > 0 || f.wrong > 0) return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    try {
        return o.target.empty() ? run_directory(o) : run_target(o);
    } catch (const std::exception& e) {
        std::cerr << "bench_lookup: " << e.what() << std::endl;
        return 1;
    }
}
