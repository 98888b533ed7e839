// hostile: starts unitpolicy on a small directory and throws hostile
// clients at it, one attack at a time (attacks.hpp). During each, a
// well-behaved client (one persistent connection, one request in flight,
// as a Postfix smtpd) keeps asking, and the daemon's memory is sampled.
// For each attack: the daemon is still up and answers both protocols, the
// well-behaved client got every answer with p99 under 5 ms, the peak
// resident memory stays under a bound derived from the limits, no
// connection is left behind, and the attack's own expectations hold.
//
// Prints one line per check as it completes, "ok NAME" or "not ok NAME:
// why", then a table of the figures. Exit status 0 when every check
// passed, 1 otherwise, 2 on bad usage.
//
// usage: hostile --unitpolicy PATH [--keep] [--only ATTACK]
//   --keep         leave the temporary directory (database, daemon log) in place
//   --only ATTACK  run that attack alone (after the baseline)
#include <signal.h>
#include <stdlib.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "attack_support.hpp"
#include "attacks.hpp"
#include "daemon.hpp"
#include "load.hpp"
#include "raw_socket.hpp"
#include "target.hpp"
#include "watch.hpp"

namespace {

using namespace unit::attacks;
namespace load = unit::load;

constexpr double p99_limit_ms = 5.0;
// Memory the server may use per connection beside its request and answer
// bytes: the session and its parser (about 1 KiB), Asio's per-socket state,
// the connection table's entry, and allocator rounding. Generous on purpose.
constexpr std::size_t per_connection_overhead = 8 * 1024;
// Allocator slack: per-thread arenas and freed memory not yet returned.
constexpr std::size_t allocator_slack = 8 * 1024 * 1024;

struct Options {
    std::string unitpolicy;
    bool keep = false;
    std::string only;
};

std::optional<Options> parse_options(int argc, char* argv[]) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--unitpolicy" && i + 1 < argc) o.unitpolicy = argv[++i];
        else if (a == "--keep") o.keep = true;
        else if (a == "--only" && i + 1 < argc) o.only = argv[++i];
        else return std::nullopt;
    }
    if (o.unitpolicy.empty()) return std::nullopt;
    return o;
}

// The machine's 1-minute load average: latency figures taken on a busy
// machine say more about its scheduler than about the daemon.
std::string load_average() {
    std::ifstream file("/proc/loadavg");
    std::string first;
    file >> first;
    return first.empty() ? "unknown" : first;
}

double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

struct Row {
    std::string name;
    Observation observed;
    std::uint64_t bound = 0;  // 0: none
    std::string summary;
};

class Report {
public:
    void check(const std::string& name, const std::vector<std::string>& problems) {
        if (problems.empty()) {
            ++passed_;
            std::cout << "ok " << name << '\n';
        } else {
            ++failed_;
            std::cout << "not ok " << name << ": " << fmt::format("{}", fmt::join(problems, "; ")) << '\n';
        }
        std::cout.flush();
    }
    void add(Row row) { rows_.push_back(std::move(row)); }
    void print_table() const;
    bool all_passed() const { return failed_ == 0 && passed_ > 0; }

private:
    std::vector<Row> rows_;
    int passed_ = 0, failed_ = 0;
};

void Report::print_table() const {
    std::cout << fmt::format("\n{:<16} {:>9} {:>8} {:>8} {:>8} {:>6} {:>10} {:>10} {:>7}\n", "attack", "answered",
                             "p50 ms", "p99 ms", "max ms", "failed", "peak RSS", "RSS bound", "cpu");
    for (const auto& r : rows_) {
        const auto& l = r.observed.latency;
        std::cout << fmt::format("{:<16} {:>9} {:>8.3f} {:>8.3f} {:>8.3f} {:>6} {:>6.1f} MiB {:>10} {:>6.0f}%\n",
                                 r.name, l.count(), l.percentile_us(50) / 1000, l.percentile_us(99) / 1000,
                                 l.percentile_us(100) / 1000, r.observed.failures, mib(r.observed.peak_rss),
                                 r.bound ? fmt::format("{:.1f} MiB", mib(r.bound)) : std::string("-"),
                                 100 * r.observed.cpu_share);
    }
    std::cout << "(cpu: the daemon's, 100% is one core)\n";
    std::cout << '\n';
    for (const auto& r : rows_)
        if (!r.summary.empty()) std::cout << r.name << ": " << r.summary << '\n';
}

// The well-behaved client's figures, judged.
void judge_latency(const Observation& o, std::vector<std::string>& problems) {
    if (o.latency.count() == 0) problems.push_back("the well-behaved client got no answer at all");
    else if (o.latency.percentile_us(99) / 1000 >= p99_limit_ms)
        problems.push_back(fmt::format("well-behaved client p99 {:.2f} ms, limit {} ms",
                                       o.latency.percentile_us(99) / 1000, p99_limit_ms));
    if (o.failures > 0)
        problems.push_back(fmt::format("{} well-behaved requests failed (first: {})", o.failures, o.first_failure));
    if (o.samples == 0) problems.push_back("no memory sample of the daemon");
}

// A fresh client on each socket gets its answer.
void judge_alive(const unit::toolkit::Daemon& daemon, const Target& target, std::vector<std::string>& problems) {
    if (!daemon.alive()) {
        problems.push_back("the daemon is gone");
        return;
    }
    load::Client policy(target.policy, std::chrono::seconds(2)), socketmap(target.socketmap, std::chrono::seconds(2));
    load::Reply p = policy.ask({load::Protocol::Policy, "", target.mailbox, true});
    if (!p.ok || p.text != "DUNNO") problems.push_back("a new policy client got " + p.text);
    load::Reply m = socketmap.ask({load::Protocol::Socketmap, "transportmx", target.mailbox, true});
    if (!m.ok || m.text.rfind("OK ", 0) != 0) problems.push_back("a new socketmap client got " + m.text);
}

struct Run {
    std::filesystem::path dir;
    Target target;
    std::optional<unit::toolkit::Daemon> daemon;
};

std::optional<Run> start_daemon(const Options& options, std::string& why) {
    char pattern[] = "/tmp/unitpolicy-attacks.XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
        why = std::string("mkdtemp: ") + std::strerror(errno);
        return std::nullopt;
    }
    Run run;
    run.dir = pattern;
    const std::string db = run.dir / "units.db";
    load::DatasetSpec spec;
    spec.mailboxes = 1000;
    spec.units = 10;
    spec.aliases = 20;
    load::Dataset data;
    try {
        data = load::make_dataset(spec, run.dir / "primary.db", db);
    } catch (const std::exception& e) {
        why = e.what();
        return run;  // the directory is removed by the caller
    }
    Target& t = run.target;
    t.policy = run.dir / "policy";
    t.socketmap = run.dir / "map";
    t.control = run.dir / "control";
    t.mailbox = data.existing.front();
    t.alias = data.aliases.front();
    const Limits& l = t.limits;
    std::vector<std::string> argv = {options.unitpolicy};
    auto set = [&argv](const char* option, std::string value) {
        argv.emplace_back(option);
        argv.push_back(std::move(value));
    };
    set("--db", db);
    set("--policy-listen", "unix:" + t.policy);
    set("--socketmap-listen", "unix:" + t.socketmap);
    set("--control", t.control);
    set("--log", "stderr");
    set("--threads", std::to_string(l.threads));
    set("--max-connections", std::to_string(l.max_connections));
    set("--max-line", std::to_string(l.max_line));
    set("--max-request", std::to_string(l.max_request));
    set("--request-timeout", fmt::format("{}s", l.request_timeout.count()));
    run.daemon = unit::toolkit::Daemon::start(argv, {t.policy, t.socketmap, t.control}, run.dir / "unitpolicy.log",
                                              std::chrono::seconds(10), why);
    if (run.daemon) t.pid = run.daemon->pid();
    return run;
}

void run_attack(const Attack& attack, Run& run, std::uint64_t baseline_rss, Report& report) {
    const Target& t = run.target;
    const std::uint64_t open_before = counter(read_counters(t.control), "connections_open");
    Watch watch(t);
    AttackOutcome outcome = attack.run(t);
    Observation observed = watch.finish();

    std::vector<std::string> problems = outcome.problems;
    judge_alive(*run.daemon, t, problems);
    judge_latency(observed, problems);
    const std::uint64_t bound = baseline_rss +
                                outcome.connections * (outcome.held_per_connection + per_connection_overhead) +
                                allocator_slack;
    if (observed.peak_rss > bound)
        problems.push_back(fmt::format("peak RSS {:.1f} MiB over the bound {:.1f} MiB", mib(observed.peak_rss),
                                       mib(bound)));
    if (!wait_open_at_most(t, open_before, close_allowance(t)))
        problems.push_back(fmt::format("connections_open did not come back to {}", open_before));
    report.check(attack.name, problems);
    report.add({attack.name, std::move(observed), bound, outcome.summary});
}

int run_all(const Options& options) {
    std::string why;
    std::optional<Run> run = start_daemon(options, why);
    if (!run || !run->daemon) {
        std::cout << "not ok start: " << why << '\n';
        if (run && !options.keep) std::filesystem::remove_all(run->dir);
        return 1;
    }
    Report report;
    std::cout << "# unitpolicy " << run->target.pid << " in " << run->dir.string() << ", load average "
              << load_average() << " on " << std::thread::hardware_concurrency() << " cores\n";

    Watch quiet(run->target);
    std::this_thread::sleep_for(2s);
    Observation baseline = quiet.finish();
    std::vector<std::string> problems;
    judge_latency(baseline, problems);
    report.check("baseline", problems);
    const std::uint64_t baseline_rss = baseline.peak_rss;
    report.add({"baseline", std::move(baseline), 0, {}});

    for (const Attack& attack : all_attacks())
        if (options.only.empty() || options.only == attack.name) run_attack(attack, *run, baseline_rss, report);

    const int status = run->daemon->stop(SIGTERM);
    report.check("clean_stop", status == 0 ? std::vector<std::string>{}
                                           : std::vector<std::string>{fmt::format("exit status {}", status)});
    report.print_table();
    std::cout << "load average " << load_average() << " at the end\n";
    if (options.keep || !report.all_passed())
        std::cout << "daemon log: " << (run->dir / "unitpolicy.log").string() << '\n';
    if (!options.keep && report.all_passed()) std::filesystem::remove_all(run->dir);
    return report.all_passed() ? 0 : 1;
}

}  // namespace

int main(int argc, char* argv[]) {
    auto options = parse_options(argc, argv);
    if (!options) {
        std::cerr << "usage: hostile --unitpolicy PATH [--keep] [--only ATTACK]\n";
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_open_file_limit();
    try {
        return run_all(*options);
    } catch (const std::exception& e) {
        std::cout << "not ok hostile: " << e.what() << '\n';
        return 1;
    }
}
