// csv.hpp: the import/export file format of unitctl (DESIGN §11):
// a header line "kind,address,value,state", then one row per object:
//   domain,my.com,,
//   unit,unit12,smtp:[unit12.my.com],active
//   mailbox,user@my.com,unit12,active        (state "moving:UNIT" for a move)
//   alias,sales@my.com,user@my.com,
//   end,,12,                                  (the trailer: how many rows above)
// export ends with the trailer row "end,,ROWS," where ROWS counts the object
// rows between the header and it: a file cut anywhere (a full disk, a pipe
// closed early) lacks it or has a wrong count. import accepts files with or
// without it (hand-written CSV); sync requires it. Nothing may follow it.
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
#include "unit/records.hpp"
#include "unit/result.hpp"

namespace unit {

inline constexpr std::size_t max_csv_line = 64 * 1024;

struct CsvRow {
    std::uint64_t line = 0;  // line number where the row starts
    std::vector<std::string> fields;
};

class UNIT_EXPORT CsvReader {
public:
    explicit CsvReader(std::istream& in) noexcept : in_(in) {}
    Result<std::optional<CsvRow>> next() noexcept;
    // The bytes consumed so far (for a progress line).
    std::uint64_t bytes() const noexcept { return bytes_; }

private:
    std::istream& in_;
    std::uint64_t line_ = 0;
    std::uint64_t bytes_ = 0;
};

// Writes one row, quoting fields as needed, ending with "\n".
UNIT_EXPORT void write_csv_row(std::ostream& out, const std::vector<std::string>& fields);

// The header row of the format, and its trailer for `rows` object rows.
UNIT_EXPORT void write_export_header(std::ostream& out);
UNIT_EXPORT void write_export_end(std::ostream& out, std::uint64_t rows);

// What read_export() found after the header.
struct ExportEnd {
    std::uint64_t rows = 0;  // object rows read
    bool ended = false;      // the trailer was there, with the right count
};

// Reads a file of the format: checks the header, then hands each object row
// to `on_row` (kind in fields[0], padded to 4 fields), in file order, and
// checks the trailer when there is one. Errc::Invalid with "SOURCE:LINE:
// problem" for a bad header or row, an unknown kind, a trailer with a wrong
// count or followed by rows; `on_row`'s own errors are returned as they are
// (it adds the line itself).
template <class Fn>
Result<ExportEnd> read_export(std::istream& in, const std::string& source, Fn&& on_row);

// An object row as a record, its values as the file spells them (the caller
// normalises and checks them). Errc::Invalid: "unit NAME: ..." for a value
// that is not transport:nexthop or a bad state; "mailbox ADDRESS: bad state
// ..." for a state that is not active, suspended, disabled or moving:UNIT.
UNIT_EXPORT Result<UnitRecord> unit_from_row(const CsvRow& row);
UNIT_EXPORT Result<MailboxRecord> mailbox_from_row(const CsvRow& row);
UNIT_EXPORT Result<AliasRecord> alias_from_row(const CsvRow& row);  // Invalid when it has a state

namespace detail {
// One step of read_export(): the header (row 0), then each row. Returns
// the row when it is an object row, nullopt at the end of input or after
// the trailer.
class UNIT_EXPORT ExportReader {
public:
    ExportReader(std::istream& in, const std::string& source) noexcept : reader_(in), source_(source) {}
    Result<std::optional<CsvRow>> next() noexcept;
    ExportEnd end() const noexcept { return end_; }
    std::uint64_t bytes() const noexcept { return reader_.bytes(); }

private:
    CsvReader reader_;
    const std::string& source_;
    bool header_ = false;
    ExportEnd end_;
};
}  // namespace detail

template <class Fn>
Result<ExportEnd> read_export(std::istream& in, const std::string& source, Fn&& on_row) {
    detail::ExportReader reader(in, source);
    for (;;) {
        auto row = reader.next();
        if (!row) return row.error();
        if (!row.value()) return reader.end();
        if (auto r = on_row(*row.value()); !r) return r.error();
    }
}

}  // namespace unit
