// fuzz_printable.cpp: common::printable() (src/common/log.hpp), the one
// function every client value passes through on its way to a log line, on
// arbitrary bytes and an arbitrary cut. Properties:
//   - the result holds no ASCII control byte and no DEL: a line stays one line;
//   - every backslash starts an escape \xNN, so decoding the escapes gives
//     back exactly the first `max` bytes of the value (nothing lost, nothing
//     forged), followed by "..." exactly when the value was longer;
//   - what is kept unescaped above ASCII is UTF-8 without C1 controls, so the
//     result, escaped again, only has its backslashes escaped.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "invariant.hpp"

namespace {

using unit::common::printable;
using unit::fuzz::require;

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The value printable() escaped, from its result without the "..." mark.
std::string unescape(std::string_view escaped) {
    std::string out;
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        if (escaped[i] != '\\') {
            out += escaped[i];
            continue;
        }
        require(i + 3 < escaped.size(), "an escape is complete");
        require(escaped[i + 1] == 'x' && hex(escaped[i + 2]) >= 0 && hex(escaped[i + 3]) >= 0,
                "a backslash starts \\xNN");
        out += static_cast<char>(hex(escaped[i + 2]) * 16 + hex(escaped[i + 3]));
        i += 3;
    }
    return out;
}

std::string backslashes_escaped(std::string_view text) {
    std::string out;
    for (char c : text) out += c == '\\' ? std::string("\\x5c") : std::string(1, c);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t max = data[0];  // cuts anywhere in the short inputs libFuzzer favours
    const std::string_view value(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string result = printable(value, max);

    for (char c : result) {
        const auto byte = static_cast<unsigned char>(c);
        require(byte >= 0x20 && byte != 0x7f, "no control byte in the result");
    }
    const bool cut = value.size() > max;
    std::string_view body = result;
    if (cut) {
        require(body.size() >= 3 && body.substr(body.size() - 3) == "...", "a cut value ends with ...");
        body.remove_suffix(3);
    }
    require(unescape(body) == value.substr(0, max), "the escapes decode to the value's first max bytes");
    require(printable(body, body.size()) == backslashes_escaped(body), "what is kept is printable UTF-8");
    return 0;
}
