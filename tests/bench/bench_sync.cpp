// bench_sync: how long `unitctl sync` takes for a large directory.
//
//   bench_sync [MAILBOXES] [DIR]
//
// Imports the directory of bench_import (MAILBOXES, default 1,000,000, over
// 1,000 units and 10 domains, one alias per 100 mailboxes) into a fresh
// primary in DIR (default: a temporary directory), as the baseline, then
// writes a source that differs in 1% of the mailboxes (a quarter each:
// added, removed, suspended, moved to another unit) and times reading it,
// a dry run, the sync, and the same sync again (a no-op). A benchmark, not
// a test: meson builds it, `meson test` does not run it.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "unit/csv.hpp"
#include "unit/primary.hpp"
#include "unit/sync.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Which 1% of the mailboxes the source changes, by index: i % 400 picks
// the change (the alias targets, i % 100 == 0, are never removed).
enum class Change { None, Remove, Suspend, Move };
Change change_of(long i) {
    switch (i % 400) {
    case 10: return Change::Remove;
    case 20: return Change::Suspend;
    case 30: return Change::Move;
    default: return Change::None;
    }
}

// The directory; `changed` writes the source (with an export's trailer).
void write_input(const std::string& path, long mailboxes, bool changed) {
    std::ofstream out(path);
    std::uint64_t rows = 0;
    auto row = [&](const std::vector<std::string>& fields) {
        unit::write_csv_row(out, fields);
        ++rows;
    };
    unit::write_export_header(out);
    for (int d = 0; d < 10; ++d) row({"domain", fmt::format("d{}.example", d), "", ""});
    for (int u = 0; u < 1000; ++u)
        row({"unit", fmt::format("unit{}", u), fmt::format("smtp:[unit{}.example]", u), "active"});
    for (long i = 0; i < mailboxes; ++i) {
        const auto address = fmt::format("user{}@d{}.example", i, i % 10);
        const auto change = changed ? change_of(i) : Change::None;
        if (change == Change::Remove) continue;
        row({"mailbox", address, fmt::format("unit{}", (i + (change == Change::Move ? 1 : 0)) % 1000),
             change == Change::Suspend ? "suspended" : "active"});
    }
    if (changed)  // as many added as removed
        for (long i = 0; i < mailboxes / 400; ++i)
            row({"mailbox", fmt::format("new{}@d{}.example", i, i % 10), "unit0", ""});
    for (long i = 0; i + 1 < mailboxes; i += 100)
        row({"alias", fmt::format("alias{}@d{}.example", i, i % 10), fmt::format("user{}@d{}.example", i, i % 10), ""});
    if (changed) unit::write_export_end(out, rows);
}

int fail(const unit::Error& e) {
    fmt::print(stderr, "bench_sync: {}\n", e.message);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    long mailboxes = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    std::string dir = argc > 2 ? argv[2]
                               : std::filesystem::temp_directory_path() / fmt::format("bench_sync.{}", getpid());
    std::filesystem::create_directories(dir);
    std::string base = dir + "/base.csv", source_csv = dir + "/source.csv", db = dir + "/primary.db";
    std::filesystem::remove(db);
    write_input(base, mailboxes, false);
    write_input(source_csv, mailboxes, true);

    auto primary = unit::Primary::init(db);
    if (!primary) return fail(primary.error());
    std::ifstream base_in(base);
    auto t = Clock::now();
    auto stats = primary->import_csv(base_in, base);
    const double import = seconds_since(t);
    if (!stats) return fail(stats.error());

    std::ifstream source_in(source_csv);
    t = Clock::now();
    auto source = unit::read_csv_source(source_in, source_csv, {});
    const double read = seconds_since(t);
    if (!source) return fail(source.error());

    auto timed_sync = [&](bool dry_run, double& seconds) {
        unit::SyncOptions options;
        options.dry_run = dry_run;
        auto start = Clock::now();
        auto plan = primary->sync(*source, options);
        seconds = seconds_since(start);
        return plan;
    };
    double dry = 0, sync = 0, again = 0;
    auto dry_plan = timed_sync(true, dry);
    if (!dry_plan) return fail(dry_plan.error());
    auto plan = timed_sync(false, sync);
    if (!plan) return fail(plan.error());
    auto noop = timed_sync(false, again);
    if (!noop) return fail(noop.error());

    const auto c = plan->all();
    fmt::print("mailboxes        {}\n", stats->mailboxes);
    fmt::print("changes          added {} changed {} removed {} moves begun {}\n", c.added, c.changed, c.removed,
               c.moves_begun);
    fmt::print("import (base)    {:.2f} s\n", import);
    fmt::print("read source      {:.2f} s ({} MB CSV)\n", read, std::filesystem::file_size(source_csv) >> 20);
    fmt::print("sync --dry-run   {:.2f} s\n", dry);
    fmt::print("sync             {:.2f} s (read + sync {:.2f} s, {:.2f} x the import)\n", sync, read + sync,
               (read + sync) / import);
    fmt::print("sync again       {:.2f} s ({} changes, generation {} -> {})\n", again, noop->all().total(),
               plan->generation, noop->generation);
    if (argc <= 2) std::filesystem::remove_all(dir);
    return noop->all().total() == 0 && noop->generation == plan->generation ? 0 : 1;
}
