// bench_import: how long `unitctl import` takes for a large directory.
//
//   bench_import [MAILBOXES] [DIR]
//
// Writes a CSV of MAILBOXES (default 1,000,000) mailboxes over 1,000 units
// and 10 domains, with one alias per 100 mailboxes, imports it into a fresh
// primary in DIR (default: a temporary directory) in one transaction, then
// publishes a snapshot, and prints the figures: times, rows/s, and the
// process's peak RSS after the import (getrusage ru_maxrss), which should
// be about the same for 100,000 and 1,000,000 mailboxes: the import
// streams. The mailboxes are written in numeric order, not key order
// (user10 before user2 in key order): most of them are held back and
// applied once the file is read, the slower path. A benchmark, not a test:
// meson builds it, `meson test` does not run it.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "unit/csv.hpp"
#include "unit/primary.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void write_input(const std::string& path, long mailboxes) {
    std::ofstream out(path);
    unit::write_csv_row(out, {"kind", "address", "value", "state"});
    for (int d = 0; d < 10; ++d) unit::write_csv_row(out, {"domain", fmt::format("d{}.example", d), "", ""});
    for (int u = 0; u < 1000; ++u)
        unit::write_csv_row(out, {"unit", fmt::format("unit{}", u), fmt::format("smtp:[unit{}.example]", u), "active"});
    for (long i = 0; i < mailboxes; ++i)
        unit::write_csv_row(out, {"mailbox", fmt::format("user{}@d{}.example", i, i % 10),
                                  fmt::format("unit{}", i % 1000), "active"});
    for (long i = 0; i + 1 < mailboxes; i += 100)
        unit::write_csv_row(out, {"alias", fmt::format("alias{}@d{}.example", i, i % 10),
                                  fmt::format("user{}@d{}.example", i, i % 10), ""});
}

}  // namespace

int main(int argc, char** argv) {
    long mailboxes = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    std::string dir = argc > 2 ? argv[2]
                               : std::filesystem::temp_directory_path() / fmt::format("bench_import.{}", getpid());
    std::filesystem::create_directories(dir);
    std::string csv = dir + "/input.csv", db = dir + "/primary.db", replica = dir + "/units.db";
    std::filesystem::remove(db);

    auto t = Clock::now();
    write_input(csv, mailboxes);
    double generate = seconds_since(t);

    auto primary = unit::Primary::init(db);
    if (!primary) return fmt::print(stderr, "bench_import: {}\n", primary.error().message), 1;
    std::ifstream in(csv);
    t = Clock::now();
    auto stats = primary->import_csv(in, csv);
    double import = seconds_since(t);
    if (!stats) return fmt::print(stderr, "bench_import: {}\n", stats.error().message), 1;
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);

    t = Clock::now();
    auto published = primary->publish(replica);
    double publish = seconds_since(t);
    if (!published) return fmt::print(stderr, "bench_import: {}\n", published.error().message), 1;

    fmt::print("mailboxes        {}\n", stats->mailboxes);
    fmt::print("aliases          {}\n", stats->aliases);
    fmt::print("generate csv     {:.2f} s ({} MB)\n", generate, std::filesystem::file_size(csv) >> 20);
    fmt::print("import           {:.2f} s ({:.0f} rows/s, one transaction)\n", import,
               static_cast<double>(stats->mailboxes + stats->aliases) / import);
    fmt::print("peak RSS         {} MB (after the import)\n", usage.ru_maxrss / 1024);
    fmt::print("publish          {:.2f} s ({} MB snapshot)\n", publish, std::filesystem::file_size(replica) >> 20);
    if (argc <= 2) std::filesystem::remove_all(dir);
    return 0;
}
