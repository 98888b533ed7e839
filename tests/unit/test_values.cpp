// Tests for values.hpp: which transports, nexthops and alias targets may
// reach Postfix.
#include <doctest/doctest.h>

#include "unit/values.hpp"

using unit::check_alias_target;
using unit::check_nexthop;
using unit::check_transport;

TEST_CASE("nexthops in Postfix's syntax are accepted") {
    for (const char* good :
         {"unit12.my.com", "unit12.my.com:2525", "[unit12.my.com]", "[unit12.my.com]:2525", "[10.0.0.12]",
          "[10.0.0.12]:25", "10.0.0.12", "[2001:db8::1]", "[2001:db8::1]:2525", "[ipv6:2001:db8::1]:24",
          "inet:[10.0.0.1]:24", "unix:/var/run/lmtp.sock", "[mx]:smtp", "mail_host-1.example"}) {
        CAPTURE(good);
        CHECK(check_nexthop(good));
    }
}

TEST_CASE("nexthops that would change Postfix's answer are refused") {
    for (std::string bad :
         {std::string("a b"), std::string("a\nb"), std::string("a\0b", 3), std::string("a,b"), std::string(""),
          std::string("[10.0.0.1"), std::string("[10.0.0.1]x"), std::string("host:"), std::string("host:0"),
          std::string("host:65536"), std::string("2001:db8::1"), std::string("unix:relative"), std::string("a..b"),
          std::string(256, 'a'), std::string("[a b]:25"), std::string("host\t"), std::string(".host")}) {
        CAPTURE(bad);
        auto r = check_nexthop(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == unit::Errc::Invalid);
        CHECK(r.error().message.find('\n') == std::string::npos);
        CHECK(r.error().message.find('\0') == std::string::npos);
    }
}

TEST_CASE("transports: a master.cf name, not a special service or the hold transport") {
    for (const char* good : {"smtp", "lmtp", "relay", "unit-smtp", "my_lmtp.2"}) CHECK(check_transport(good));
    for (const char* bad : {"error", "discard", "retry", "unithold", "", "a b", "smtp:", "a,b", "x\n"}) {
        CAPTURE(bad);
        CHECK_FALSE(check_transport(bad));
    }
    CHECK(check_transport("unithold", "hold2"));
    CHECK_FALSE(check_transport("hold2", "hold2"));
    CHECK_FALSE(check_transport(std::string(65, 't')));
}

TEST_CASE("an alias target is exactly one address") {
    for (const char* good : {"alice@example.com", "Bob.Smith+tag@Other.ORG", "x@y"}) CHECK(check_alias_target(good));
    for (std::string bad :
         {std::string("a@x,b@y"), std::string("a@x b@y"), std::string("a@x\nb"), std::string("a@b@c"),
          std::string("@x"), std::string("a@"), std::string("ab"), std::string("\"a b\"@x"), std::string("<a@x>"),
          std::string("a@x;"), std::string("a\0@x", 4), std::string("a(c)@x"), std::string(400, 'a') + "@x"}) {
        CAPTURE(bad);
        CHECK_FALSE(check_alias_target(bad));
    }
}
