// fuzz_sync.cpp: read_csv_source and Primary::sync (src/unit/sync.hpp) on
// arbitrary bytes, each input synced into a fresh in-memory database that
// holds a small directory (one served domain, two units, three mailboxes,
// a move and an alias). Properties:
//   - a source that cannot be read, or a sync refused, is an input problem
//     (Invalid, Conflict, NotFound), never a database fault, and a refused
//     sync changes nothing (same export, same generation);
//   - a dry run finds the same changes as the sync that follows it, and
//     changes nothing;
//   - a successful sync leaves a database that check() finds healthy;
//   - the same source again is a no-op: no change, same generation;
//   - the database's own export, read back as a source, is a no-op too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>

#include "invariant.hpp"
#include "unit/primary.hpp"
#include "unit/sync.hpp"

namespace {

using unit::Primary;
using unit::SyncOptions;
using unit::fuzz::require;

constexpr const char* seed_directory =
    "kind,address,value,state\n"
    "domain,my.com,,\n"
    "unit,u1,smtp:[u1.my.com],active\n"
    "unit,u2,lmtp:[10.0.0.2]:24,draining\n"
    "mailbox,ann@my.com,u1,active\n"
    "mailbox,bob@my.com,u1,moving:u2\n"
    "mailbox,cat@my.com,u2,suspended\n"
    "alias,sales@my.com,ann@my.com,\n";

Primary seeded_database() {
    auto db = Primary::init(":memory:");
    require(db.ok(), "a fresh in-memory database opens");
    std::istringstream in(seed_directory);
    require(db->import_csv(in, "seed").ok(), "the seed directory imports");
    return std::move(db.value());
}

std::string export_of(Primary& db) {
    std::ostringstream out;
    require(db.export_csv(out).ok(), "the database exports");
    return out.str();
}

bool is_input_problem(unit::Errc code) {
    return code == unit::Errc::Invalid || code == unit::Errc::Conflict || code == unit::Errc::NotFound;
}

std::int64_t generation(Primary& db) {
    auto g = db.generation();
    require(g.ok(), "the generation reads");
    return *g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    auto source = unit::read_csv_source(in, "fuzz.csv", {});
    if (!source) {
        require(is_input_problem(source.error().code), "an unreadable source is an input problem");
        return 0;
    }
    Primary db = seeded_database();
    const std::string before = export_of(db);
    const std::int64_t start = generation(db);

    SyncOptions dry;
    dry.dry_run = true;
    dry.max_removed = unit::RemovalLimit{100, true};
    auto preview = db.sync(*source, dry);
    require(export_of(db) == before && generation(db) == start, "a dry run changes nothing");

    SyncOptions real;
    real.max_removed = unit::RemovalLimit{100, true};
    auto plan = db.sync(*source, real);
    require(preview.ok() == plan.ok(), "a dry run and the sync agree on refusing");
    if (!plan) {
        require(is_input_problem(plan.error().code), "a refused sync is an input problem");
        require(export_of(db) == before && generation(db) == start, "a refused sync changes nothing");
        return 0;
    }
    require(preview->all().total() == plan->all().total(), "a dry run finds the changes the sync makes");
    auto problems = db.check();
    require(problems.ok(), "check() runs after a sync");
    if (!problems->empty()) std::fprintf(stderr, "fuzz: check(): %s\n", problems->front().c_str());
    require(problems->empty(), "a sync leaves a database check() finds healthy");

    const std::int64_t after = generation(db);
    auto again = db.sync(*source, real);
    require(again.ok() && again->all().total() == 0 && generation(db) == after, "the same source again is a no-op");

    std::istringstream exported(export_of(db));
    auto own = unit::read_csv_source(exported, "export", {});
    require(own.ok(), "the database's export reads as a source");
    auto mirror = db.sync(*own, real);
    require(mirror.ok() && mirror->all().total() == 0 && generation(db) == after, "its own export is a no-op");
    return 0;
}
