// bench_held_scan: what one scan of the held-mail watcher (held_mail.hpp)
// costs the daemon with a large queue: postqueue -j read through a pipe,
// each line parsed, each recipient resolved against a replica and the
// release decision made.
//
//   bench_held_scan [MESSAGES] [DIR]
//
// Publishes a replica of 10,000 mailboxes on units a and b, half of a's
// moving to b (held), writes MESSAGES (default 100,000) postqueue -j lines
// to DIR/queue.jsonl (default: a temporary directory), one recipient each:
// a quarter held and still held, a quarter held and now deliverable, a
// quarter deferred for another reason, a quarter unknown; then reads them
// with run_program("cat") into a HeldScan, as a scan does, and prints the
// time, the held count and the messages it would release (postqueue -i is
// not run: one process per released message, timed apart by the
// integration test). A benchmark, not a test: meson builds it, `meson test`
// does not run it.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "policyd/held_mail.hpp"
#include "policyd/program.hpp"
#include "unit/csv.hpp"
#include "unit/primary.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr long mailboxes = 10'000;

[[noreturn]] void fail(const std::string& message) {
    fmt::print(stderr, "bench_held_scan: {}\n", message);
    std::exit(1);
}

std::string directory_csv() {
    std::ostringstream out;
    unit::write_csv_row(out, {"kind", "address", "value", "state"});
    unit::write_csv_row(out, {"domain", "d.example", "", ""});
    for (const char* u : {"a", "b"})
        unit::write_csv_row(out, {"unit", u, fmt::format("lmtp:[{}.example]:24", u), "active"});
    for (long i = 0; i < mailboxes; ++i)
        unit::write_csv_row(out, {"mailbox", fmt::format("user{}@d.example", i), "a", "active"});
    return out.str();
}

std::string queue_line(long i) {
    const long kind = i % 4;
    const long user = kind == 0 ? i % (mailboxes / 2) : mailboxes / 2 + i % (mailboxes / 2);
    const std::string address = kind == 3 ? fmt::format("nobody{}@d.example", i)
                                          : fmt::format("user{}@d.example", user);
    const char* reason = kind == 2 ? "connect to b.example[10.0.0.2]:24: Connection refused" : "deferred transport";
    return fmt::format(R"({{"queue_name": "deferred", "queue_id": "Q{:X}", "arrival_time": 1796276021, )"
                       R"("message_size": 402, "forced_expire": false, "sender": "s@x.example", )"
                       R"("recipients": [{{"address": "{}", "delay_reason": "{}"}}]}})",
                       i, address, reason);
}

}  // namespace

int main(int argc, char** argv) {
    const long messages = argc > 1 ? std::atol(argv[1]) : 100'000;
    if (messages < 1) return fmt::print(stderr, "usage: bench_held_scan [MESSAGES] [DIR]\n"), 2;
    std::string dir = argc > 2 ? argv[2]
                               : std::filesystem::temp_directory_path() / fmt::format("bench_held_scan.{}", getpid());
    std::filesystem::create_directories(dir);
    std::filesystem::remove(dir + "/primary.db");

    auto primary = unit::Primary::init(dir + "/primary.db");
    if (!primary) fail(primary.error().message);
    std::istringstream in(directory_csv());
    if (auto r = primary->import_csv(in, "bench"); !r) fail(r.error().message);
    unit::MoveSelection first_half;
    for (long i = 0; i < mailboxes / 2; ++i) first_half.addresses.push_back(fmt::format("user{}@d.example", i));
    if (auto r = primary->begin_moves(first_half, "b"); !r) fail(r.error().message);
    if (auto r = primary->publish(dir + "/units.db"); !r) fail(r.error().message);
    {
        std::ofstream queue(dir + "/queue.jsonl");
        for (long i = 0; i < messages; ++i) queue << queue_line(i) << '\n';
    }

    unit::DirectoryOptions where;
    where.path = dir + "/units.db";
    unit::Directory directory(where);
    unit::ResolverOptions options;
    options.trace = false;
    unit::policyd::AnswerSettings answers;
    unit::policyd::HeldScan scan([&](std::string_view address) {
        return unit::policyd::route_of(unit::resolve(directory, options, address), answers);
    });
    const auto start = Clock::now();
    auto read = unit::policyd::run_program({"/bin/cat", dir + "/queue.jsonl"}, {}, [&](std::string_view line) {
        if (auto m = unit::policyd::parse_queue_line(line)) scan.add(*m);
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!read) fail(read.error().message);
    std::uint64_t held = 0;
    for (const auto& [unit, count] : scan.held()) held += count;
    fmt::print("scan of {} deferred messages: {:.3f} s ({:.1f} us a message); held {}, to release {}\n", messages,
               seconds, seconds * 1e6 / static_cast<double>(messages), held, scan.release().size());
    if (argc <= 2) std::filesystem::remove_all(dir);
    return 0;
}
