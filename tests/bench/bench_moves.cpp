// bench_moves: how long evacuating a large unit takes with bulk moves
// (unitctl move begin|finish --from-unit U --limit N).
//
//   bench_moves [MAILBOXES] [SLICES] [DIR]
//
// Imports MAILBOXES (default 100,000) active mailboxes on unit a of a fresh
// primary in DIR (default: a temporary directory), drains a, then begins
// the moves to b in SLICES (default 10) slices of MAILBOXES/SLICES, finishes
// them in as many slices, removes the empty unit a, and prints the time of
// each slice and the totals; then does the same again in one call each
// (b to a). A benchmark, not a test: meson builds it, `meson test` does not
// run it.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "unit/csv.hpp"
#include "unit/primary.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string input(long mailboxes) {
    std::ostringstream out;
    unit::write_csv_row(out, {"kind", "address", "value", "state"});
    unit::write_csv_row(out, {"domain", "d.example", "", ""});
    for (const char* u : {"a", "b"})
        unit::write_csv_row(out, {"unit", u, fmt::format("smtp:[{}.example]", u), "active"});
    for (long i = 0; i < mailboxes; ++i)
        unit::write_csv_row(out, {"mailbox", fmt::format("user{}@d.example", i), "a", "active"});
    return out.str();
}

// Runs `step` (one slice, returning the mailboxes it changed) `slices`
// times, printing each; the total time.
template <class Step>
double sliced(const char* what, long slices, Step&& step) {
    double total = 0;
    for (long s = 1; s <= slices; ++s) {
        const auto t = Clock::now();
        const std::int64_t moved = step();
        const double seconds = seconds_since(t);
        total += seconds;
        fmt::print("{} slice {:>2}  {:>7} mailboxes  {:.3f} s\n", what, s, moved, seconds);
    }
    return total;
}

[[noreturn]] void fail(const unit::Error& e) {
    fmt::print(stderr, "bench_moves: {}\n", e.message);
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    const long mailboxes = argc > 1 ? std::atol(argv[1]) : 100'000;
    const long slices = argc > 2 ? std::atol(argv[2]) : 10;
    if (mailboxes < 1 || slices < 1) return fmt::print(stderr, "usage: bench_moves [MAILBOXES] [SLICES] [DIR]\n"), 2;
    std::string dir = argc > 3 ? argv[3]
                               : std::filesystem::temp_directory_path() / fmt::format("bench_moves.{}", getpid());
    std::filesystem::create_directories(dir);
    const std::string db = dir + "/primary.db";
    std::filesystem::remove(db);

    auto primary = unit::Primary::init(db);
    if (!primary) fail(primary.error());
    std::istringstream in(input(mailboxes));
    if (auto r = primary->import_csv(in, "bench"); !r) fail(r.error());
    if (auto r = primary->change_unit("a", unit::UnitChange{unit::UnitState::Draining, {}, {}}); !r) fail(r.error());

    const std::int64_t slice = (mailboxes + slices - 1) / slices;
    auto step = [&](unit::Result<unit::MoveCounts> r) {
        if (!r) fail(r.error());
        return r->moved;
    };
    const double begin = sliced("begin ", slices, [&] {
        return step(primary->begin_moves(unit::MoveSelection{{}, "a", slice}, "b"));
    });
    const double finish = sliced("finish", slices, [&] {
        return step(primary->finish_moves(unit::MoveSelection{{}, "a", slice}));
    });
    auto t = Clock::now();
    if (auto r = primary->remove_unit("a"); !r) fail(r.error());
    const double rm = seconds_since(t);
    fmt::print("{} mailboxes in {} slices of {}: begin {:.2f} s, finish {:.2f} s, unit rm {:.3f} s\n", mailboxes,
               slices, slice, begin, finish, rm);

    // The same in one call each, back to a new unit a.
    if (auto r = primary->add_unit(unit::UnitRecord{"a", "smtp", "[a.example]", unit::UnitState::Active}); !r)
        fail(r.error());
    t = Clock::now();
    step(primary->begin_moves(unit::MoveSelection{{}, "b", {}}, "a"));
    const double begin_all = seconds_since(t);
    t = Clock::now();
    step(primary->finish_moves(unit::MoveSelection{{}, "b", {}}));
    const double finish_all = seconds_since(t);
    fmt::print("{} mailboxes in one call each: begin {:.2f} s, finish {:.2f} s\n", mailboxes, begin_all, finish_all);
    if (argc <= 3) std::filesystem::remove_all(dir);
    return 0;
}
