// csv.hpp: the import/export file format of unitctl (DESIGN §11):
// a header line "kind,address,value,state", then one row per object:
//   domain,my.com,,
//   unit,unit12,smtp:[unit12.my.com],active
//   mailbox,user@my.com,unit12,active        (state "moving:UNIT" for a move)
//   alias,sales@my.com,user@my.com,
// Fields follow RFC 4180 (double quotes around a field that holds a comma,
// a quote or a line break; "" inside quotes). The state field may be empty
// or missing (active).
//
// CsvReader::next() outcomes: a row, end of input (nullopt), or
// Errc::Invalid naming the line. No exception escapes. Not thread-safe
// (one reader per stream). Logs nothing.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "unit/export.hpp"
#include "unit/result.hpp"

namespace unit {

inline constexpr std::size_t max_csv_line = 64 * 1024;

struct CsvRow {
    std::uint64_t line = 0;           // line number where the row starts
    std::vector<std::string> fields;
};

class UNIT_EXPORT CsvReader {
public:
    explicit CsvReader(std::istream& in) noexcept : in_(in) {}
    Result<std::optional<CsvRow>> next() noexcept;

private:
    std::istream& in_;
    std::uint64_t line_ = 0;
};

// Writes one row, quoting fields as needed, ending with "\n".
UNIT_EXPORT void write_csv_row(std::ostream& out, const std::vector<std::string>& fields);

}  // namespace unit
