// fuzz_csv.cpp: CsvReader and write_csv_row (src/unit/csv.hpp) on arbitrary
// bytes, as an import file could hold them. Properties:
//   - reading ends, with a row count no greater than the input allows, and
//     nothing escapes (next() is noexcept);
//   - row line numbers start at 1 and increase;
//   - after an error, the reader reports the end of input;
//   - rows read from a valid file, written back with write_csv_row and read
//     again, are the same rows, and writing those gives the same bytes.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "invariant.hpp"
#include "unit/csv.hpp"

namespace {

using unit::CsvReader;
using unit::CsvRow;
using unit::fuzz::require;

using Rows = std::vector<std::vector<std::string>>;

struct Outcome {
    Rows rows;
    bool failed = false;
};

Outcome read_all(const std::string& text) {
    std::istringstream in(text);
    CsvReader reader(in);
    Outcome out;
    std::uint64_t last_line = 0;
    for (;;) {
        auto row = reader.next();
        if (!row) {
            require(!row.error().message.empty(), "a read error has a message");
            out.failed = true;
            auto after = reader.next();
            require(after.ok() && !after.value().has_value(), "after an error the reader reports the end");
            return out;
        }
        if (!row.value()) return out;
        const CsvRow& r = *row.value();
        require(r.line > last_line, "row line numbers increase");
        require(!out.rows.empty() || r.line == 1, "the first row is on line 1");
        require(!r.fields.empty(), "a row has at least one field");
        // A row takes at least one byte (but the last row's fields may be
        // empty); more rows than bytes means the reader is not advancing.
        require(out.rows.size() <= text.size(), "the reader advances");
        last_line = r.line;
        out.rows.push_back(r.fields);
    }
}

std::string write_all(const Rows& rows) {
    std::ostringstream out;
    for (const auto& fields : rows) unit::write_csv_row(out, fields);
    return out.str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    Outcome first = read_all(text);
    if (first.failed) return 0;
    std::string written = write_all(first.rows);
    // Quoting can lengthen a line; past the line cap the reader refuses it.
    if (written.size() > unit::max_csv_line) return 0;
    Outcome again = read_all(written);
    require(!again.failed, "rows written back read without error");
    require(again.rows == first.rows, "rows written back read as the same rows");
    require(write_all(again.rows) == written, "writing the rows read back gives the same bytes");
    return 0;
}
