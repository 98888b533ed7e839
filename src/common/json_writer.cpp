#include "common/json_writer.hpp"

#include <fmt/format.h>

#include <ostream>

namespace unit::common {

namespace {

// The length of the well-formed UTF-8 sequence starting at text[i] (1 to 4),
// or 0 when the bytes there are not one (a stray continuation byte, an
// overlong form, a surrogate, a code point above U+10FFFF, a truncation).
std::size_t utf8_length(std::string_view text, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        if (lead == 0xe0) low = 0xa0;   // no overlong form
        if (lead == 0xed) high = 0x9f;  // no surrogate
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        if (lead == 0xf0) low = 0x90;   // no overlong form
        if (lead == 0xf4) high = 0x8f;  // nothing above U+10FFFF
    } else return 0;
    if (i + length > text.size()) return 0;
    if (byte(i + 1) < low || byte(i + 1) > high) return 0;
    for (std::size_t k = 2; k < length; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
    return length;
}

}  // namespace

std::string json_string(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            const auto length = utf8_length(text, i);
            if (length == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(text.substr(i, length));
                i += length;
            }
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20) out += fmt::format("\\u{:04x}", c);
            else out += static_cast<char>(c);
        }
        ++i;
    }
    out += '"';
    return out;
}

void JsonObject::name(std::string_view name) {
    if (!fields_.empty()) fields_ += ',';
    fields_ += json_string(name);
    fields_ += ':';
}

JsonObject& JsonObject::string(std::string_view name, std::string_view value) {
    this->name(name);
    fields_ += json_string(value);
    return *this;
}

JsonObject& JsonObject::number(std::string_view name, std::int64_t value) {
    this->name(name);
    fields_ += std::to_string(value);
    return *this;
}

JsonObject& JsonObject::boolean(std::string_view name, bool value) {
    this->name(name);
    fields_ += value ? "true" : "false";
    return *this;
}

JsonObject& JsonObject::null(std::string_view name) {
    this->name(name);
    fields_ += "null";
    return *this;
}

JsonObject& JsonObject::json(std::string_view name, std::string_view json) {
    this->name(name);
    fields_ += json;
    return *this;
}

std::string JsonObject::text() const { return '{' + fields_ + '}'; }

std::string json_array(const std::vector<std::string>& elements) {
    return fmt::format("[{}]", fmt::join(elements, ","));
}

std::string json_string_array(const std::vector<std::string>& strings) {
    std::vector<std::string> elements;
    elements.reserve(strings.size());
    for (const auto& s : strings) elements.push_back(json_string(s));
    return json_array(elements);
}

void JsonArrayWriter::add(std::string_view json) {
    out_ << (empty_ ? "[\n" : ",\n") << json;
    empty_ = false;
}

void JsonArrayWriter::close() { out_ << (empty_ ? "[]\n" : "\n]\n"); }

}  // namespace unit::common
