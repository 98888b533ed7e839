// netstring.cpp: the incremental netstring decoder and the encoder.
#include "common/netstring.hpp"

#include <charconv>

namespace unit::common {

namespace {

constexpr std::size_t max_length_digits = 9;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace

void NetstringDecoder::feed(std::string_view bytes) {
    if (failed()) return;  // the stream is lost; do not grow the buffer
    buffer_.append(bytes);
}

std::optional<std::string> NetstringDecoder::next() {
    if (failed()) return std::nullopt;
    const std::size_t size = buffer_.size();

    // The length: 1 to 9 decimal digits, no leading zero but "0" itself.
    // Checked byte by byte so that a bad prefix fails as soon as it arrives.
    std::size_t pos = start_;
    std::size_t length = 0;
    for (;;) {
        if (pos == size) return std::nullopt;  // more bytes needed
        const char c = buffer_[pos];
        if (c == ':') break;
        if (!is_digit(c)) {
            error_ = pos == start_ ? "netstring: length does not start with a digit" : "netstring: non-digit in length";
            return std::nullopt;
        }
        if (pos > start_ && buffer_[start_] == '0') {
            error_ = "netstring: length has a leading zero";
            return std::nullopt;
        }
        if (pos - start_ == max_length_digits) {
            error_ = "netstring: length has more than 9 digits";
            return std::nullopt;
        }
        length = length * 10 + static_cast<std::size_t>(c - '0');
        if (length > max_payload_) {
            error_ = "netstring: payload longer than " + std::to_string(max_payload_) + " bytes";
            return std::nullopt;
        }
        ++pos;
    }
    if (pos == start_) {
        error_ = "netstring: empty length";
        return std::nullopt;
    }

    const std::size_t data = pos + 1;
    if (size - data < length + 1) return std::nullopt;  // payload or ',' not here yet
    if (buffer_[data + length] != ',') {
        error_ = "netstring: missing ',' after payload";
        return std::nullopt;
    }
    std::string payload = buffer_.substr(data, length);
    start_ = data + length + 1;

    // Compact cheaply: drop the consumed front only once it is more than
    // half of the buffer (amortised O(1) per byte).
    if (start_ == buffer_.size()) {
        buffer_.clear();
        start_ = 0;
    } else if (start_ > buffer_.size() / 2) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    return payload;
}

void append_netstring(std::string& out, std::string_view payload) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, payload.size());
    (void)ec;  // 24 characters hold any size_t
    out.reserve(out.size() + static_cast<std::size_t>(end - digits) + payload.size() + 2);
    out.append(digits, end);
    out.push_back(':');
    out.append(payload);
    out.push_back(',');
}

std::string encode_netstring(std::string_view payload) {
    std::string out;
    append_netstring(out, payload);
    return out;
}

}  // namespace unit::common
