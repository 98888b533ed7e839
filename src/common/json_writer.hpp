// json_writer.hpp: JSON text as the programs write it (unitpolicy --dump
// --json, its control socket, unitctl --json): the project's one JSON writer.
//
// Whatever the bytes given, the text is valid JSON (RFC 8259): '"', '\\'
// and the control characters are escaped, and a byte that is not part of
// well-formed UTF-8 becomes U+FFFD, so a parser never refuses the output of
// a database that holds such a byte. Well-formed UTF-8 passes through as it
// is. Numbers are integers; there is no floating point. Pure, no logging;
// objects of these classes are not shared between threads.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace unit::common {

// `text` as a JSON string, quoted and escaped.
std::string json_string(std::string_view text);

// One JSON object, built field by field in the order given. The names are
// the caller's constants: they are escaped all the same. Separate names for
// each kind of value: an overload would take a const char* for a bool.
class JsonObject {
public:
    JsonObject& string(std::string_view name, std::string_view value);
    JsonObject& number(std::string_view name, std::int64_t value);
    JsonObject& boolean(std::string_view name, bool value);
    JsonObject& null(std::string_view name);
    // `json` must already be JSON text (an object or array built here).
    JsonObject& json(std::string_view name, std::string_view json);

    // "{...}", on one line.
    std::string text() const;

private:
    void name(std::string_view name);
    std::string fields_;
};

// `elements` (JSON texts) as one array, on one line.
std::string json_array(const std::vector<std::string>& elements);
// `strings` as an array of JSON strings, on one line.
std::string json_string_array(const std::vector<std::string>& strings);

// An array written to `out` as it goes, one element per line, for listings
// too long to build in memory first: "[\n{...},\n{...}\n]\n", "[]\n" when
// empty. The destructor writes nothing: call close() once, after the last
// element; a writer left open leaves invalid JSON behind (a failed command).
class JsonArrayWriter {
public:
    explicit JsonArrayWriter(std::ostream& out) noexcept : out_(out) {}
    void add(std::string_view json);
    void close();

private:
    std::ostream& out_;
    bool empty_ = true;
};

}  // namespace unit::common
