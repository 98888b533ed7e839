#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/netstring.hpp"

using namespace std::string_literals;
using namespace std::string_view_literals;
using unit::common::append_netstring;
using unit::common::encode_netstring;
using unit::common::NetstringDecoder;

namespace {

struct Decoded {
    std::vector<std::string> payloads;
    bool failed = false;
    std::string error;
};

// Feeds `chunks` one by one, draining next() after each.
Decoded decode_chunks(const std::vector<std::string_view>& chunks, std::size_t limit) {
    NetstringDecoder decoder(limit);
    Decoded out;
    for (auto chunk : chunks) {
        decoder.feed(chunk);
        while (auto p = decoder.next()) out.payloads.push_back(std::move(*p));
    }
    out.failed = decoder.failed();
    out.error = decoder.error();
    return out;
}

Decoded decode(std::string_view bytes, std::size_t limit = 1000) { return decode_chunks({bytes}, limit); }

std::string fail_error(std::string_view bytes, std::size_t limit = 1000) {
    auto d = decode(bytes, limit);
    CHECK(d.failed);
    return d.error;
}

}  // namespace

TEST_CASE("encoding") {
    CHECK(encode_netstring("") == "0:,");
    CHECK(encode_netstring("hello") == "5:hello,");
    CHECK(encode_netstring("a,b:c") == "5:a,b:c,");
    CHECK(encode_netstring("\0\n"sv) == "2:\0\n,"s);
    CHECK(encode_netstring(std::string(1234, 'x')) == "1234:" + std::string(1234, 'x') + ",");
    std::string out = "prefix";
    append_netstring(out, "OK x");
    append_netstring(out, "");
    CHECK(out == "prefix4:OK x,0:,");
}

TEST_CASE("decoding one payload") {
    auto d = decode("5:hello,");
    CHECK_FALSE(d.failed);
    CHECK(d.error.empty());
    REQUIRE(d.payloads.size() == 1);
    CHECK(d.payloads[0] == "hello");

    d = decode("0:,");
    CHECK_FALSE(d.failed);
    REQUIRE(d.payloads.size() == 1);
    CHECK(d.payloads[0].empty());

    // The payload is bytes: ':', ',', NUL and line ends are data.
    d = decode("6:a:b,\0\n,"s);
    CHECK_FALSE(d.failed);
    REQUIRE(d.payloads.size() == 1);
    CHECK(d.payloads[0] == "a:b,\0\n"s);
}

TEST_CASE("back-to-back payloads and buffered bytes") {
    NetstringDecoder decoder(100);
    CHECK(decoder.buffered() == 0);
    CHECK_FALSE(decoder.next().has_value());
    decoder.feed("3:abc,0:,6:domain,2:x");
    CHECK(decoder.buffered() == 21);
    CHECK(decoder.next() == "abc");
    CHECK(decoder.next() == "");
    CHECK(decoder.next() == "domain");
    CHECK_FALSE(decoder.next().has_value());  // "2:x" is incomplete
    CHECK_FALSE(decoder.failed());
    CHECK(decoder.buffered() == 3);
    decoder.feed("y,");
    CHECK(decoder.next() == "xy");
    CHECK_FALSE(decoder.next().has_value());
    CHECK(decoder.buffered() == 0);
    CHECK_FALSE(decoder.failed());
}

TEST_CASE("a socketmap request stream round-trips through the encoder") {
    std::vector<std::string> payloads = {"recipient user@example.com", "transportmx *",     "", "alias a,b@c",
                                         std::string(999, 'z'),        "domain example.com"};
    std::string stream;
    for (const auto& p : payloads) append_netstring(stream, p);
    auto d = decode(stream);
    CHECK_FALSE(d.failed);
    CHECK(d.payloads == payloads);
}

TEST_CASE("every split of the stream gives the same payloads") {
    const std::vector<std::string> payloads = {"recipient a@b.c", "", "x", "12345678901", "transportunit ,:,"};
    std::string stream;
    for (const auto& p : payloads) append_netstring(stream, p);
    const std::string_view s = stream;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        CAPTURE(i);
        auto d = decode_chunks({s.substr(0, i), s.substr(i)}, 100);
        CHECK_FALSE(d.failed);
        CHECK(d.payloads == payloads);
        for (std::size_t j = i; j <= s.size(); j += 3) {
            auto d3 = decode_chunks({s.substr(0, i), s.substr(i, j - i), s.substr(j)}, 100);
            CHECK(d3.payloads == payloads);
        }
    }
    // One byte at a time.
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
    auto d = decode_chunks(bytes, 100);
    CHECK_FALSE(d.failed);
    CHECK(d.payloads == payloads);
}

TEST_CASE("every split of a malformed stream fails the same way") {
    for (std::string_view bad :
         {"3:abc,01:x,"sv, "3:abc,4:abcde,"sv, "5:hello,1x:a,"sv, "2:ab,20000:"sv, "1:a,:,"sv, "2:ab,1234567890:"sv}) {
        CAPTURE(bad);
        auto whole = decode(bad, 1000);
        REQUIRE(whole.failed);
        for (std::size_t i = 0; i <= bad.size(); ++i) {
            CAPTURE(i);
            auto d = decode_chunks({bad.substr(0, i), bad.substr(i)}, 1000);
            CHECK(d.failed);
            CHECK(d.error == whole.error);
            CHECK(d.payloads == whole.payloads);
        }
    }
}

TEST_CASE("malformed lengths") {
    CHECK(fail_error("01:a,") == "netstring: length has a leading zero");
    CHECK(fail_error("00:,") == "netstring: length has a leading zero");
    CHECK(fail_error("007:abcdefg,") == "netstring: length has a leading zero");
    CHECK(fail_error(":,") == "netstring: empty length");
    CHECK(fail_error("x:,") == "netstring: length does not start with a digit");
    CHECK(fail_error(" 1:a,") == "netstring: length does not start with a digit");
    CHECK(fail_error("-1:a,") == "netstring: length does not start with a digit");
    CHECK(fail_error("+1:a,") == "netstring: length does not start with a digit");
    CHECK(fail_error("1 :a,") == "netstring: non-digit in length");
    CHECK(fail_error("1a:a,") == "netstring: non-digit in length");
    CHECK(fail_error("0x1:a,") == "netstring: non-digit in length");
    CHECK(fail_error("1\0:a,"s) == "netstring: non-digit in length");
    // More than 9 digits, even under a huge limit.
    const auto huge = std::numeric_limits<std::size_t>::max();
    CHECK(fail_error("1234567890:", huge) == "netstring: length has more than 9 digits");
    CHECK(fail_error("9999999999", huge) == "netstring: length has more than 9 digits");
    // Nine digits are allowed (the payload is simply not there yet).
    auto nine = decode("999999999:abc", huge);
    CHECK_FALSE(nine.failed);
    CHECK(nine.payloads.empty());
    // Every error text starts with "netstring: ".
    for (std::string_view bad : {"01:a,"sv, ":"sv, "x"sv, "1x"sv, "1:ab"sv, "2000:"sv}) {
        CAPTURE(bad);
        CHECK(fail_error(bad).rfind("netstring: ", 0) == 0);
    }
}

TEST_CASE("a missing ','") {
    CHECK(fail_error("1:ab") == "netstring: missing ',' after payload");
    CHECK(fail_error("3:abc;") == "netstring: missing ',' after payload");
    CHECK(fail_error("0:x") == "netstring: missing ',' after payload");
    CHECK(fail_error("3:abc\n") == "netstring: missing ',' after payload");
    // Not yet known: the ',' may still come.
    auto d = decode("3:abc");
    CHECK_FALSE(d.failed);
    CHECK(d.payloads.empty());
    // A good payload before the bad one is still delivered.
    d = decode("1:a,1:bc,1:d,");
    CHECK(d.failed);
    CHECK(d.payloads == std::vector<std::string>{"a"});
}

TEST_CASE("the payload limit: exactly the limit, and one byte over") {
    const std::size_t limit = 100;
    auto d = decode(encode_netstring(std::string(limit, 'a')), limit);
    CHECK_FALSE(d.failed);
    REQUIRE(d.payloads.size() == 1);
    CHECK(d.payloads[0] == std::string(limit, 'a'));

    d = decode(encode_netstring(std::string(limit + 1, 'a')), limit);
    CHECK(d.failed);
    CHECK(d.error == "netstring: payload longer than 100 bytes");
    CHECK(d.payloads.empty());

    // Refused as soon as the length says so, before the payload arrives.
    NetstringDecoder decoder(limit);
    decoder.feed("10");
    CHECK_FALSE(decoder.next().has_value());
    CHECK_FALSE(decoder.failed());
    decoder.feed("1");
    CHECK_FALSE(decoder.next().has_value());
    CHECK(decoder.failed());

    // A zero limit allows only empty payloads.
    d = decode("0:,0:,", 0);
    CHECK_FALSE(d.failed);
    CHECK(d.payloads.size() == 2);
    CHECK(decode("1:a,", 0).failed);

    // Postfix's reply limit as a request limit.
    const auto big = std::string(unit::common::max_socketmap_reply, 'b');
    d = decode(encode_netstring(big), unit::common::max_socketmap_reply);
    CHECK_FALSE(d.failed);
    REQUIRE(d.payloads.size() == 1);
    CHECK(d.payloads[0] == big);
    CHECK(decode(encode_netstring(big + "b"), unit::common::max_socketmap_reply).failed);
}

TEST_CASE("a failed decoder stays failed") {
    NetstringDecoder decoder(100);
    decoder.feed("01:a,");
    CHECK_FALSE(decoder.next().has_value());
    REQUIRE(decoder.failed());
    const std::string error = decoder.error();
    decoder.feed("1:a,");
    CHECK_FALSE(decoder.next().has_value());
    CHECK(decoder.failed());
    CHECK(decoder.error() == error);
}

TEST_CASE("many payloads through one decoder keep the buffer small") {
    // The buffer is compacted as it is consumed: feeding a long stream in
    // small pieces never holds much more than one piece and one payload.
    NetstringDecoder decoder(1000);
    std::size_t received = 0;
    std::size_t most_buffered = 0;
    std::string piece;
    for (int i = 0; i < 20000; ++i) {
        piece.clear();
        append_netstring(piece, "recipient user" + std::to_string(i) + "@example.com");
        // Split each encoded payload in two feeds to keep a partial tail buffered.
        const auto half = piece.size() / 2;
        decoder.feed(std::string_view(piece).substr(0, half));
        while (auto p = decoder.next()) {
            CHECK(*p == "recipient user" + std::to_string(received) + "@example.com");
            ++received;
        }
        decoder.feed(std::string_view(piece).substr(half));
        while (auto p = decoder.next()) {
            CHECK(*p == "recipient user" + std::to_string(received) + "@example.com");
            ++received;
        }
        most_buffered = std::max(most_buffered, decoder.buffered());
    }
    CHECK(received == 20000);
    CHECK_FALSE(decoder.failed());
    CHECK(decoder.buffered() == 0);
    CHECK(most_buffered < 100);
}

TEST_CASE("random bytes never crash the decoder") {
    std::mt19937 rng(20240601);
    const std::string alphabet = "0123456789:,0123456789:,ab\n\0"s;
    for (int round = 0; round < 5000; ++round) {
        std::string input;
        const auto length = rng() % 64;
        const bool mostly_grammar = round % 2 == 0;
        for (std::uint32_t i = 0; i < length; ++i) {
            if (mostly_grammar) input.push_back(alphabet[rng() % alphabet.size()]);
            else input.push_back(static_cast<char>(rng() & 0xff));
        }
        const std::size_t limit = rng() % 40;
        NetstringDecoder decoder(limit);
        std::size_t pos = 0;
        std::size_t total = 0;
        while (pos < input.size()) {
            const std::size_t n = 1 + rng() % 8;
            decoder.feed(std::string_view(input).substr(pos, n));
            pos += n;
            while (auto p = decoder.next()) {
                CHECK(p->size() <= limit);
                total += p->size();
            }
        }
        CHECK(total <= input.size());
        CHECK(decoder.buffered() <= input.size());
        if (decoder.failed()) CHECK(decoder.error().rfind("netstring: ", 0) == 0);
        // A whole feed agrees with the piecewise one.
        auto whole = decode(input, limit);
        CHECK(whole.failed == decoder.failed());
        CHECK(whole.error == decoder.error());
    }
}
