// fault_matrix: the database fault matrix under load (DESIGN §6, §9).
//
//   fault_matrix [--keep] [UNITPOLICY UNITCTL]
//
// In a temporary directory it builds a directory of 10,000 mailboxes,
// publishes a replica, starts unitpolicy on it (policy, socketmap and
// control sockets, log on stderr into a file) and keeps 16 load threads
// (32 connections, both protocols, a known mix of existing and unknown
// addresses) sending while the replica is, in turn: replaced by a newer
// generation, by a truncated copy, by random bytes, deleted (then
// restored), locked by another process for 5 s, written in place in WAL
// mode by unitctl, replaced by a newer generation while that WAL still lies
// beside it, replaced by a file of an unsupported schema version, and by
// one whose mailboxes is a view over an endless recursive CTE.
// Every phase must show no existing address rejected and every request
// answered; where a good snapshot exists, no tempfail and every unknown
// address rejected (or, while a replacement is pending or refused,
// unconfirmed with a 4xx); no just-published mailbox ever rejected; refused files counted on the control socket, shown
// by
// --dump and logged; new data answered within 1 s of the rename, release
// or write. After each phase it prints TAP-ish lines (`ok NAME`,
// `not ok NAME: why`); at the end a table of the answers per phase. Exits 0
// when every check passed, 1 otherwise, 2 on bad usage.
//
// The programs come from the arguments or from the UNITPOLICY and UNITCTL
// environment variables. --keep leaves the directory (and the daemon's log)
// in place. `fault_matrix --hold-lock DB MS DIR` is the lock holder the
// lock phase runs (replica_files.hpp).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "daemon.hpp"
#include "daemon_view.hpp"
#include "load.hpp"
#include "probe.hpp"
#include "replica_files.hpp"
#include "socket.hpp"
#include "tally.hpp"

namespace {

using namespace unit;
using namespace unit::faults;
using namespace std::chrono_literals;
using load::Protocol;
using load::Verdict;

constexpr std::size_t mailboxes = 10'000;
constexpr unsigned load_threads = 16;  // each with a policy and a socketmap connection
constexpr unsigned daemon_threads = 4;
constexpr double unknown_share = 0.3;
constexpr auto lead_in = 300ms;  // load on the good snapshot before each fault
constexpr auto hold = 2s;        // load while the fault is in place
constexpr auto lock_hold = 5s;
constexpr auto switch_limit = 1s;          // a new generation, a release, an in-place write: answered within
constexpr std::size_t min_requests = 100;  // a phase with less load proves nothing
constexpr int unsupported_schema = 999;
// The daemon waits 200 ms for a writer's lock; requests queued on a thread
// behind such a wait must not add up their waits.
constexpr double lock_p99_limit_us = 500'000;

double ms(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

// ------------------------------------------------------------ checks

class Checks {
public:
    void check(const std::string& name, bool passed, const std::string& why = {}) {
        if (passed) {
            fmt::print("ok {}\n", name);
            ++passed_;
        } else {
            fmt::print("not ok {}: {}\n", name, why.empty() ? "failed" : why);
            ++failed_;
        }
        std::fflush(stdout);
    }
    int failed() const noexcept { return failed_; }

private:
    int passed_ = 0, failed_ = 0;
};

// ------------------------------------------------------------ the test world

struct Programs {
    std::string unitpolicy, unitctl;
    bool keep = false;
};

std::string make_temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "fault_matrix.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp: cannot create a directory");
    return pattern;
}

std::string self_path() {
    std::error_code ec;
    auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("/proc/self/exe: " + ec.message());
    return path.string();
}

struct World {
    Programs programs;
    std::string dir = make_temp_dir();
    std::string primary_path = dir + "/primary.db", replica = dir + "/units.db";
    std::string policy_socket = dir + "/policy", map_socket = dir + "/map", control = dir + "/control";
    std::string log = dir + "/unitpolicy.log", markers = dir + "/markers";
    load::Dataset data;
    std::vector<load::Request> workload;
    std::optional<Primary> primary;
    std::optional<ReplicaFiles> files;
    std::optional<toolkit::Daemon> daemon;

    explicit World(Programs p) : programs(std::move(p)) {
        std::filesystem::create_directory(markers);
        load::DatasetSpec spec;
        spec.mailboxes = mailboxes;
        spec.units = 100;
        data = load::make_dataset(spec, primary_path, replica);
        workload = load::mixed_workload(data, unknown_share, 20'000);
        auto opened = Primary::open(primary_path);
        if (!opened) throw std::runtime_error(opened.error().message);
        primary.emplace(std::move(opened.value()));
        files.emplace(*primary, replica, dir);
        start_daemon();
    }
    ~World() {
        if (daemon) daemon->stop();
        if (!programs.keep) std::filesystem::remove_all(dir);
    }

    void start_daemon() {
        std::string why;
        daemon = toolkit::Daemon::start({programs.unitpolicy, "--db", replica, "--policy-listen",
                                         "unix:" + policy_socket, "--socketmap-listen", "unix:" + map_socket,
                                         "--control", control, "--log", "stderr", "--threads",
                                         std::to_string(daemon_threads)},
                                        {policy_socket, map_socket, control}, log, 10s, why);
        if (!daemon) throw std::runtime_error(why);
    }

    load::DriverOptions load_options() const {
        load::DriverOptions o;
        o.policy_socket = policy_socket;
        o.socketmap_socket = map_socket;
        o.connections = load_threads;
        o.duration = 0ms;  // until the phase stops it
        return o;
    }

    // Probe connections spread over every worker of the daemon.
    Probe probe() const {
        Probe p(policy_socket, map_socket, daemon_threads);
        if (!p.connect(data.existing.front())) throw std::runtime_error("probe: the daemon does not answer");
        return p;
    }

    void add_mailbox(const std::string& address, const std::string& unit) {
        if (auto r = primary->add_mailbox(address, unit); !r) throw std::runtime_error(r.error().message);
    }

    std::int64_t refusals() const {
        auto c = toolkit::read_counters(control);
        auto it = c.find("replica_refusals");
        return it == c.end() ? -1 : static_cast<std::int64_t>(it->second);
    }
    std::int64_t switches() const {
        auto c = toolkit::read_counters(control);
        auto it = c.find("replica_switches");
        return it == c.end() ? -1 : static_cast<std::int64_t>(it->second);
    }
};

// ------------------------------------------------------------ phases

struct Phase {
    std::string name;
    Tally tally;
    load::DriverResult load;
    std::optional<std::chrono::nanoseconds> switch_time;  // rename (release, write) to answered
    bool lock_window = false;
    std::size_t log_offset = 0;  // where the daemon's log stood when the phase began
};

// Runs the load for the whole phase around `fault`, which does the fault,
// waits, and records what it measured in the Phase.
void run_phase(World& w, Phase& phase, const std::function<void(Phase&)>& fault) {
    phase.log_offset = read_text(w.log).size();
    std::atomic<bool> stop{false};
    auto observer = [&phase](const load::Request& r, const load::Reply& reply, std::chrono::nanoseconds latency) {
        phase.tally.observe(r, reply, latency);
    };
    std::thread load([&] { phase.load = load::drive(w.load_options(), w.workload, observer, &stop); });
    struct Join {  // the load stops however the fault ends
        std::atomic<bool>& stop;
        std::thread& thread;
        ~Join() {
            stop = true;
            thread.join();
        }
    } join{stop, load};
    std::this_thread::sleep_for(lead_in);
    fault(phase);
}

std::string log_since(const World& w, const Phase& phase) { return read_text(w.log).substr(phase.log_offset); }

std::string split(const Counts& c, bool exists, Verdict v) {
    return fmt::format("{} (policy {}, socketmap {})", c.get(exists, v), c.get(Protocol::Policy, exists, v),
                       c.get(Protocol::Socketmap, exists, v));
}

// What every phase must show: load ran, no existing address refused, every
// request answered, the daemon alive; and, where a good snapshot exists, no
// tempfail and unknown addresses rejected.
// Where a replacement arrives (pending, then served or refused), an unknown
// address may get the unconfirmed 4xx instead of the 5xx: `in_doubt`.
void check_answers(Checks& checks, const World& w, const Phase& p, const Counts& c, bool good_snapshot,
                   const std::string& scope = {}, bool in_doubt = false) {
    std::string name = p.name + (scope.empty() ? "" : " " + scope);
    if (scope.empty())
        checks.check(name + ": load ran", c.total() >= min_requests,
                     fmt::format("{} requests, at least {} expected", c.total(), min_requests));
    checks.check(name + ": no existing address rejected", c.get(true, Verdict::Reject) == 0,
                 split(c, true, Verdict::Reject) + " rejects (550 / NOTFOUND) for existing addresses");
    checks.check(name + ": every request answered", c.get(Verdict::NoAnswer) == 0,
                 fmt::format("{} requests without an answer", c.get(Verdict::NoAnswer)));
    if (good_snapshot) {
        const std::uint64_t tempfails = c.get(true, Verdict::Tempfail) +
                                        (in_doubt ? 0 : c.get(false, Verdict::Tempfail));
        checks.check(name + (in_doubt ? ": no tempfail for existing addresses" : ": no tempfail"), tempfails == 0,
                     fmt::format("{} tempfails for existing, {} for unknown addresses",
                                 split(c, true, Verdict::Tempfail), split(c, false, Verdict::Tempfail)));
        std::uint64_t unknown = c.get(false, Verdict::Accept) + c.get(false, Verdict::Reject) +
                                c.get(false, Verdict::Tempfail) + c.get(false, Verdict::NoAnswer);
        const std::uint64_t refused = c.get(false, Verdict::Reject) + (in_doubt ? c.get(false, Verdict::Tempfail) : 0);
        checks.check(name + (in_doubt ? ": unknown addresses rejected or unconfirmed" : ": unknown addresses rejected"),
                     refused == unknown && unknown > 0,
                     fmt::format("{} of {} rejected, {} unconfirmed; accepted {}", c.get(false, Verdict::Reject),
                                 unknown, c.get(false, Verdict::Tempfail), split(c, false, Verdict::Accept)));
    }
    if (scope.empty()) checks.check(name + ": daemon alive", w.daemon->alive(), "unitpolicy is gone; see its log");
}

void check_switch(Checks& checks, const Phase& p, const std::string& what) {
    checks.check(p.name + ": " + what + " within 1 s", p.switch_time && *p.switch_time < switch_limit,
                 p.switch_time ? fmt::format("took {:.0f} ms", ms(*p.switch_time)) : "never (waited 3 s)");
}

// The "database:" section of --dump's text, for a failure message.
std::string database_section(const std::string& dump) {
    auto begin = dump.find("database:");
    if (begin == std::string::npos) return dump.substr(0, 2000);
    auto end = dump.find("\n\n", begin);
    return dump.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// A refused replacement must show: the refusal counter on the control
// socket, the same counter and the file's problem in --dump, a warning in
// the log.
void check_refusal(Checks& checks, const World& w, const Phase& p, std::int64_t refusals_before) {
    std::int64_t after = w.refusals();
    checks.check(p.name + ": control socket counts the refused snapshot", after > refusals_before,
                 fmt::format("replica_refusals {} before, {} after", refusals_before, after));
    auto dump = run({w.programs.unitpolicy, "--dump", "--db", w.replica, "--control", w.control});
    std::string counter = fmt::format("replica_refusals: {}\n", after);
    auto problem = dump.output.find("\n  problem: ");
    bool has_problem = problem != std::string::npos && dump.output[problem + 12] != '\n';
    checks.check(p.name + ": --dump reports it", dump.output.find(counter) != std::string::npos && has_problem,
                 fmt::format("{} in --dump (exit {}); its database section:\n{}",
                             has_problem ? "no \"" + counter.substr(0, counter.size() - 1) + "\"" : "no problem",
                             dump.status, database_section(dump.output)));
    checks.check(p.name + ": the log says so", log_since(w, p).find("warning: replica: ") != std::string::npos,
                 "no \"warning: replica:\" line in the daemon's log during the phase");
}

// 1. A newer generation renamed into place; it adds a mailbox.
void phase_newer_generation(World& w, Phase& p) {
    const std::string fresh = "fresh1@example.com";
    Probe probe = w.probe();
    w.add_mailbox(fresh, "unit0001");
    w.files->stage_snapshot();
    auto renamed = w.files->install();
    p.switch_time = probe.until_accepted(fresh, renamed, 3s);
    std::this_thread::sleep_for(hold);
}

// 2, 3, 7. A bad file renamed into place: refused, the last good snapshot answers.
void phase_bad_replacement(World& w, const std::function<void()>& stage) {
    stage();
    w.files->install();
    std::this_thread::sleep_for(hold);
}

// 4. The replica deleted; then a newer generation restores it.
void phase_deleted(World& w, Phase& p) {
    const std::string fresh = "fresh2@example.com";
    w.files->remove_replica();
    std::this_thread::sleep_for(hold);
    Probe probe = w.probe();
    w.add_mailbox(fresh, "unit0002");
    w.files->stage_snapshot();
    auto renamed = w.files->install();
    p.switch_time = probe.until_accepted(fresh, renamed, 3s);
    std::this_thread::sleep_for(500ms);
}

// 5. Another process holds an EXCLUSIVE lock on the replica for 5 s.
// Rollback-journal readers cannot read then: tempfails are expected, 5xx
// are not; answers must be right again within 1 s of the release.
int phase_locked(World& w, Phase& p) {
    p.lock_window = true;
    Probe probe = w.probe();
    std::string why;
    auto holder = toolkit::Daemon::start({self_path(), "--hold-lock", w.replica,
                                          std::to_string(lock_hold.count() * 1000), w.markers},
                                         {w.markers + "/locked"}, w.dir + "/hold-lock.log", 15s, why);
    if (!holder) throw std::runtime_error(why);
    auto locked = Clock::now();
    p.tally.set_window(locked, Clock::time_point::max());
    auto deadline = locked + lock_hold + 10s;
    while (!std::filesystem::exists(w.markers + "/released") && Clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    auto released = Clock::now();
    p.tally.set_window(locked, released);
    p.tally.set_settled_from(released + switch_limit);
    p.switch_time = probe.until_accepted(w.data.existing.back(), released, 3s);
    std::this_thread::sleep_for(switch_limit + 1s);
    return holder->stop(0) == 0 ? 0 : 1;  // signal 0: just reap it
}

// 6. A live replicator (or a provider's system) writes the replica in
// place, in WAL mode, under load. unitctl refuses to write a published
// snapshot, so the writer here is libunit's Primary opened on the replica.
struct InPlaceResult {
    int failed_commands = 0;
    std::string failure;
    std::vector<std::string> added;
};

InPlaceResult phase_in_place(World& w, Phase& p) {
    InPlaceResult result;
    Probe probe = w.probe();
    auto failed = [&](const std::string& what, const Error& e) {
        ++result.failed_commands;
        result.failure = fmt::format("{}: {}", what, e.message);
    };
    // The published snapshot is in rollback-journal mode: init turns on WAL.
    auto writer = Primary::init(w.replica);
    if (!writer) {
        failed("init " + w.replica, writer.error());
        return result;
    }
    std::optional<std::chrono::nanoseconds> slowest = std::chrono::nanoseconds(0);
    for (int i = 1; i <= 5; ++i) {
        std::string address = fmt::format("wal{}@example.net", i);
        if (auto r = writer->add_mailbox(address, "unit0003"); !r) {
            failed("add " + address, r.error());
            continue;
        }
        result.added.push_back(address);
        auto visible = probe.until_accepted(address, Clock::now(), 3s);
        slowest = visible && slowest ? std::max(*slowest, *visible) : std::optional<std::chrono::nanoseconds>();
        std::this_thread::sleep_for(200ms);
    }
    p.switch_time = slowest;
    std::this_thread::sleep_for(1s);
    return result;
}

void check_refusal(Checks& checks, const World& w, const Phase& p, std::int64_t refusals_before);

// 6b. A newer generation (2,000 more mailboxes: its pages are laid out
// differently) renamed over the replica while the WAL that phase 6 left
// beside it is still there. SQLite would read that WAL's pages over the
// new file's, serving old or mixed data: the daemon must refuse the pair
// and keep its snapshot, then switch within 1 s once the stale -wal and
// -shm are removed.
void phase_stale_wal(World& w, Phase& p, Checks& checks) {
    const std::string fresh = "fresh3@example.com";
    std::string rows = "kind,address,value,state\n";
    for (int i = 0; i < 2000; ++i) rows += fmt::format("mailbox,bulk{}@example.org,unit0004,active\n", i);
    std::istringstream csv(rows);
    if (auto r = w.primary->import_csv(csv, "bulk.csv"); !r) throw std::runtime_error(r.error().message);
    w.add_mailbox(fresh, "unit0005");
    auto refusals = w.refusals();
    w.files->stage_snapshot();
    w.files->install();
    std::this_thread::sleep_for(hold);
    check_refusal(checks, w, p, refusals);
    Probe probe = w.probe();
    w.files->remove_wal_files();
    p.switch_time = probe.until_accepted(fresh, Clock::now(), 3s);
    std::this_thread::sleep_for(1s);
}

// 8. A new mailbox published every 100 ms, each asked for right after its
// rename on every probe connection (policy RCPT and the recipient map): a
// daemon still serving the superseded snapshot must say 4xx / TEMP for it,
// never 5xx / NOTFOUND.
struct PublishResult {
    int publishes = 0;
    std::uint64_t requests = 0, accepted = 0, unconfirmed = 0, rejected = 0, unanswered = 0;
    std::string first_reject;
};

PublishResult phase_publish_often(World& w) {
    constexpr int publishes = 30;
    constexpr auto period = 100ms;
    PublishResult result;
    std::vector<std::unique_ptr<load::Client>> clients;
    std::vector<Protocol> protocols;
    for (unsigned i = 0; i < daemon_threads; ++i) {
        clients.push_back(std::make_unique<load::Client>(w.policy_socket));
        protocols.push_back(Protocol::Policy);
        clients.push_back(std::make_unique<load::Client>(w.map_socket));
        protocols.push_back(Protocol::Socketmap);
    }
    auto next = Clock::now();
    for (int i = 1; i <= publishes; ++i) {
        std::this_thread::sleep_until(next);
        next += period;
        const std::string address = fmt::format("published{}@example.com", i);
        w.add_mailbox(address, "unit0006");
        w.files->stage_snapshot();
        w.files->install();
        ++result.publishes;
        for (std::size_t c = 0; c < clients.size(); ++c) {
            load::Request request;
            request.protocol = protocols[c];
            if (request.protocol == Protocol::Socketmap) request.map = "recipient";
            request.key = address;
            request.exists = true;
            auto reply = clients[c]->ask(request);
            ++result.requests;
            switch (load::classify(request.protocol, reply)) {
            case Verdict::Accept: ++result.accepted; break;
            case Verdict::Tempfail: ++result.unconfirmed; break;
            case Verdict::NoAnswer: ++result.unanswered; break;
            case Verdict::Reject:
                if (result.rejected++ == 0) result.first_reject = fmt::format("{}: {}", address, reply.text);
                break;
            }
        }
    }
    std::this_thread::sleep_for(500ms);
    return result;
}

// ------------------------------------------------------------ the table

void print_table(const std::vector<std::unique_ptr<Phase>>& phases) {
    fmt::print("\n{:<24} {:<9} {:>8} | {:^31} | {:^31} | {:>9} {:>9}\n", "phase", "protocol", "requests",
               "existing: accept reject temp none", "unknown: accept reject temp none", "p99 us", "switch ms");
    for (const auto& p : phases) {
        const Counts& c = p->tally.all();
        bool first = true;
        for (Protocol proto : {Protocol::Policy, Protocol::Socketmap}) {
            auto n = [&](bool exists, Verdict v) { return c.get(proto, exists, v); };
            std::uint64_t requests = 0;
            for (bool e : {true, false})
                for (Verdict v : {Verdict::Accept, Verdict::Reject, Verdict::Tempfail, Verdict::NoAnswer})
                    requests += n(e, v);
            fmt::print("{:<24} {:<9} {:>8} | {:>13} {:>6} {:>5} {:>4} | {:>13} {:>6} {:>5} {:>4} | {:>9} {:>9}\n",
                       first ? p->name : "", proto == Protocol::Policy ? "policy" : "socketmap", requests,
                       n(true, Verdict::Accept), n(true, Verdict::Reject), n(true, Verdict::Tempfail),
                       n(true, Verdict::NoAnswer), n(false, Verdict::Accept), n(false, Verdict::Reject),
                       n(false, Verdict::Tempfail), n(false, Verdict::NoAnswer),
                       first ? fmt::format("{:.0f}", p->load.latency.percentile_us(99)) : "",
                       first && p->switch_time ? fmt::format("{:.1f}", ms(*p->switch_time)) : "");
            first = false;
        }
        if (p->lock_window) {
            const Counts& d = p->tally.during();
            fmt::print(
                "{:<24} during the lock: {} requests, {} tempfail, {} reject, p50 {:.0f} us, p99 {:.0f} us, "
                "max {:.0f} us\n",
                "", d.total(), d.get(Verdict::Tempfail), d.get(Verdict::Reject), p->tally.window_percentile_us(50),
                p->tally.window_percentile_us(99), p->tally.window_percentile_us(100));
        }
    }
    fmt::print(
        "(p99: every request of the phase; switch: rename, release or write until every daemon thread "
        "answers the new address)\n\n");
}

// ------------------------------------------------------------ main

int run_matrix(const Programs& programs) {
    Checks checks;
    auto started = Clock::now();
    World w(programs);
    fmt::print(
        "# fault_matrix: {} mailboxes, {} load threads (policy + socketmap connections each), unitpolicy with "
        "{} threads, in {}\n",
        mailboxes, load_threads, daemon_threads, w.dir);
    std::vector<std::unique_ptr<Phase>> phases;
    auto phase = [&](const std::string& name) -> Phase& {
        phases.push_back(std::make_unique<Phase>());
        phases.back()->name = name;
        return *phases.back();
    };

    Phase& p0 = phase("0 baseline");
    run_phase(w, p0, [](Phase&) { std::this_thread::sleep_for(hold); });
    check_answers(checks, w, p0, p0.tally.all(), true);

    Phase& p1 = phase("1 newer generation");
    auto switches_before = w.switches();
    run_phase(w, p1, [&](Phase& p) { phase_newer_generation(w, p); });
    check_answers(checks, w, p1, p1.tally.all(), true, {}, true);
    check_switch(checks, p1, "new mailbox answered");
    checks.check(p1.name + ": control socket counts the switch", w.switches() > switches_before,
                 fmt::format("replica_switches {} before, {} after", switches_before, w.switches()));

    struct Bad {
        const char* name;
        std::function<void()> stage;
    };
    const Bad bad[] = {
        {"2 truncated copy", [&] { w.files->stage_truncated(); }},
        {"3 random bytes", [&] { w.files->stage_random_bytes(); }},
    };
    for (const auto& b : bad) {
        Phase& p = phase(b.name);
        auto refusals = w.refusals();
        run_phase(w, p, [&](Phase&) { phase_bad_replacement(w, b.stage); });
        check_answers(checks, w, p, p.tally.all(), true, {}, true);
        check_refusal(checks, w, p, refusals);
    }

    Phase& p4 = phase("4 deleted");
    run_phase(w, p4, [&](Phase& p) { phase_deleted(w, p); });
    check_answers(checks, w, p4, p4.tally.all(), true, {}, true);
    checks.check(p4.name + ": the log says the replica is missing",
                 log_since(w, p4).find("No such file or directory") != std::string::npos,
                 "no \"No such file or directory\" in the daemon's log during the phase");
    check_switch(checks, p4, "restored replica answered");

    Phase& p5 = phase("5 locked 5 s");
    int holder = 0;
    run_phase(w, p5, [&](Phase& p) { holder = phase_locked(w, p); });
    checks.check(p5.name + ": the lock was held", holder == 0,
                 "the lock holder failed: " + read_text(w.dir + "/hold-lock.log"));
    check_answers(checks, w, p5, p5.tally.all(), false);
    check_answers(checks, w, p5, p5.tally.settled(), true, "1 s after the release");
    check_switch(checks, p5, "answers right again after the release");
    checks.check(p5.name + ": p99 during the lock bounded by the busy timeout",
                 p5.tally.window_percentile_us(99) < lock_p99_limit_us,
                 fmt::format("p99 {:.0f} us, limit {:.0f} us", p5.tally.window_percentile_us(99), lock_p99_limit_us));

    Phase& p6 = phase("6 WAL writes in place");
    InPlaceResult in_place;
    run_phase(w, p6, [&](Phase& p) { in_place = phase_in_place(w, p); });
    check_answers(checks, w, p6, p6.tally.all(), true);
    checks.check(p6.name + ": the writer wrote the replica", in_place.failed_commands == 0, in_place.failure);
    checks.check(p6.name + ": each new mailbox answered within 1 s",
                 in_place.added.size() == 5 && p6.switch_time && *p6.switch_time < switch_limit,
                 fmt::format("{} of 5 added; slowest {}", in_place.added.size(),
                             p6.switch_time ? fmt::format("{:.0f} ms", ms(*p6.switch_time)) : "never (3 s)"));

    Phase& p6b = phase("6b rename, stale WAL");
    run_phase(w, p6b, [&](Phase& p) { phase_stale_wal(w, p, checks); });
    check_answers(checks, w, p6b, p6b.tally.all(), true, {}, true);
    check_switch(checks, p6b, "new generation answered after the stale WAL is removed");

    Phase& p7 = phase("7 unsupported schema");
    auto refusals = w.refusals();
    run_phase(w, p7, [&](Phase&) {
        phase_bad_replacement(w, [&] { w.files->stage_unsupported_schema(unsupported_schema); });
    });
    check_answers(checks, w, p7, p7.tally.all(), true, {}, true);
    check_refusal(checks, w, p7, refusals);
    {
        Probe probe = w.probe();
        checks.check(p7.name + ": the last good generation still answers",
                     probe.until_accepted("fresh3@example.com", Clock::now(), 1s).has_value(),
                     "fresh3@example.com (added by the generation of phase 6b) is no longer answered as existing");
    }

    Phase& p7b = phase("7b endless view");
    refusals = w.refusals();
    run_phase(w, p7b, [&](Phase&) { phase_bad_replacement(w, [&] { w.files->stage_endless_view(); }); });
    check_answers(checks, w, p7b, p7b.tally.all(), true, {}, true);
    check_refusal(checks, w, p7b, refusals);
    checks.check(p7b.name + ": refused as schema_mismatch",
                 log_since(w, p7b).find("schema_mismatch") != std::string::npos,
                 "no \"schema_mismatch\" in the daemon's log during the phase");

    Phase& p8 = phase("8 publish every 100 ms");
    PublishResult published;
    run_phase(w, p8, [&](Phase&) { published = phase_publish_often(w); });
    check_answers(checks, w, p8, p8.tally.all(), true, {}, true);
    fmt::print(
        "# {}: {} publishes, {} requests for just-published mailboxes: {} accepted, {} unconfirmed (4xx/TEMP), "
        "{} rejected (5xx/NOTFOUND), {} unanswered\n",
        p8.name, published.publishes, published.requests, published.accepted, published.unconfirmed, published.rejected,
        published.unanswered);
    checks.check(p8.name + ": no just-published mailbox rejected", published.rejected == 0 && published.requests > 0,
                 fmt::format("{} of {} rejected, the first {}", published.rejected, published.requests,
                             published.first_reject));
    checks.check(p8.name + ": every request for them answered", published.unanswered == 0,
                 fmt::format("{} unanswered", published.unanswered));

    print_table(phases);
    int status = w.daemon->stop();
    w.daemon.reset();
    checks.check("unitpolicy stops cleanly on SIGTERM", status == 0, fmt::format("wait status {}", status));
    fmt::print("# fault_matrix: {:.1f} s\n", std::chrono::duration<double>(Clock::now() - started).count());
    return checks.failed() == 0 ? 0 : 1;
}

std::string program(const std::vector<std::string>& args, std::size_t index, const char* env) {
    if (index < args.size()) return args[index];
    const char* value = std::getenv(env);
    if (value == nullptr || *value == '\0')
        throw std::invalid_argument(fmt::format("{} not given (argument or environment variable)", env));
    return value;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 4 && args[0] == "--hold-lock")
        return hold_lock(args[1], std::chrono::milliseconds(std::atol(args[2].c_str())), args[3]);
    Programs programs;
    try {
        if (!args.empty() && args[0] == "--keep") {
            programs.keep = true;
            args.erase(args.begin());
        }
        if (args.size() != 0 && args.size() != 2) throw std::invalid_argument("expected UNITPOLICY UNITCTL or none");
        programs.unitpolicy = program(args, 0, "UNITPOLICY");
        programs.unitctl = program(args, 1, "UNITCTL");
    } catch (const std::invalid_argument& e) {
        fmt::print(stderr, "usage: fault_matrix [--keep] [UNITPOLICY UNITCTL]: {}\n", e.what());
        return 2;
    }
    try {
        return run_matrix(programs);
    } catch (const std::exception& e) {
        fmt::print("not ok setup: {}\n", e.what());
        return 1;
    }
}
