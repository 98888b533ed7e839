// fuzz_csv_import.cpp: Primary::import_csv (src/unit/primary.hpp) on
// arbitrary bytes, each input into a fresh in-memory database. Properties:
//   - a refused import is an input problem (Invalid, Conflict, NotFound),
//     never a database fault, and its message starts with the source name;
//   - a successful import counts every row after the header but the
//     trailer, and leaves a database that check() finds healthy (the import
//     refuses what check() would report);
//   - the export of that database imports into another fresh database, with
//     the same counts, and exports to the same bytes (export and import are
//     inverse on anything the import accepted).
// Every input gets fresh databases, the schema created each time: under the
// sanitizers that takes milliseconds, so this target runs about a hundred
// inputs a second where the pure parsers run thousands.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>

#include "invariant.hpp"
#include "unit/csv.hpp"
#include "unit/primary.hpp"

namespace {

using unit::ImportStats;
using unit::Primary;
using unit::fuzz::require;

constexpr const char* source = "fuzz.csv";

Primary fresh_database() {
    auto db = Primary::init(":memory:");
    require(db.ok(), "a fresh in-memory database opens");
    return std::move(db.value());
}

std::int64_t total(const ImportStats& s) { return s.domains + s.units + s.mailboxes + s.aliases; }

bool same_counts(const ImportStats& a, const ImportStats& b) {
    return a.domains == b.domains && a.units == b.units && a.mailboxes == b.mailboxes && a.aliases == b.aliases;
}

// The object rows after the header line, as the CSV reader sees them: not
// the trailer ("end,,ROWS,", csv.hpp).
std::int64_t data_rows(const std::string& text) {
    std::istringstream in(text);
    unit::CsvReader reader(in);
    std::int64_t rows = 0;
    for (auto row = reader.next(); row.ok() && row.value(); row = reader.next())
        if (row.value()->fields.empty() || row.value()->fields[0] != "end") ++rows;
    return rows - 1;
}

bool is_input_problem(unit::Errc code) {
    return code == unit::Errc::Invalid || code == unit::Errc::Conflict || code == unit::Errc::NotFound;
}

std::string export_of(Primary& db) {
    std::ostringstream out;
    auto r = db.export_csv(out);
    require(r.ok(), "a database that imported exports");
    return out.str();
}

void require_healthy(Primary& db) {
    auto problems = db.check();
    require(problems.ok(), "check() runs on an imported database");
    if (!problems->empty()) std::fprintf(stderr, "fuzz: check(): %s\n", problems->front().c_str());
    require(problems->empty(), "a successful import leaves a database check() finds healthy");
}

void require_round_trip(const std::string& exported, const ImportStats& counts) {
    Primary db = fresh_database();
    std::istringstream in(exported);
    auto again = db.import_csv(in, "export");
    if (!again) std::fprintf(stderr, "fuzz: re-import: %s\n", again.error().message.c_str());
    require(again.ok(), "an export imports into a fresh database");
    require(same_counts(*again, counts), "an export imports with the same counts");
    require(export_of(db) == exported, "an export imported and exported again is the same bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    Primary db = fresh_database();
    std::istringstream in(text);
    auto stats = db.import_csv(in, source);
    if (!stats) {
        require(is_input_problem(stats.error().code), "a refused import is an input problem, not a database fault");
        require(stats.error().message.rfind(std::string(source) + ":", 0) == 0, "a refused import names the source");
        return 0;
    }
    require(total(*stats) == data_rows(text), "an import counts every row after the header");
    require_healthy(db);
    require_round_trip(export_of(db), *stats);
    return 0;
}
