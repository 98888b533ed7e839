// json_reader.hpp: a strict JSON parser (RFC 8259) for the tests, so that
// they check what a program wrote as a consumer would read it: one value,
// nothing after it but white space, strings of well-formed UTF-8 with their
// escapes decoded. The programs only write JSON (common/json_writer.hpp);
// this reader is test code, independent of that writer.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unit::test {

struct JsonValue {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    std::int64_t number = 0;  // integers only: the programs write no others
    std::string string;
    std::vector<JsonValue> array;
    std::vector<std::pair<std::string, JsonValue>> object;  // in order

    bool is_null() const { return kind == Kind::Null; }
    // The member `name` of an object; throws std::runtime_error when absent
    // or when this is not an object.
    const JsonValue& operator[](std::string_view name) const;
    // The names of an object's members, in order.
    std::vector<std::string> names() const;
};

// `text` parsed; std::runtime_error naming the offset when it is not JSON.
JsonValue parse_json(std::string_view text);

}  // namespace unit::test
