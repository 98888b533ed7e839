// netstring.hpp: the netstring framing of Postfix's socketmap protocol
// ("LEN:DATA," with LEN in decimal, no leading zeros but "0").
//
// NetstringDecoder is incremental: feed() any slice of the byte stream,
// then next() yields each complete payload in order. A malformed length, a
// missing ',' or a payload longer than the limit puts the decoder in the
// failed state for good (the connection must be closed: the stream cannot be
// resynchronised). Not thread-safe (one per connection). Logs nothing.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace unit::common {

inline constexpr std::size_t max_socketmap_reply = 100'000;  // Postfix's own limit

class NetstringDecoder {
public:
    explicit NetstringDecoder(std::size_t max_payload) noexcept : max_payload_(max_payload) {}

    void feed(std::string_view bytes);
    // The next complete payload; nullopt when more bytes are needed or the
    // decoder failed (see failed()).
    std::optional<std::string> next();
    bool failed() const noexcept { return !error_.empty(); }
    const std::string& error() const noexcept { return error_; }  // "netstring: ..." when failed
    std::size_t buffered() const noexcept { return buffer_.size() - start_; }

private:
    std::size_t max_payload_;
    std::string buffer_;
    std::size_t start_ = 0;
    std::string error_;
};

// "LEN:DATA,"
std::string encode_netstring(std::string_view payload);
void append_netstring(std::string& out, std::string_view payload);

}  // namespace unit::common
