#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>

#include "unit/address.hpp"

using unit::Address;
using unit::AddressOptions;
using unit::Errc;
using unit::normalize_address;
using unit::normalize_domain;

namespace {

AddressOptions delimiter(std::string set) {
    AddressOptions options;
    options.recipient_delimiter = std::move(set);
    return options;
}

AddressOptions no_folding() {
    AddressOptions options;
    options.fold_local_case = false;
    return options;
}

Address parse(std::string_view raw, const AddressOptions& options = {}) {
    auto result = normalize_address(raw, options);
    REQUIRE_MESSAGE(result.ok(), "input: ", std::string(raw), ": ", (result.ok() ? "" : result.error().message));
    return result.value();
}

std::string full(std::string_view raw, const AddressOptions& options = {}) { return parse(raw, options).full(); }

// The reason an address is refused; fails the test when it is accepted.
std::string refusal(std::string_view raw, const AddressOptions& options = {}) {
    auto result = normalize_address(raw, options);
    REQUIRE_MESSAGE(!result.ok(), "accepted: ", std::string(raw));
    CHECK(result.error().code == Errc::Invalid);
    CHECK(result.error().message.starts_with("address: "));
    return result.error().message;
}

bool has_note(const Address& a, std::string_view note) {
    return std::find(a.notes.begin(), a.notes.end(), note) != a.notes.end();
}

void check_unsplit(std::string_view raw, const AddressOptions& options) {
    Address a = parse(raw, options);
    CAPTURE(raw);
    CHECK_FALSE(a.has_extension());
    CHECK(a.base_local == a.local);
    CHECK(a.extension.empty());
    CHECK(a.base() == a.full());
}

}  // namespace

TEST_CASE("a plain address is unchanged and carries no notes") {
    Address a = parse("user@example.com");
    CHECK(a.local == "user");
    CHECK(a.domain == "example.com");
    CHECK(a.full() == "user@example.com");
    CHECK(a.base() == "user@example.com");
    CHECK_FALSE(a.has_extension());
    CHECK(a.notes.empty());
}

TEST_CASE("the example of the design: case, trailing dot and extension") {
    Address a = parse("User+Tag@EXAMPLE.COM.", delimiter("+"));
    CHECK(a.full() == "user+tag@example.com");
    CHECK(a.base() == "user@example.com");
    CHECK(a.local == "user+tag");
    CHECK(a.base_local == "user");
    CHECK(a.extension == "tag");
    CHECK(a.has_extension());
    CHECK(has_note(a, "domain lowercased"));
    CHECK(has_note(a, "trailing dot removed"));
    CHECK(has_note(a, "local part folded to lowercase"));
    CHECK(has_note(a, "extension \"tag\" split off at '+'"));
}

TEST_CASE("angle brackets") {
    Address a = parse("<user@example.com>");
    CHECK(a.full() == "user@example.com");
    CHECK(has_note(a, "angle brackets removed"));
    // Only one enclosing pair, and only an enclosing one.
    refusal("<<user@example.com>>");
    CHECK(refusal("<>") == "address: empty address");
    CHECK(full("<user@example.com") == "\"<user\"@example.com");
    refusal("user@example.com>");
}

TEST_CASE("the split is at the last @") {
    CHECK(full("\"a@b\"@example.com") == "\"a@b\"@example.com");
    // Postfix's internal (unquoted) form of the same address.
    CHECK(full("a@b@example.com") == "\"a@b\"@example.com");
    CHECK(parse("a@b@example.com").domain == "example.com");
}

TEST_CASE("domain normalisation") {
    SUBCASE("lowercase and one trailing dot") {
        Address a = parse("user@Mail.Example.ORG.");
        CHECK(a.domain == "mail.example.org");
        CHECK(has_note(a, "domain lowercased"));
        CHECK(has_note(a, "trailing dot removed"));
        CHECK_FALSE(has_note(a, "local part folded to lowercase"));
    }
    SUBCASE("allowed characters") {
        CHECK(parse("user@under_score-1.example").domain == "under_score-1.example");
        CHECK(parse("user@localhost").domain == "localhost");
        CHECK(parse("user@123.example").domain == "123.example");
    }
    SUBCASE("label and name length limits") {
        std::string label63(63, 'a');
        CHECK(parse("u@" + label63 + ".example").domain == label63 + ".example");
        CHECK(refusal("u@" + label63 + "a.example") == "address: invalid domain: label longer than 63 bytes");
        std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
        REQUIRE(name253.size() == 253);
        CHECK(parse("u@" + name253).domain == name253);
        CHECK(parse("u@" + name253 + ".").domain == name253);
        CHECK(refusal("u@" + name253 + "b") == "address: invalid domain: longer than 253 bytes");
    }
    SUBCASE("empty labels and bad characters") {
        CHECK(refusal("user@example.com..") == "address: invalid domain: empty label");
        CHECK(refusal("user@.example.com") == "address: invalid domain: empty label");
        CHECK(refusal("user@example..com") == "address: invalid domain: empty label");
        CHECK(refusal("user@.") == "address: invalid domain: empty label");
        CHECK(refusal("user@exa mple.com") == "address: invalid domain: character not allowed");
        CHECK(refusal("user@exa!mple.com") == "address: invalid domain: character not allowed");
        CHECK(refusal("user@example.com/") == "address: invalid domain: character not allowed");
        CHECK(refusal("user@[1.2.3.4") == "address: invalid domain: character not allowed");
    }
}

TEST_CASE("domain literals are kept, lowercased") {
    CHECK(parse("user@[192.0.2.1]").domain == "[192.0.2.1]");
    Address v6 = parse("user@[IPv6:2001:DB8::1]");
    CHECK(v6.domain == "[ipv6:2001:db8::1]");
    CHECK(has_note(v6, "domain lowercased"));
    CHECK(parse("user@[x-tag:Some-Thing]").domain == "[x-tag:some-thing]");
    CHECK(refusal("user@[300.1.2.3]") == "address: invalid domain: malformed address literal");
    CHECK(refusal("user@[ipv6:zz::1]") == "address: invalid domain: malformed address literal");
    CHECK(refusal("user@[]") == "address: invalid domain: malformed address literal");
    CHECK(refusal("user@[1.2.3.4\\]") == "address: invalid domain: malformed address literal");
    CHECK(refusal("user@[1.2 .3.4]") == "address: invalid domain: malformed address literal");
}

TEST_CASE("U-labels become A-labels") {
    Address a = parse("user@bücher.example");
    CHECK(a.domain == "xn--bcher-kva.example");
    CHECK(a.full() == full("user@xn--bcher-kva.example"));
    CHECK(has_note(a, "U-label domain converted to xn--bcher-kva.example"));
    CHECK(full("user@BÜCHER.EXAMPLE.") == "user@xn--bcher-kva.example");
    // NFC: 'u' followed by a combining diaeresis is the same name.
    CHECK(full("user@bu\xcc\x88"
               "cher.example") == "user@xn--bcher-kva.example");
    // Non-transitional: 'ß' is kept, not mapped to "ss".
    CHECK(parse("user@faß.de").domain == "xn--fa-hia.de");
    CHECK(parse("user@例え.テスト").domain == "xn--r8jz45g.xn--zckzah");
    CHECK(normalize_domain("bücher.example").value() == "xn--bcher-kva.example");
}

TEST_CASE("libidn2 refusing a domain is a malformed address") {
    std::string why = refusal("user@\xe2\x98\x95.example");  // U+2615 HOT BEVERAGE, DISALLOWED in IDNA2008
    CHECK(why.starts_with("address: invalid domain: "));
    refusal("user@bücher..example");
    refusal("user@.bücher.example");
    refusal("user@bücher.example..");
    refusal("user@bü!cher.example");
    refusal("user@[bücher]");
}

TEST_CASE("quoted local parts") {
    SUBCASE("unquoted when the content is a dot-atom") {
        Address a = parse("\"john.doe\"@example.com");
        CHECK(a.local == "john.doe");
        CHECK(a.full() == full("john.doe@example.com"));
        CHECK(has_note(a, "quoted local part unquoted"));
        CHECK(full("\"\\j\\o\\e\"@example.com") == "joe@example.com");
        CHECK(full("\"o'hara+x\"@example.com") == "o'hara+x@example.com");
    }
    SUBCASE("kept quoted when it is not") {
        Address a = parse("\"john doe\"@example.com");
        CHECK(a.local == "\"john doe\"");
        CHECK(a.full() == "\"john doe\"@example.com");
        CHECK(a.notes.empty());
        CHECK(full("\"john..doe\"@example.com") == "\"john..doe\"@example.com");
        CHECK(full("\".john\"@example.com") == "\".john\"@example.com");
        CHECK(full("\"john.\"@example.com") == "\"john.\"@example.com");
        CHECK(full("\"a,b\"@example.com") == "\"a,b\"@example.com");
    }
    SUBCASE("canonical escaping") {
        CHECK(full("\"a\\\"b\"@example.com") == "\"a\\\"b\"@example.com");
        CHECK(full("\"a\\\\b\"@example.com") == "\"a\\\\b\"@example.com");
        Address a = parse("\"a\\ b\"@example.com");
        CHECK(a.local == "\"a b\"");
        CHECK(has_note(a, "quoted local part re-escaped"));
    }
    SUBCASE("Postfix's internal form is the same key") {
        Address a = parse("john doe@example.com");
        CHECK(a.full() == full("\"john doe\"@example.com"));
        CHECK(has_note(a, "local part quoted (not a dot-atom)"));
        CHECK(full("a\"b@example.com") == full("\"a\\\"b\"@example.com"));
        CHECK(full("john..doe@example.com") == "\"john..doe\"@example.com");
    }
    SUBCASE("not one well-formed quoted string: taken literally") {
        CHECK(full("\"abc@example.com") == "\"\\\"abc\"@example.com");
        CHECK(full("\"a\"b\"@example.com") == "\"\\\"a\\\"b\\\"\"@example.com");
        CHECK(full("\"a\\\"@example.com") == "\"\\\"a\\\\\\\"\"@example.com");
    }
    SUBCASE("folded after unquoting") {
        CHECK(full("\"JOHN.Doe\"@example.com") == "john.doe@example.com");
        CHECK(full("\"JOHN Doe\"@example.com") == "\"john doe\"@example.com");
    }
    SUBCASE("UTF-8 local parts are atoms") {
        CHECK(full("\"jörg\"@example.com") == "jörg@example.com");
        CHECK(full("jörg@example.com") == "jörg@example.com");
    }
    SUBCASE("an empty quoted string is an empty local part") {
        CHECK(refusal("\"\"@example.com") == "address: empty local part");
    }
}

TEST_CASE("local part case folding") {
    SUBCASE("on by default, ASCII only") {
        Address a = parse("JÖRG.Smith@example.com");
        CHECK(a.local == "jÖrg.smith");
        CHECK(has_note(a, "local part folded to lowercase"));
    }
    SUBCASE("off keeps the case, the domain is still lowercased") {
        Address a = parse("User+Tag@EXAMPLE.com", no_folding());
        CHECK(a.full() == "User+Tag@example.com");
        CHECK_FALSE(has_note(a, "local part folded to lowercase"));
        AddressOptions options = no_folding();
        options.recipient_delimiter = "+";
        Address b = parse("User+Tag@EXAMPLE.com", options);
        CHECK(b.base() == "User@example.com");
        CHECK(b.extension == "Tag");
    }
    SUBCASE("no note when nothing changed") {
        CHECK_FALSE(has_note(parse("user@example.com"), "local part folded to lowercase"));
    }
}

TEST_CASE("recipient delimiter: Postfix split_addr rules") {
    const AddressOptions plus_minus = delimiter("+-");

    SUBCASE("any character of a multi-character set splits") {
        Address a = parse("a-b@x", plus_minus);
        CHECK(a.base() == "a@x");
        CHECK(a.extension == "b");
        CHECK(has_note(a, "extension \"b\" split off at '-'"));
        Address b = parse("a+b@x", plus_minus);
        CHECK(b.base() == "a@x");
        CHECK(b.extension == "b");
        CHECK(b.full() == "a+b@x");
    }
    SUBCASE("at the first delimiter character") {
        Address a = parse("a+b+c@x", delimiter("+"));
        CHECK(a.base_local == "a");
        CHECK(a.extension == "b+c");
        Address b = parse("a-b+c@x", plus_minus);
        CHECK(b.base_local == "a");
        CHECK(b.extension == "b+c");
    }
    SUBCASE("owner-* and *-request are kept whole when '-' is a delimiter") {
        check_unsplit("owner-list@x", plus_minus);
        check_unsplit("list-request@x", plus_minus);
        check_unsplit("owner-list+tag@x", plus_minus);
        check_unsplit("Owner-List@x", plus_minus);
        check_unsplit("LIST-REQUEST@x", no_folding());
        AddressOptions options = no_folding();
        options.recipient_delimiter = "-";
        check_unsplit("OWNER-list@x", options);
        check_unsplit("list-REQUEST@x", options);
        check_unsplit("owner-@x", options);
    }
    SUBCASE("the suffix rule looks at the whole local part, as Postfix does") {
        Address a = parse("list-request+tag@x", plus_minus);
        CHECK(a.base_local == "list");
        CHECK(a.extension == "request+tag");
    }
    SUBCASE("but split normally when '-' is not a delimiter") {
        Address a = parse("owner-list+tag@x", delimiter("+"));
        CHECK(a.base_local == "owner-list");
        CHECK(a.extension == "tag");
        CHECK(parse("list-request+tag@x", delimiter("+")).base_local == "list-request");
    }
    SUBCASE("-request needs something before it") {
        // Postfix: strlen(local) - 8 > 0; "-request" alone is not protected,
        // but a delimiter in first position never splits.
        check_unsplit("-request@x", delimiter("-"));
        Address a = parse("x-request-y@x", delimiter("-"));
        CHECK(a.base_local == "x");
        CHECK(a.extension == "request-y");
    }
    SUBCASE("postmaster and MAILER-DAEMON are compared to the whole local part") {
        check_unsplit("postmaster@x", delimiter("s"));
        check_unsplit("PostMaster@x", delimiter("s"));
        check_unsplit("mailer-daemon@x", delimiter("-"));
        AddressOptions options = no_folding();
        options.recipient_delimiter = "-";
        check_unsplit("MAILER-DAEMON@x", options);
        check_unsplit("double-bounce@x", delimiter("-"));
        Address a = parse("postmaster+x@x", plus_minus);
        CHECK(a.base() == "postmaster@x");
        CHECK(a.extension == "x");
        CHECK(parse("mailer-daemon+x@x", delimiter("+")).base_local == "mailer-daemon");
    }
    SUBCASE("a delimiter in first position does not split") {
        check_unsplit("+tag@x", plus_minus);
        check_unsplit("-tag@x", plus_minus);
        check_unsplit("+@x", plus_minus);
    }
    SUBCASE("an empty extension still counts") {
        Address a = parse("user+@x", delimiter("+"));
        CHECK(a.local == "user+");
        CHECK(a.base_local == "user");
        CHECK(a.extension.empty());
        CHECK(a.has_extension());
        CHECK(a.base() == "user@x");
        CHECK(has_note(a, "extension \"\" split off at '+'"));
    }
    SUBCASE("no delimiter, or none in the address") {
        check_unsplit("user+tag@x", AddressOptions{});
        check_unsplit("user@x", plus_minus);
    }
    SUBCASE("quoted local parts split on their content") {
        Address a = parse("\"john doe+tag\"@x", delimiter("+"));
        CHECK(a.local == "\"john doe+tag\"");
        CHECK(a.base_local == "\"john doe\"");
        CHECK(a.extension == "tag");
        CHECK(a.has_extension());
        Address b = parse("\"john+a b\"@x", delimiter("+"));
        CHECK(b.base_local == "john");
        CHECK(b.extension == "a b");
    }
    SUBCASE("non-ASCII delimiter bytes never cut a character") {
        Address a = parse("jöe+x@x", delimiter("\xc3\xb6+"));
        CHECK(a.base_local == "jöe");
        CHECK(a.extension == "x");
    }
}

TEST_CASE("malformed addresses are refused with a reason") {
    CHECK(refusal("") == "address: empty address");
    CHECK(refusal("user.example.com") == "address: no @ in address");
    CHECK(refusal("@example.com") == "address: empty local part");
    CHECK(refusal("user@") == "address: empty domain");
    CHECK(refusal("@") == "address: empty local part");
    CHECK(refusal("user@exa mple.com").starts_with("address: invalid domain: "));

    SUBCASE("length") {
        std::string local(320 - 12, 'a');
        std::string longest = local + "@example.com";
        REQUIRE(longest.size() == unit::max_address_length);
        CHECK(full(longest) == longest);
        CHECK(full("<" + longest + ">") == longest);
        CHECK(refusal("a" + longest) == "address: address longer than 320 bytes");
        CHECK(refusal(std::string(100000, 'a')) == "address: address longer than 320 bytes");
        // Within the limit as given, past it once quoted or converted to A-labels.
        CHECK(refusal(std::string(306, 'a') + " b@example.com") ==
              "address: address longer than 320 bytes once normalised");
        CHECK(refusal(std::string(304, 'a') + "@bücher.example") ==
              "address: address longer than 320 bytes once normalised");
    }
    SUBCASE("control characters, in either part") {
        for (std::string bad : {"us\ter@example.com", "user@exam\nple.com", "user\r@example.com",
                                "user@example.com\x7f", "\x01user@example.com", "user@example.com\x1f"}) {
            CAPTURE(bad);
            CHECK(refusal(bad) == "address: control character in address");
        }
        CHECK(refusal(std::string("us\0er@example.com", 17)) == "address: control character in address");
    }
    SUBCASE("invalid UTF-8, in either part") {
        for (std::string bad :
             {"us\xffr@example.com", "user@ex\xfe.com", "\xc0\xafuser@example.com", "user@\xe0\x80\xaf.example",
              "\xed\xa0\x80@example.com", "user\xc3@example.com", "user@example.com\xe2\x82",
              "\xf4\x90\x80\x80@example.com", "\x80@example.com", "\xf8\x88\x80\x80\x80@example.com"}) {
            CAPTURE(bad);
            CHECK(refusal(bad) == "address: invalid UTF-8 in address");
        }
        // The limits themselves are valid.
        CHECK(full("\xf4\x8f\xbf\xbf@example.com") == "\xf4\x8f\xbf\xbf@example.com");
        CHECK(full("\xed\x9f\xbf@example.com") == "\xed\x9f\xbf@example.com");
    }
}

TEST_CASE("normalize_domain") {
    CHECK(normalize_domain("Example.COM.").value() == "example.com");
    CHECK(normalize_domain("[IPv6:::1]").value() == "[ipv6:::1]");
    auto refused = [](std::string_view raw) {
        auto r = normalize_domain(raw);
        REQUIRE_MESSAGE(!r.ok(), "accepted: ", std::string(raw));
        CHECK(r.error().code == Errc::Invalid);
        return r.error().message;
    };
    CHECK(refused("") == "domain: empty domain");
    CHECK(refused("@example.com") == "domain: invalid domain: character not allowed");
    CHECK(refused("user@example.com") == "domain: invalid domain: character not allowed");
    CHECK(refused("example..com") == "domain: invalid domain: empty label");
    CHECK(refused(".") == "domain: invalid domain: empty label");
    CHECK(refused("exa\tmple.com") == "domain: control character in domain");
    CHECK(refused("ex\xff.com") == "domain: invalid UTF-8 in domain");
    CHECK(refused(std::string(400, 'a')) == "domain: domain longer than 320 bytes");
    CHECK(refused("\xe2\x98\x95.example").starts_with("domain: invalid domain: "));
}

TEST_CASE("normalisation is idempotent") {
    const AddressOptions plus = delimiter("+");
    for (std::string raw : {"User+Tag@EXAMPLE.COM.", "\"john doe\"@example.com", "john doe@x", "\"a\\\"b\"@x",
                            "user@bücher.example", "user@[IPv6:2001:DB8::1]", "\"abc@x", "a@b@c", "\"a.\"@x"}) {
        Address once = parse(raw, plus);
        Address twice = parse(once.full(), plus);
        CAPTURE(raw);
        CHECK(twice.full() == once.full());
        CHECK(twice.base() == once.base());
        CHECK(twice.extension == once.extension);
    }
}

TEST_CASE("random input never throws and never yields a bad key") {
    std::mt19937 rng(20240601);
    // Half of the cases draw from the bytes that matter to the parser.
    const std::string interesting = "abcdefghXYZ09@@..\"\"\\<>[]:+-_ !\x7f\t\xc3\xa9\xe2\x98\x95\xff\x80";
    const AddressOptions options = delimiter("+-");
    int accepted = 0;
    for (int i = 0; i < 5000; ++i) {
        std::size_t len = std::uniform_int_distribution<std::size_t>(0, i % 10 == 0 ? 400 : 20)(rng);
        std::string raw;
        for (std::size_t k = 0; k < len; ++k) {
            if (i % 2 == 0) {
                raw += static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
            } else {
                raw += interesting[std::uniform_int_distribution<std::size_t>(0, interesting.size() - 1)(rng)];
            }
        }
        if (i % 3 != 0) raw += "@example.com";
        unit::Result<Address> result = normalize_address(raw, options);
        REQUIRE_NOTHROW(result = normalize_address(raw, options));
        REQUIRE_NOTHROW((void)normalize_domain(raw));
        if (!result.ok()) {
            CHECK(result.error().code == Errc::Invalid);
            CHECK(result.error().message.starts_with("address: "));
            continue;
        }
        ++accepted;
        const Address& a = result.value();
        CAPTURE(raw);
        CHECK(!a.local.empty());
        CHECK(!a.domain.empty());
        CHECK(a.base_local.size() <= a.local.size() + 2);  // + quotes when the base alone needs them
        CHECK(std::none_of(a.domain.begin(), a.domain.end(),
                           [](char c) { return (c >= 'A' && c <= 'Z') || static_cast<unsigned char>(c) >= 0x80; }));
        auto again = normalize_address(a.full(), options);
        REQUIRE(again.ok());
        CHECK(again.value().full() == a.full());
    }
    CHECK(accepted > 100);
}

TEST_CASE("an extension is recorded even when the base needs quotes") {
    unit::AddressOptions options{true, "+"};
    auto a = unit::normalize_address("a.+b@x.example", options);
    REQUIRE(a.ok());
    CHECK(a->has_extension());
    CHECK(a->base() == "\"a.\"@x.example");
    CHECK(a->extension == "b");
}
