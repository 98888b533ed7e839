#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "unit/csv.hpp"

using unit::CsvReader;
using unit::CsvRow;
using unit::Errc;
using unit::write_csv_row;

namespace {

using Fields = std::vector<std::string>;

// Every row of `text`; fails the test on an error.
std::vector<CsvRow> read_all(const std::string& text) {
    std::istringstream in(text);
    CsvReader reader(in);
    std::vector<CsvRow> rows;
    for (;;) {
        auto next = reader.next();
        REQUIRE_MESSAGE(next.ok(), (next.ok() ? "" : next.error().message));
        if (!next.value()) return rows;
        rows.push_back(std::move(*next.value()));
    }
}

// The first error reading `text`; fails the test when it reads cleanly.
std::string read_error(const std::string& text) {
    std::istringstream in(text);
    CsvReader reader(in);
    for (int i = 0; i < 1000; ++i) {
        auto next = reader.next();
        if (!next.ok()) {
            CHECK(next.error().code == Errc::Invalid);
            return next.error().message;
        }
        if (!next.value()) break;
    }
    FAIL("no error reading: ", text);
    return {};
}

std::string written(const std::vector<Fields>& rows) {
    std::ostringstream out;
    for (const auto& row : rows) write_csv_row(out, row);
    return out.str();
}

}  // namespace

TEST_CASE("the import format's rows") {
    auto rows = read_all(
        "kind,address,value,state\n"
        "domain,my.com,,\n"
        "unit,unit12,smtp:[unit12.my.com],active\n"
        "mailbox,user@my.com,unit12,moving:unit13\n"
        "alias,sales@my.com,user@my.com\n");
    REQUIRE(rows.size() == 5);
    CHECK(rows[0].fields == Fields{"kind", "address", "value", "state"});
    CHECK(rows[1].fields == Fields{"domain", "my.com", "", ""});
    CHECK(rows[2].fields == Fields{"unit", "unit12", "smtp:[unit12.my.com]", "active"});
    CHECK(rows[3].fields == Fields{"mailbox", "user@my.com", "unit12", "moving:unit13"});
    CHECK(rows[4].fields == Fields{"alias", "sales@my.com", "user@my.com"});  // state missing: not interpreted
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(rows[i].line == i + 1);
}

TEST_CASE("line ends") {
    SUBCASE("CRLF") {
        auto rows = read_all("a,b\r\nc,d\r\n");
        REQUIRE(rows.size() == 2);
        CHECK(rows[0].fields == Fields{"a", "b"});
        CHECK(rows[1].fields == Fields{"c", "d"});
        CHECK(rows[1].line == 2);
    }
    SUBCASE("mixed LF and CRLF") {
        auto rows = read_all("a\nb\r\nc\n");
        REQUIRE(rows.size() == 3);
        CHECK(rows[2].fields == Fields{"c"});
        CHECK(rows[2].line == 3);
    }
    SUBCASE("the last line needs no line end") {
        auto rows = read_all("a,b\nc,d");
        REQUIRE(rows.size() == 2);
        CHECK(rows[1].fields == Fields{"c", "d"});
        CHECK(read_all("\"x\"").at(0).fields == Fields{"x"});
        CHECK(read_all("a,").at(0).fields == Fields{"a", ""});
    }
    SUBCASE("a trailing empty line is ignored") {
        CHECK(read_all("a\n\n").size() == 1);
        CHECK(read_all("a\r\n\r\n").size() == 1);
        CHECK(read_all("\n").empty());
        CHECK(read_all("").empty());
    }
    SUBCASE("an empty line elsewhere is a row of one empty field") {
        auto rows = read_all("a\n\nb\n");
        REQUIRE(rows.size() == 3);
        CHECK(rows[1].fields == Fields{""});
        CHECK(rows[1].line == 2);
        CHECK(rows[2].line == 3);
        CHECK(read_all("a\n\n\n").size() == 2);
    }
}

TEST_CASE("quoted fields") {
    SUBCASE("commas, doubled quotes, empty quotes") {
        auto rows = read_all("\"a,b\",\"say \"\"hi\"\"\",\"\",\"\"\"\"\n");
        REQUIRE(rows.size() == 1);
        CHECK(rows[0].fields == Fields{"a,b", "say \"hi\"", "", "\""});
    }
    SUBCASE("line breaks inside quotes, and the line numbers after them") {
        auto rows = read_all("h1,h2\nx,\"one\ntwo\nthree\"\ny,\"crlf\r\ninside\"\r\nz,end\n");
        REQUIRE(rows.size() == 4);
        CHECK(rows[1].fields == Fields{"x", "one\ntwo\nthree"});
        CHECK(rows[1].line == 2);
        CHECK(rows[2].fields == Fields{"y", "crlf\r\ninside"});
        CHECK(rows[2].line == 5);
        CHECK(rows[3].fields == Fields{"z", "end"});
        CHECK(rows[3].line == 7);
    }
    SUBCASE("a quoted field may hold a bare CR") { CHECK(read_all("\"a\rb\"\n").at(0).fields == Fields{"a\rb"}); }
    SUBCASE("spaces are data") { CHECK(read_all(" a , b \n").at(0).fields == Fields{" a ", " b "}); }
    SUBCASE("UTF-8 passes through") {
        CHECK(read_all("jörg@bücher.example,\"ß,ü\"\n").at(0).fields == Fields{"jörg@bücher.example", "ß,ü"});
    }
}

TEST_CASE("errors name the line") {
    CHECK(read_error("a\nb,\"open\nstill open\n") == "line 2: unterminated quoted field");
    CHECK(read_error("a\"b\n") == "line 1: quote in unquoted field");
    CHECK(read_error("ok\nok\nab,c\"d\n") == "line 3: quote in unquoted field");
    CHECK(read_error("\"a\"b\n") == "line 1: text after closing quote");
    CHECK(read_error("x\n\"a\" ,b\n") == "line 2: text after closing quote");
    CHECK(read_error("a\rb\n") == "line 1: bare carriage return");
    CHECK(read_error("a\nb\r") == "line 2: bare carriage return");
    CHECK(read_error(std::string("a\nb\0c\n", 6)) == "line 2: NUL byte");
    CHECK(read_error(std::string("\"x\ny\0\"\n", 7)) == "line 2: NUL byte");
    CHECK(read_error(std::string("\0", 1)) == "line 1: NUL byte");
    // A problem on a later line of a multi-line row names that line.
    CHECK(read_error("a,\"b\nc\"d\n") == "line 2: text after closing quote");
}

TEST_CASE("line length cap") {
    std::string longest(unit::max_csv_line, 'x');
    CHECK(read_all(longest + "\n").at(0).fields.at(0).size() == unit::max_csv_line);
    CHECK(read_all(longest + "\r\n").size() == 1);
    CHECK(read_all(longest).size() == 1);
    std::string message = "line 2: line longer than " + std::to_string(unit::max_csv_line) + " bytes";
    CHECK(read_error("ok\n" + longest + "x\n") == message);
    CHECK(read_error("ok\n" + longest + "x") == message);
    CHECK(read_error("ok\n\"" + longest + "\"\n") == message);  // the quotes count
    // A row continued over several lines counts as a whole.
    CHECK(read_error("ok\n\"" + std::string(40000, 'x') + "\n" + std::string(40000, 'y') + "\"\n") == message);
    CHECK(read_error("ok\n" + std::string(10 * unit::max_csv_line, 'z')) == message);
}

TEST_CASE("after an error the reader is at its end") {
    std::istringstream in("a\"b\nc,d\n");
    CsvReader reader(in);
    auto first = reader.next();
    REQUIRE_FALSE(first.ok());
    auto second = reader.next();
    REQUIRE(second.ok());
    CHECK_FALSE(second.value().has_value());
}

TEST_CASE("write_csv_row quotes only what needs it") {
    CHECK(written({{"kind", "address", "value", "state"}}) == "kind,address,value,state\n");
    CHECK(written({{"domain", "my.com", "", ""}}) == "domain,my.com,,\n");
    CHECK(written({{"a,b"}}) == "\"a,b\"\n");
    CHECK(written({{"say \"hi\""}}) == "\"say \"\"hi\"\"\"\n");
    CHECK(written({{"x", "one\ntwo"}}) == "x,\"one\ntwo\"\n");
    CHECK(written({{"x", "cr\rhere"}}) == "x,\"cr\rhere\"\n");
    CHECK(written({{" spaced ", "smtp:[unit12.my.com]", "jörg"}}) == " spaced ,smtp:[unit12.my.com],jörg\n");
    // A lone empty field must not become an empty line.
    CHECK(written({{""}}) == "\"\"\n");
    CHECK(written({{"", ""}}) == ",\n");
}

TEST_CASE("tricky fields survive a round trip") {
    const std::vector<Fields> rows = {
        {"kind", "address", "value", "state"},
        {"a,b", "say \"hi\"", "\"", "\"\""},
        {"line1\nline2", "crlf\r\ninside", "\r", "\n"},
        {"", "", "", ""},
        {""},
        {",", ",,", "\",\"", " "},
        {"trailing\n", "\nleading", "x"},
        {"alias", "\"john doe\"@my.com", "jörg@xn--bcher-kva.example", ""},
    };
    auto back = read_all(written(rows));
    REQUIRE(back.size() == rows.size());
    std::uint64_t line = 1;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(i);
        CHECK(back[i].fields == rows[i]);
        CHECK(back[i].line == line);
        for (const auto& field : rows[i])
            line += static_cast<std::uint64_t>(std::count(field.begin(), field.end(), '\n'));
        ++line;
    }
}

TEST_CASE("random rows survive a round trip") {
    std::mt19937 rng(4180);
    const std::string alphabet = "ab,\"\r\n \xc3\xa9";
    for (int round = 0; round < 200; ++round) {
        std::vector<Fields> rows(std::uniform_int_distribution<std::size_t>(1, 8)(rng));
        for (auto& row : rows) {
            row.resize(std::uniform_int_distribution<std::size_t>(1, 5)(rng));
            for (auto& field : row) {
                std::size_t len = std::uniform_int_distribution<std::size_t>(0, 6)(rng);
                for (std::size_t k = 0; k < len; ++k)
                    field += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
            }
        }
        auto back = read_all(written(rows));
        REQUIRE(back.size() == rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) CHECK(back[i].fields == rows[i]);
    }
}

TEST_CASE("random bytes never throw") {
    std::mt19937 rng(65536);
    const std::string alphabet = std::string("a,\"\r\n\0x", 7);
    for (int round = 0; round < 3000; ++round) {
        std::string text;
        std::size_t len = std::uniform_int_distribution<std::size_t>(0, 60)(rng);
        for (std::size_t k = 0; k < len; ++k) {
            text += round % 2 ? static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng))
                              : alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
        }
        std::istringstream in(text);
        CsvReader reader(in);
        std::uint64_t last_line = 0;
        for (int i = 0; i <= 100; ++i) {
            REQUIRE(i < 100);  // the reader always reaches an end
            unit::Result<std::optional<CsvRow>> next = std::optional<CsvRow>{};
            REQUIRE_NOTHROW(next = reader.next());
            if (!next.ok()) {
                CHECK(next.error().code == Errc::Invalid);
                CHECK(next.error().message.starts_with("line "));
                break;
            }
            if (!next.value()) break;
            CHECK(next.value()->line > last_line);
            CHECK(!next.value()->fields.empty());
            last_line = next.value()->line;
        }
    }
}
