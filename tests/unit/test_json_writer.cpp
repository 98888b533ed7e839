// The project's JSON writer (common/json_writer.hpp), read back by the
// tests' strict reader: any bytes in, valid JSON out; UTF-8 round-trips.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "common/json_writer.hpp"
#include "json_reader.hpp"

using unit::common::json_string;
using unit::common::JsonArrayWriter;
using unit::common::JsonObject;
using unit::test::JsonValue;
using unit::test::parse_json;

TEST_CASE("json_string: quotes, backslashes and control characters escaped, and read back") {
    CHECK(json_string("") == "\"\"");
    CHECK(json_string("a\"b\\c") == R"("a\"b\\c")");
    CHECK(json_string("l1\nl2\tx\r\b\f") == R"("l1\nl2\tx\r\b\f")");
    CHECK(json_string(std::string("\x01\x1f\x7f", 3)) == "\"\\u0001\\u001f\x7f\"");
    CHECK(json_string(std::string("nul\0x", 5)) == R"("nul\u0000x")");
    // Every ASCII byte round-trips.
    std::string ascii;
    for (int c = 0; c < 0x80; ++c) ascii += static_cast<char>(c);
    CHECK(parse_json(json_string(ascii)).string == ascii);
}

TEST_CASE("json_string: well-formed UTF-8 passes through, anything else becomes U+FFFD") {
    const std::string text = "j\xc3\xbcrgen \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80";  // jürgen 日本 😀
    CHECK(json_string(text) == '"' + text + '"');
    CHECK(parse_json(json_string(text)).string == text);
    const std::string replacement = "\xef\xbf\xbd";
    for (const std::string bad : {"\x80", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                  "\xf8\x88\x80\x80\x80", "\xff", "\xe6\x97"}) {
        INFO("bytes: ", json_string(bad));
        const auto value = parse_json(json_string("a" + bad + "z"));
        CHECK(value.string.front() == 'a');
        CHECK(value.string.back() == 'z');
        CHECK(value.string.find(replacement) == 1);
    }
    // Every byte value, in every position after a lead byte: still JSON.
    for (int lead = 0x80; lead < 0x100; ++lead)
        for (int next = 0; next < 0x100; ++next) {
            const std::string bytes{static_cast<char>(lead), static_cast<char>(next)};
            REQUIRE_NOTHROW(parse_json(json_string(bytes)));
        }
}

TEST_CASE("JsonObject: fields in order, each kind of value") {
    const auto text = JsonObject()
                          .string("name", "u\"1")
                          .number("mailboxes", -42)
                          .boolean("ok", true)
                          .null("moving_to")
                          .json("list", "[1,2]")
                          .text();
    CHECK(text == R"({"name":"u\"1","mailboxes":-42,"ok":true,"moving_to":null,"list":[1,2]})");
    const auto value = parse_json(text);
    CHECK(value.names() == std::vector<std::string>{"name", "mailboxes", "ok", "moving_to", "list"});
    CHECK(value["name"].string == "u\"1");
    CHECK(value["mailboxes"].number == -42);
    CHECK(value["moving_to"].is_null());
    CHECK(value["list"].array.size() == 2);
    CHECK(JsonObject().text() == "{}");
    CHECK(unit::common::json_string_array({"a", "b\n"}) == R"(["a","b\n"])");
    CHECK(unit::common::json_array({}) == "[]");
}

TEST_CASE("JsonArrayWriter: one element a line, [] when empty") {
    std::ostringstream empty;
    JsonArrayWriter none(empty);
    none.close();
    CHECK(empty.str() == "[]\n");

    std::ostringstream out;
    JsonArrayWriter array(out);
    array.add(JsonObject().number("n", 1).text());
    array.add(JsonObject().number("n", 2).text());
    array.close();
    CHECK(out.str() == "[\n{\"n\":1},\n{\"n\":2}\n]\n");
    CHECK(parse_json(out.str()).array.size() == 2);
}

TEST_CASE("the test's reader refuses what is not JSON") {
    for (const char* bad : {"", "[", "[1,]", "{\"a\" 1}", "\"\x01\"", "01", "1.5", "[] x", "\"\\x\"", "\"\\ud800\"",
                            "\"\xc0\xaf\"", "nul"}) {
        INFO(bad);
        CHECK_THROWS(parse_json(bad));
    }
    CHECK(parse_json(R"("\u00fc\ud83d\ude00")").string == "\xc3\xbc\xf0\x9f\x98\x80");
}
