// csv.cpp: the RFC 4180 reader and writer of csv.hpp.
#include "unit/csv.hpp"

#include <fmt/format.h>

#include <charconv>
#include <new>
#include <streambuf>
#include <string_view>

namespace unit {
namespace {

using Traits = std::char_traits<char>;

enum class State { FieldStart, Unquoted, Quoted, AfterQuote };

// Reads one row from a stream buffer, one byte at a time. `line` counts the
// line ends consumed so far and `bytes` the bytes; both advance as they are read.
class RowParser {
public:
    RowParser(std::streambuf& buf, std::uint64_t& line, std::uint64_t& bytes) noexcept
        : buf_(buf), line_(line), bytes_read_(bytes) {}

    Result<std::optional<CsvRow>> parse();

private:
    bool at_end() { return Traits::eq_int_type(buf_.sgetc(), Traits::eof()); }
    Traits::int_type bump() {
        auto c = buf_.sbumpc();
        if (!Traits::eq_int_type(c, Traits::eof())) ++bytes_read_;
        return c;
    }
    bool step(char c);
    bool outside_quotes(char c);
    void inside_quotes(char c);
    bool fail(std::uint64_t line, std::string_view problem);
    bool blank_last_line() { return state_ == State::FieldStart && row_.fields.size() == 1 && at_end(); }

    std::streambuf& buf_;
    std::uint64_t& line_;
    std::uint64_t& bytes_read_;
    CsvRow row_;
    State state_ = State::FieldStart;
    std::size_t bytes_ = 0;         // of the row so far
    std::uint64_t quote_line_ = 0;  // where the open quoted field began
    std::optional<Error> error_;
};

Result<std::optional<CsvRow>> RowParser::parse() {
    if (at_end()) return std::optional<CsvRow>{};
    row_.line = line_ + 1;
    row_.fields.emplace_back();
    for (;;) {
        auto c = bump();
        if (Traits::eq_int_type(c, Traits::eof())) {
            // The last row needs no line end, but a quoted field does need its closing quote.
            if (state_ == State::Quoted) fail(quote_line_, "unterminated quoted field");
            break;
        }
        bool ended = step(Traits::to_char_type(c));
        if (error_) break;
        if (ended) {
            // An editor's final empty line is not a row of one empty field.
            if (blank_last_line()) return std::optional<CsvRow>{};
            break;
        }
    }
    if (error_) return std::move(*error_);
    return std::optional<CsvRow>{std::move(row_)};
}

// Consumes one byte; true when it ended the row (or failed).
bool RowParser::step(char c) {
    if (c == '\0') return fail(line_ + 1, "NUL byte");
    // The line end itself does not count; any other byte past the cap does.
    if (++bytes_ > max_csv_line && c != '\r' && c != '\n')
        return fail(row_.line, "line longer than " + std::to_string(max_csv_line) + " bytes");
    if (state_ != State::Quoted) return outside_quotes(c);
    inside_quotes(c);
    return false;
}

void RowParser::inside_quotes(char c) {
    if (c == '"') {
        if (Traits::eq_int_type(buf_.sgetc(), Traits::to_int_type('"'))) {
            bump();
            row_.fields.back() += '"';
        } else {
            state_ = State::AfterQuote;
        }
        return;
    }
    // Line breaks inside quotes are data, kept byte for byte (CRLF stays CRLF).
    if (c == '\n') ++line_;
    row_.fields.back() += c;
}

bool RowParser::outside_quotes(char c) {
    if (c == ',') {
        row_.fields.emplace_back();
        state_ = State::FieldStart;
        return false;
    }
    if (c == '\n') {
        ++line_;
        return true;
    }
    if (c == '\r') {
        if (!Traits::eq_int_type(buf_.sgetc(), Traits::to_int_type('\n')))
            return fail(line_ + 1, "bare carriage return");
        bump();
        ++line_;
        return true;
    }
    if (state_ == State::AfterQuote) return fail(line_ + 1, "text after closing quote");
    if (c == '"') {
        // RFC 4180: a quote may only open a field, never appear inside an unquoted one.
        if (state_ != State::FieldStart) return fail(line_ + 1, "quote in unquoted field");
        state_ = State::Quoted;
        quote_line_ = line_ + 1;
        return false;
    }
    state_ = State::Unquoted;
    row_.fields.back() += c;
    return false;
}

bool RowParser::fail(std::uint64_t line, std::string_view problem) {
    error_ = make_error(Errc::Invalid, "line " + std::to_string(line) + ": " + std::string(problem));
    return true;
}

bool needs_quotes(const std::string& field, bool only_field) {
    // A row of one empty field would otherwise be written as an empty line,
    // which reads back as nothing at the end of a file.
    if (only_field && field.empty()) return true;
    return field.find_first_of(",\"\r\n") != std::string::npos;
}

void append_field(std::string& line, const std::string& field, bool only_field) {
    if (!needs_quotes(field, only_field)) {
        line += field;
        return;
    }
    line += '"';
    for (char c : field) {
        if (c == '"') line += '"';
        line += c;
    }
    line += '"';
}

}  // namespace

Result<std::optional<CsvRow>> CsvReader::next() noexcept {
    try {
        std::streambuf* buf = in_.rdbuf();
        if (buf == nullptr || !in_.good()) return std::optional<CsvRow>{};
        auto row = RowParser(*buf, line_, bytes_).parse();
        if (!row) {
            // The rest of the input is not parsed after an error: later calls report the end.
            try {
                in_.setstate(std::ios::failbit);
            } catch (const std::ios_base::failure&) {  // the stream's exception mask asked for one: the bit is set
            }
        }
        return row;
    } catch (const std::exception&) {  // a stream buffer's read error
        return make_error(Errc::Io, "line " + std::to_string(line_ + 1) + ": read error");
    }
}

void write_csv_row(std::ostream& out, const std::vector<std::string>& fields) {
    std::string line;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) line += ',';
        append_field(line, fields[i], fields.size() == 1);
    }
    line += '\n';
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
}

// ------------------------------------------------------------ the export format

namespace {
const std::vector<std::string> header_fields{"kind", "address", "value", "state"};
}

void write_export_header(std::ostream& out) { write_csv_row(out, header_fields); }

void write_export_end(std::ostream& out, std::uint64_t rows) {
    write_csv_row(out, {"end", "", std::to_string(rows), ""});
}

namespace detail {

Result<std::optional<CsvRow>> ExportReader::next() noexcept {
    auto at = [&](std::uint64_t line, const std::string& problem) -> Error {
        return make_error(Errc::Invalid, fmt::format("{}:{}: {}", source_, line, problem));
    };
    try {
        if (!header_) {
            header_ = true;
            auto header = reader_.next();
            if (!header) return make_error(header.error().code, fmt::format("{}: {}", source_, header.error().message));
            // The state column may be left out of a hand-written file.
            if (!header.value() ||
                (header.value()->fields != header_fields &&
                 header.value()->fields != std::vector<std::string>(header_fields.begin(), header_fields.end() - 1)))
                return at(1, "the header must be kind,address,value,state");
        }
        auto row = reader_.next();
        if (!row) return make_error(row.error().code, fmt::format("{}: {}", source_, row.error().message));
        if (!row.value()) return row;
        CsvRow& r = *row.value();
        if (end_.ended) return at(r.line, "a row after the end row");
        if (r.fields.size() < 3 || r.fields.size() > 4)
            return at(r.line, fmt::format("expected 3 or 4 fields, found {}", r.fields.size()));
        r.fields.resize(4);
        const std::string& kind = r.fields[0];
        if (kind == "end") {
            std::uint64_t rows = 0;
            const std::string& text = r.fields[2];
            auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), rows);
            if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !r.fields[1].empty() ||
                !r.fields[3].empty())
                return at(r.line, fmt::format("bad end row (expected end,,ROWS,)"));
            if (rows != end_.rows)
                return at(r.line,
                          fmt::format("truncated: the end row counts {} rows, the file has {}", rows, end_.rows));
            end_.ended = true;
            return next();  // only the end of input may follow
        }
        if (kind != "domain" && kind != "unit" && kind != "mailbox" && kind != "alias")
            return at(r.line, fmt::format("unknown kind \"{}\"", kind));
        ++end_.rows;
        return row;
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, fmt::format("{}: {}", source_, e.what()));
    }
}

}  // namespace detail

Result<UnitRecord> unit_from_row(const CsvRow& row) {
    const auto& value = row.fields[2];
    auto colon = value.find(':');
    if (colon == std::string::npos)
        return make_error(Errc::Invalid,
                          fmt::format("unit {}: value \"{}\" is not transport:nexthop", row.fields[1], value));
    UnitRecord unit{row.fields[1], value.substr(0, colon), value.substr(colon + 1), UnitState::Active};
    if (!row.fields[3].empty()) {
        auto state = parse_unit_state(row.fields[3]);
        if (!state)
            return make_error(Errc::Invalid, fmt::format("unit {}: bad state \"{}\"", unit.name, row.fields[3]));
        unit.state = *state;
    }
    return unit;
}

Result<MailboxRecord> mailbox_from_row(const CsvRow& row) {
    MailboxRecord mailbox{row.fields[1], row.fields[2], MailboxState::Active, ""};
    const std::string& text = row.fields[3];
    if (text.rfind("moving:", 0) == 0) {
        mailbox.state = MailboxState::Moving;
        mailbox.moving_to = text.substr(7);
        return mailbox;
    }
    auto state = text.empty() ? std::optional(MailboxState::Active) : parse_mailbox_state(text);
    if (!state || *state == MailboxState::Moving)
        return make_error(Errc::Invalid, fmt::format("mailbox {}: bad state \"{}\"", mailbox.address, text));
    mailbox.state = *state;
    return mailbox;
}

Result<AliasRecord> alias_from_row(const CsvRow& row) {
    if (!row.fields[3].empty())
        return make_error(Errc::Invalid, fmt::format("alias {}: an alias has no state", row.fields[1]));
    return AliasRecord{row.fields[1], row.fields[2]};
}

}  // namespace unit
