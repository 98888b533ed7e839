// fuzz_netstring.cpp: NetstringDecoder and encode_netstring
// (src/common/netstring.hpp) on arbitrary bytes, as a socketmap client could
// send them. Properties:
//   - the stream fed whole or in random slices gives the same payloads and
//     the same end state (failed or not, the same error, the same bytes
//     waiting for the rest of their netstring);
//   - the encoding is canonical (no leading zeros), so the payloads decoded,
//     encoded again, are exactly the bytes the decoder consumed;
//   - every payload is at most the limit, and once the complete payloads
//     are taken a decoder that has not failed holds less than one netstring;
//   - a failed decoder stays failed;
//   - any byte string, encoded, decodes back to itself and nothing else.
// Each input runs under Postfix's reply limit and under a small one, so that
// short inputs reach the length check too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/netstring.hpp"
#include "invariant.hpp"
#include "slices.hpp"

namespace {

using unit::common::encode_netstring;
using unit::common::NetstringDecoder;
using unit::fuzz::require;

constexpr std::size_t small_limit = 16;
// The longest netstring a decoder may wait for: 9 digits, ':', payload, ','.
constexpr std::size_t max_framing = 9 + 1 + 1;

struct Outcome {
    std::vector<std::string> payloads;
    bool failed = false;
    std::string error;
    std::size_t buffered = 0;  // what waits for the rest of its netstring (when not failed)
};

bool same_outcome(const Outcome& a, const Outcome& b) {
    return a.payloads == b.payloads && a.failed == b.failed && a.error == b.error &&
           (a.failed || a.buffered == b.buffered);
}

void require_stays_failed(NetstringDecoder& decoder) {
    const std::string error = decoder.error();
    decoder.feed("0:,");
    require(!decoder.next().has_value(), "a failed decoder yields no more payloads");
    require(decoder.failed() && decoder.error() == error, "a failed decoder keeps its error");
}

Outcome decode(const std::vector<std::string_view>& slices, std::size_t limit) {
    NetstringDecoder decoder(limit);
    Outcome out;
    for (auto slice : slices) {
        decoder.feed(slice);
        while (auto payload = decoder.next()) {
            require(payload->size() <= limit, "a payload is at most the limit");
            out.payloads.push_back(std::move(*payload));
        }
        if (!decoder.failed())
            require(decoder.buffered() < limit + max_framing,
                    "a decoder that has not failed buffers less than one netstring");
    }
    out.failed = decoder.failed();
    out.error = decoder.error();
    out.buffered = decoder.buffered();
    require(out.failed == !out.error.empty(), "failed() is whether there is an error");
    if (out.failed) require_stays_failed(decoder);
    return out;
}

void require_canonical(std::string_view stream, const Outcome& outcome) {
    std::string encoded;
    for (const auto& payload : outcome.payloads) encoded += encode_netstring(payload);
    require(stream.substr(0, encoded.size()) == encoded, "the payloads encoded again are the bytes consumed");
}

void require_encoding_round_trip(std::string_view bytes) {
    NetstringDecoder decoder(bytes.size());
    decoder.feed(encode_netstring(bytes));
    auto payload = decoder.next();
    require(payload.has_value() && *payload == bytes, "an encoded string decodes back to itself");
    require(!decoder.next().has_value() && !decoder.failed() && decoder.buffered() == 0,
            "an encoded string leaves nothing behind");
}

void check(std::string_view stream, std::size_t limit) {
    Outcome whole = decode({stream}, limit);
    Outcome sliced = decode(unit::fuzz::random_slices(stream), limit);
    require(same_outcome(whole, sliced), "whole and sliced streams give the same payloads and end state");
    require_canonical(stream, whole);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view stream(reinterpret_cast<const char*>(data), size);
    check(stream, unit::common::max_socketmap_reply);
    check(stream, small_limit);
    require_encoding_round_trip(stream);
    return 0;
}
