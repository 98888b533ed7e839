// bench_lookup_bound: what lookup_timeout costs and what it stops.
//
//   bench_lookup_bound [MAILBOXES] [DIR]
//
// Makes a directory of MAILBOXES (default 1,000,000) mailboxes over 100
// units, with one alias of 1,000 targets (max_alias_targets, the largest
// expansion a daemon allows), publishes it, then prints:
//   1. the CPU cost of one resolution (80% known addresses, 20% unknown) without
//      the progress handler (lookup_timeout 0) and with it (1000 ms), runs
//      alternating in this process (and which goes first), medians of 12
//      and their ratio;
//   2. the time of the largest legitimate resolution (the 1,000-target
//      alias), hot, and on a fresh connection (SQLite's cache empty);
//   3. a replica changed in place so that `mailboxes` is a view over a
//      recursive CTE: the time to answer with lookup_timeout 1000 ms, and
//      without a bound over ten million rows (an endless CTE never answers).
// A benchmark, not a test: meson builds it, `meson test` does not run it.
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "unit/csv.hpp"
#include "unit/primary.hpp"
#include "unit/resolver.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void write_input(const std::string& path, long mailboxes) {
    std::ofstream out(path);
    unit::write_csv_row(out, {"kind", "address", "value", "state"});
    unit::write_csv_row(out, {"domain", "d.example", "", ""});
    for (int u = 0; u < 100; ++u)
        unit::write_csv_row(out, {"unit", fmt::format("unit{}", u), fmt::format("smtp:[unit{}.example]", u), "active"});
    for (long i = 0; i < mailboxes; ++i)
        unit::write_csv_row(out,
                            {"mailbox", fmt::format("user{}@d.example", i), fmt::format("unit{}", i % 100), "active"});
    for (long i = 0; i < 1000; ++i)
        unit::write_csv_row(out,
                            {"alias", "big@d.example", fmt::format("user{}@d.example", i * (mailboxes / 1000)), ""});
}

unit::Directory open(const std::string& path, milliseconds lookup_timeout) {
    unit::DirectoryOptions o{path, milliseconds(250), milliseconds(200), {}};
    o.snapshot_hold = milliseconds(100);  // as the daemons' workers
    o.lookup_timeout = lookup_timeout;
    return unit::Directory(o);
}

unit::ResolverOptions untraced() {
    unit::ResolverOptions o;
    o.trace = false;
    return o;
}

// This thread's CPU time: other processes on the machine do not count.
double cpu_ns() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// CPU nanoseconds per resolution over `keys`.
double resolve_all(const std::string& path, milliseconds lookup_timeout, const std::vector<std::string>& keys) {
    auto directory = open(path, lookup_timeout);
    const auto options = untraced();
    for (std::size_t i = 0; i < 1000; ++i) (void)unit::resolve(directory, options, keys[i]);  // warm the cache
    double start = cpu_ns();
    for (const auto& k : keys) {
        auto r = unit::resolve(directory, options, k);
        if (r.outcome == unit::Outcome::Tempfail) fmt::print(stderr, "unexpected tempfail: {}\n", r.reason);
    }
    return (cpu_ns() - start) / static_cast<double>(keys.size());
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

void replace_mailboxes_by_view(const std::string& path, const std::string& bound) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    std::string sql =
        "DROP TABLE mailboxes; CREATE VIEW mailboxes (address, unit, state, moving_to) AS"
        " WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n" +
        bound +
        ")"
        " SELECT 'x' || i || '@d.example', 'unit1', 'active', NULL FROM n;";
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) fmt::print(stderr, "sql: {}\n", error);
    sqlite3_free(error);
    sqlite3_close(db);
}

// Milliseconds to answer one address on a replica whose mailboxes is a view.
void hostile(const std::string& replica, const std::string& copy, const std::string& bound,
             milliseconds lookup_timeout) {
    std::filesystem::copy_file(replica, copy, std::filesystem::copy_options::overwrite_existing);
    auto directory = open(copy, lookup_timeout);  // validated while still sane
    replace_mailboxes_by_view(copy, bound);       // then changed in place
    auto start = Clock::now();
    auto r = unit::resolve(directory, untraced(), "user1@d.example");
    fmt::print("hostile view{:<22} lookup_timeout {:>4} ms: {} ({}) after {:.0f} ms\n",
               bound.empty() ? " (endless CTE)" : " (10,000,000 rows)", lookup_timeout.count(), to_string(r.outcome),
               to_string(r.cause), ms_since(start));
}

}  // namespace

int main(int argc, char** argv) {
    long mailboxes = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    std::string dir = argc > 2 ? argv[2]
                               : std::string(std::filesystem::temp_directory_path() /
                                             fmt::format("bench_lookup_bound.{}", getpid()));
    std::filesystem::create_directories(dir);
    std::string csv = dir + "/input.csv", db = dir + "/primary.db", replica = dir + "/units.db";
    if (!std::filesystem::exists(replica)) {
        std::filesystem::remove(db);
        write_input(csv, mailboxes);
        auto primary = unit::Primary::init(db);
        if (!primary) return fmt::print(stderr, "{}\n", primary.error().message), 1;
        std::ifstream in(csv);
        if (auto s = primary->import_csv(in, csv); !s) return fmt::print(stderr, "{}\n", s.error().message), 1;
        if (auto p = primary->publish(replica); !p) return fmt::print(stderr, "{}\n", p.error().message), 1;
    }

    std::mt19937 rng(13);
    std::vector<std::string> keys;
    for (int i = 0; i < 200'000; ++i) {
        long n = static_cast<long>(rng() % static_cast<unsigned>(mailboxes));
        keys.push_back(i % 5 == 0 ? fmt::format("nobody{}@d.example", n) : fmt::format("user{}@d.example", n));
    }
    std::vector<double> without, with;
    for (int round = 0; round < 12; ++round) {  // which goes first alternates too
        if (round % 2 == 0) without.push_back(resolve_all(replica, milliseconds(0), keys));
        with.push_back(resolve_all(replica, milliseconds(1000), keys));
        if (round % 2 == 1) without.push_back(resolve_all(replica, milliseconds(0), keys));
    }
    fmt::print("{} mailboxes, {} resolutions per run, medians of 12 alternating runs\n", mailboxes, keys.size());
    fmt::print("resolution without progress handler (lookup_timeout 0):    {:.0f} ns CPU\n", median(without));
    fmt::print("resolution with progress handler (lookup_timeout 1000 ms): {:.0f} ns CPU\n", median(with));
    fmt::print("ratio with/without: {:.3f}\n", median(with) / median(without));

    {
        auto directory = open(replica, milliseconds(1000));
        const auto options = untraced();
        auto start = Clock::now();
        auto cold = unit::resolve(directory, options, "big@d.example");
        double cold_ms = ms_since(start);
        start = Clock::now();
        for (int i = 0; i < 20; ++i) (void)unit::resolve(directory, options, "big@d.example");
        fmt::print("alias of 1,000 targets ({}, {} targets): fresh connection {:.1f} ms, hot {:.1f} ms\n",
                   to_string(cold.outcome), cold.targets.size(), cold_ms, ms_since(start) / 20);
    }

    hostile(replica, dir + "/hostile.db", "", milliseconds(1000));
    hostile(replica, dir + "/hostile.db", " WHERE i < 10000000", milliseconds(0));
    if (argc <= 2) std::filesystem::remove_all(dir);
    return 0;
}
