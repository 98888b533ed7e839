#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "policyd/policy_request.hpp"

using namespace std::string_literals;
using namespace std::string_view_literals;
using unit::policyd::PolicyLimits;
using unit::policyd::PolicyParser;
using unit::policyd::PolicyRequest;

namespace {

// A request as Postfix 3.7 smtpd sends it at RCPT.
const std::string rcpt_request =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=192.0.2.7\n"
    "client_name=mail.example.net\n"
    "client_port=40212\n"
    "reverse_client_name=mail.example.net\n"
    "server_address=192.0.2.1\n"
    "server_port=25\n"
    "helo_name=mail.example.net\n"
    "sender=alice@example.net\n"
    "recipient=Bob+tag@Example.COM\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "instance=123.456.7\n"
    "size=0\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=\n"
    "sasl_username=\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "policy_context=\n"
    "compatibility_level=3.6\n"
    "mail_version=3.7.11\n"
    "\n";
constexpr std::size_t rcpt_attributes = 31;

std::string crlf(std::string_view lf) {
    std::string out;
    for (char c : lf) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

struct Parsed {
    std::vector<PolicyRequest> requests;
    bool failed = false;
    std::string error;
};

Parsed parse_chunks(const std::vector<std::string_view>& chunks, PolicyLimits limits = {}) {
    PolicyParser parser(limits);
    Parsed out;
    for (auto chunk : chunks) {
        parser.feed(chunk);
        while (auto r = parser.next()) out.requests.push_back(std::move(*r));
    }
    out.failed = parser.failed();
    out.error = parser.error();
    return out;
}

Parsed parse(std::string_view bytes, PolicyLimits limits = {}) { return parse_chunks({bytes}, limits); }

bool same(const PolicyRequest& a, const PolicyRequest& b) {
    return a.request == b.request && a.protocol_state == b.protocol_state && a.recipient == b.recipient &&
           a.sender == b.sender && a.client_address == b.client_address && a.client_name == b.client_name &&
           a.queue_id == b.queue_id && a.attributes == b.attributes;
}

bool same(const std::vector<PolicyRequest>& a, const std::vector<PolicyRequest>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same(a[i], b[i])) return false;
    return true;
}

void check_rcpt(const PolicyRequest& r) {
    CHECK(r.request == "smtpd_access_policy");
    CHECK(r.protocol_state == "RCPT");
    CHECK(r.recipient == "Bob+tag@Example.COM");  // kept verbatim: normalisation is the resolver's
    CHECK(r.sender == "alice@example.net");
    CHECK(r.client_address == "192.0.2.7");
    CHECK(r.client_name == "mail.example.net");
    CHECK(r.queue_id.empty());
    CHECK(r.attributes == rcpt_attributes);
}

}  // namespace

TEST_CASE("a full RCPT request: named attributes kept, the others counted and ignored") {
    auto p = parse(rcpt_request);
    CHECK_FALSE(p.failed);
    CHECK(p.error.empty());
    REQUIRE(p.requests.size() == 1);
    check_rcpt(p.requests[0]);
}

TEST_CASE("CRLF line ends, and LF and CRLF mixed") {
    auto p = parse(crlf(rcpt_request));
    CHECK_FALSE(p.failed);
    REQUIRE(p.requests.size() == 1);
    check_rcpt(p.requests[0]);

    p = parse(
        "request=smtpd_access_policy\r\nprotocol_state=VRFY\nrecipient=a@b\r\n\n"
        "protocol_state=DATA\n\r\n");
    CHECK_FALSE(p.failed);
    REQUIRE(p.requests.size() == 2);
    CHECK(p.requests[0].protocol_state == "VRFY");
    CHECK(p.requests[0].recipient == "a@b");
    CHECK(p.requests[0].attributes == 3);
    CHECK(p.requests[1].protocol_state == "DATA");
    CHECK(p.requests[1].recipient.empty());
    CHECK(p.requests[1].attributes == 1);
}

TEST_CASE("back-to-back requests on one connection are independent") {
    const std::string second =
        "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=carol@example.com\ninstance=123.456.7\n\n";
    auto p = parse(rcpt_request + second + rcpt_request);
    CHECK_FALSE(p.failed);
    REQUIRE(p.requests.size() == 3);
    check_rcpt(p.requests[0]);
    CHECK(p.requests[1].recipient == "carol@example.com");
    CHECK(p.requests[1].sender.empty());  // nothing carried over from the first request
    CHECK(p.requests[1].client_address.empty());
    CHECK(p.requests[1].attributes == 4);
    check_rcpt(p.requests[2]);

    PolicyParser parser;
    parser.feed(rcpt_request);
    parser.feed("recipient=x@y");
    auto r = parser.next();
    REQUIRE(r.has_value());
    check_rcpt(*r);
    CHECK_FALSE(parser.next().has_value());
    CHECK(parser.buffered() == 13);
    parser.feed("\n\n");
    r = parser.next();
    REQUIRE(r.has_value());
    CHECK(r->recipient == "x@y");
    CHECK(r->attributes == 1);
    CHECK(parser.buffered() == 0);
    CHECK_FALSE(parser.next().has_value());
    CHECK_FALSE(parser.failed());
}

TEST_CASE("values: the first '=' splits, the rest is the value; the last duplicate wins") {
    auto p = parse("recipient=a=b@c\nsender=\nqueue_id=ABC\nqueue_id=DEF\nclient_name= spaced \n\n");
    CHECK_FALSE(p.failed);
    REQUIRE(p.requests.size() == 1);
    const auto& r = p.requests[0];
    CHECK(r.recipient == "a=b@c");
    CHECK(r.sender.empty());
    CHECK(r.queue_id == "DEF");
    CHECK(r.client_name == " spaced ");
    CHECK(r.attributes == 5);
    // Names are exact: case and spaces matter.
    p = parse("Recipient=x@y\nrecipient =x@y\n recipient=x@y\n=x\nrecipient_count=1\n\n");
    CHECK_FALSE(p.failed);
    REQUIRE(p.requests.size() == 1);
    CHECK(p.requests[0].recipient.empty());
    CHECK(p.requests[0].attributes == 5);
}

TEST_CASE("stray empty lines are not requests") {
    auto p = parse("\n\r\n\n" + rcpt_request + "\n\n" + rcpt_request + "\r\n");
    CHECK_FALSE(p.failed);
    REQUIRE(p.requests.size() == 2);
    check_rcpt(p.requests[0]);
    check_rcpt(p.requests[1]);
    p = parse("\n");
    CHECK_FALSE(p.failed);
    CHECK(p.requests.empty());
}

TEST_CASE("an unfinished request is not yielded") {
    // (A request without its empty line: tests/golden/policy/unfinished-request.in.)
    auto p = parse("request=smtpd_access_policy\nrecipient=a@b\n\r");  // "\r" may still become "\r\n"
    CHECK_FALSE(p.failed);
    CHECK(p.requests.empty());
}

TEST_CASE("every split of the stream gives the same requests") {
    const std::string stream = rcpt_request + "\n" + crlf("recipient=z@example.com\nprotocol_state=VRFY\n\n") +
                               "sender=<>\r\nrecipient=q@r\n\n";
    const std::string_view s = stream;
    auto whole = parse(s);
    CHECK_FALSE(whole.failed);
    REQUIRE(whole.requests.size() == 3);
    for (std::size_t i = 0; i <= s.size(); ++i) {
        CAPTURE(i);
        auto p = parse_chunks({s.substr(0, i), s.substr(i)});
        CHECK_FALSE(p.failed);
        CHECK(same(p.requests, whole.requests));
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
    auto p = parse_chunks(bytes);
    CHECK_FALSE(p.failed);
    CHECK(same(p.requests, whole.requests));
}

TEST_CASE("malformed lines fail the parser for good") {
    // Which lines are malformed, and the answers before them:
    // tests/golden/policy (line-without-equals, nul-byte, space-line, ...).
    PolicyParser parser;
    parser.feed("bad line\n");
    CHECK_FALSE(parser.next().has_value());
    REQUIRE(parser.failed());
    const std::string error = parser.error();
    CHECK(error.rfind("policy: ", 0) == 0);
    parser.feed(rcpt_request);
    CHECK_FALSE(parser.next().has_value());
    CHECK(parser.failed());
    CHECK(parser.error() == error);
}

TEST_CASE("every split of a malformed stream fails the same way") {
    const PolicyLimits limits{32, 64};
    for (std::string bad : {"a=b\n\nnoequals\n"s, "a=b\nc\0d=e\n"s, "a=b\n" + std::string(40, 'x') + "\n"s,
                            "a=" + std::string(30, 'x') + "\r\n" + "b=" + std::string(30, 'y') + "\n\n",
                            "a=b\r\n\r\n" + std::string(33, 'z'), "a=" + std::string(31, 'x') + "\r\r\n"}) {
        CAPTURE(bad);
        const std::string_view s = bad;
        auto whole = parse(s, limits);
        REQUIRE(whole.failed);
        for (std::size_t i = 0; i <= s.size(); ++i) {
            CAPTURE(i);
            auto p = parse_chunks({s.substr(0, i), s.substr(i)}, limits);
            CHECK(p.failed);
            CHECK(p.error == whole.error);
            CHECK(same(p.requests, whole.requests));
        }
    }
}

TEST_CASE("the line limit: a line of exactly the limit is kept whole, an endless one fails before its end") {
    // The limit itself, with LF and CRLF, default and configured:
    // tests/golden/policy/line-limit*.in.
    const std::string at_limit = "recipient=" + std::string(8192 - 12, 'a') + "@b";
    REQUIRE(at_limit.size() == 8192);
    auto p = parse(at_limit + "\n\n");
    CHECK_FALSE(p.failed);
    REQUIRE(p.requests.size() == 1);
    CHECK(p.requests[0].recipient.size() == 8182);

    // An endless line fails before its end arrives: the buffer stays bounded.
    PolicyParser parser;
    parser.feed(at_limit);
    CHECK_FALSE(parser.next().has_value());
    CHECK_FALSE(parser.failed());
    parser.feed("\r");  // may still be "\r\n"
    CHECK_FALSE(parser.next().has_value());
    CHECK_FALSE(parser.failed());
    parser.feed("x");
    CHECK_FALSE(parser.next().has_value());
    CHECK(parser.failed());
    CHECK(parser.error() == "policy: line longer than 8192 bytes");

    PolicyParser endless;
    for (int i = 0; i < 100 && !endless.failed(); ++i) {
        endless.feed(std::string(1000, 'x'));
        CHECK_FALSE(endless.next().has_value());
    }
    CHECK(endless.failed());
    CHECK(endless.buffered() <= 10'000);
}

TEST_CASE("random bytes never crash the parser") {
    std::mt19937 rng(7);
    const std::string alphabet = "ab=recipient=\n\n\r\0x"s;
    for (int round = 0; round < 5000; ++round) {
        std::string input;
        const auto length = rng() % 96;
        const bool mostly_grammar = round % 2 == 0;
        for (std::uint32_t i = 0; i < length; ++i) {
            if (mostly_grammar) input.push_back(alphabet[rng() % alphabet.size()]);
            else input.push_back(static_cast<char>(rng() & 0xff));
        }
        const PolicyLimits limits{1 + rng() % 24, 1 + rng() % 64};
        PolicyParser parser(limits);
        std::vector<PolicyRequest> requests;
        std::size_t pos = 0;
        while (pos < input.size()) {
            const std::size_t n = 1 + rng() % 8;
            parser.feed(std::string_view(input).substr(pos, n));
            pos += n;
            while (auto r = parser.next()) {
                CHECK(r->attributes > 0);
                CHECK(r->recipient.size() <= limits.max_line);
                requests.push_back(std::move(*r));
            }
        }
        CHECK(parser.buffered() <= input.size());
        if (parser.failed()) CHECK(parser.error().rfind("policy: ", 0) == 0);
        auto whole = parse(input, limits);
        CHECK(whole.failed == parser.failed());
        CHECK(whole.error == parser.error());
        CHECK(same(whole.requests, requests));
    }
}
