// unitmilter's trusted_networks: parsing and matching.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "milter/networks.hpp"

using namespace unit::milter;

namespace {

Networks parse_ok(std::string_view text) {
    auto n = Networks::parse(text);
    REQUIRE_MESSAGE(n.ok(), n.error().message);
    return *n;
}

std::string parse_error(std::string_view text) {
    auto n = Networks::parse(text);
    return n.ok() ? "(no error)" : n.error().message;
}

}  // namespace

TEST_CASE("IPv4 networks and hosts, comma and space separated") {
    auto n = parse_ok("10.0.0.0/8, 192.0.2.7 ,198.51.100.0/24\t203.0.113.128/25");
    CHECK(n.networks().size() == 4);
    CHECK(n.contains("10.1.2.3"));
    CHECK(n.contains("192.0.2.7"));
    CHECK_FALSE(n.contains("192.0.2.8"));
    CHECK(n.contains("198.51.100.255"));
    CHECK_FALSE(n.contains("198.51.101.0"));
    CHECK(n.contains("203.0.113.200"));
    CHECK_FALSE(n.contains("203.0.113.127"));
    CHECK_FALSE(n.contains("11.0.0.1"));
    CHECK(n.to_string() == "10.0.0.0/8, 192.0.2.7/32, 198.51.100.0/24, 203.0.113.128/25");
}

TEST_CASE("IPv6 networks, with or without brackets") {
    auto n = parse_ok("2001:db8::/32 [::1]/128 [fe80::1]");
    CHECK(n.contains("2001:db8:1::25"));
    CHECK_FALSE(n.contains("2001:db9::1"));
    CHECK(n.contains("::1"));
    CHECK(n.contains("IPv6:::1"));
    CHECK(n.contains("[fe80::1]"));
    CHECK_FALSE(n.contains("fe80::2"));
    CHECK_FALSE(n.contains("127.0.0.1"));
}

TEST_CASE("odd prefix lengths mask bits inside a byte") {
    auto n = parse_ok("192.0.2.64/27, 2001:db8:8000::/33");
    CHECK(n.contains("192.0.2.64"));
    CHECK(n.contains("192.0.2.95"));
    CHECK_FALSE(n.contains("192.0.2.96"));
    CHECK_FALSE(n.contains("192.0.2.63"));
    CHECK(n.contains("2001:db8:ffff::1"));
    CHECK_FALSE(n.contains("2001:db8:7fff::1"));
}

TEST_CASE("/0 matches the whole family only") {
    auto n = parse_ok("0.0.0.0/0");
    CHECK(n.contains("203.0.113.1"));
    CHECK_FALSE(n.contains("2001:db8::1"));
    auto six = parse_ok("::/0");
    CHECK(six.contains("2001:db8::1"));
    CHECK_FALSE(six.contains("203.0.113.1"));
}

TEST_CASE("IPv4-mapped IPv6 clients match IPv4 networks") {
    auto n = parse_ok("10.0.0.0/8");
    CHECK(n.contains("::ffff:10.9.8.7"));
    CHECK_FALSE(n.contains("::ffff:11.9.8.7"));
    auto mapped = parse_ok("::ffff:192.0.2.0/120");
    CHECK(mapped.contains("192.0.2.9"));
    CHECK(mapped.networks()[0].prefix == 24);
}

TEST_CASE("empty text: nothing is trusted") {
    auto n = parse_ok("");
    CHECK(n.empty());
    CHECK_FALSE(n.contains("127.0.0.1"));
    CHECK(parse_ok(" , ,\t").empty());
}

TEST_CASE("bad entries are refused, naming the entry") {
    CHECK(parse_error("10.0.0.0/33").find("\"10.0.0.0/33\": bad prefix length") != std::string::npos);
    CHECK(parse_error("2001:db8::/129").find("bad prefix length") != std::string::npos);
    CHECK(parse_error("10.0.0.0/").find("bad prefix length") != std::string::npos);
    CHECK(parse_error("10.0.0.0/-1").find("bad prefix length") != std::string::npos);
    CHECK(parse_error("10.0.0.0/8x").find("bad prefix length") != std::string::npos);
    CHECK(parse_error("10.0.0/8").find("not an IPv4 or IPv6 address") != std::string::npos);
    CHECK(parse_error("mx.example.com").find("not an IPv4 or IPv6 address") != std::string::npos);
    CHECK(parse_error("10.0.0.0/8 300.1.1.1").find("\"300.1.1.1\"") != std::string::npos);
    CHECK(parse_error("1.2.3.4:25").find("not an IPv4 or IPv6 address") != std::string::npos);
    CHECK(parse_error("::ffff:1.2.3.0/64").find("shorter than 96") != std::string::npos);
}

TEST_CASE("host bits beyond the prefix are refused, with the likely network") {
    CHECK(parse_error("10.0.0.1/8") ==
          "trusted_networks: \"10.0.0.1/8\": host bits set beyond /8 (perhaps 10.0.0.0/8)");
    CHECK(parse_error("2001:db8::1/64").find("perhaps 2001:db8::/64") != std::string::npos);
}

TEST_CASE("client addresses that are not addresses match nothing") {
    auto n = parse_ok("0.0.0.0/0 ::/0");
    CHECK_FALSE(n.contains(""));
    CHECK_FALSE(n.contains("unknown"));
    CHECK_FALSE(n.contains("localhost"));
    CHECK_FALSE(n.contains("1.2.3.4.5"));
    CHECK_FALSE(n.contains(std::string(200, '1')));
    CHECK_FALSE(n.contains("[]"));
}

TEST_CASE("addresses from libmilter's sockaddr") {
    auto n = parse_ok("192.0.2.0/24, 2001:db8::/32");
    sockaddr_in in{};
    in.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, "192.0.2.10", &in.sin_addr) == 1);
    auto a = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in));
    REQUIRE(a);
    CHECK(n.contains(*a));
    CHECK(a->to_string() == "192.0.2.10");

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    REQUIRE(inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr) == 1);
    auto b = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
    REQUIRE(b);
    CHECK(n.contains(*b));
    CHECK(b->to_string() == "2001:db8::5");

    REQUIRE(inet_pton(AF_INET6, "::ffff:192.0.2.11", &in6.sin6_addr) == 1);
    auto c = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
    REQUIRE(c);
    CHECK(c->family == AF_INET);
    CHECK(n.contains(*c));

    sockaddr un{};
    un.sa_family = AF_UNIX;
    CHECK_FALSE(IpAddress::from_sockaddr(&un));
    CHECK_FALSE(IpAddress::from_sockaddr(nullptr));
}

TEST_CASE("networks wider than private ranges are named: /0 and anything shorter than /8 (IPv4) or /7 (IPv6)") {
    CHECK(parse_ok("0.0.0.0/0").too_wide() == std::vector<std::string>{"0.0.0.0/0"});
    CHECK(parse_ok("::/0").too_wide() == std::vector<std::string>{"::/0"});
    CHECK(parse_ok("10.0.0.0/8, 0.0.0.0/0 2000::/3 ::/0 64.0.0.0/2").too_wide() ==
          std::vector<std::string>{"0.0.0.0/0", "2000::/3", "::/0", "64.0.0.0/2"});
    CHECK(parse_ok("128.0.0.0/1").too_wide() == std::vector<std::string>{"128.0.0.0/1"});
    // The widest private ranges, and anything narrower, are not.
    CHECK(parse_ok("10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7 2001:db8::/32 127.0.0.1").too_wide().empty());
    CHECK(parse_ok("").too_wide().empty());
    // An IPv4-mapped network counts as IPv4.
    CHECK(parse_ok("::ffff:0.0.0.0/96").too_wide() == std::vector<std::string>{"0.0.0.0/0"});
    CHECK(parse_ok("::ffff:10.0.0.0/104").too_wide().empty());
}

namespace {

sockaddr_in v4(const char* address, std::uint16_t port) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, address, &in.sin_addr) == 1);
    return in;
}

}  // namespace

TEST_CASE("Postfix's stand-in for mail without an SMTP client (port 0) is never trusted") {
    auto loopback = parse_ok("127.0.0.0/8, ::1, 192.0.2.0/24");
    // sendmail(1) through non_smtpd_milters: localhost, 127.0.0.1, port 0.
    auto local = v4("127.0.0.1", 0);
    auto peer = Peer::from_connect(reinterpret_cast<const sockaddr*>(&local), "127.0.0.1");
    CHECK(peer.local_submission);
    REQUIRE(peer.address);
    CHECK(peer.address->to_string() == "127.0.0.1");
    CHECK_FALSE(peer.trusted_by(loopback));
    // The same address over SMTP is trusted.
    auto smtp = v4("127.0.0.1", 40312);
    auto client = Peer::from_connect(reinterpret_cast<const sockaddr*>(&smtp), "127.0.0.1");
    CHECK_FALSE(client.local_submission);
    CHECK(client.trusted_by(loopback));
    // IPv6 first in inet_protocols: ::1, port 0.
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    REQUIRE(inet_pton(AF_INET6, "::1", &in6.sin6_addr) == 1);
    auto six = Peer::from_connect(reinterpret_cast<const sockaddr*>(&in6), "::1");
    CHECK(six.local_submission);
    CHECK_FALSE(six.trusted_by(loopback));
    in6.sin6_port = htons(25);
    CHECK(Peer::from_connect(reinterpret_cast<const sockaddr*>(&in6), "::1").trusted_by(loopback));
    // No address in the callback: the {client_addr} macro, no port to judge.
    auto macro = Peer::from_connect(nullptr, "192.0.2.5");
    CHECK_FALSE(macro.local_submission);
    CHECK(macro.trusted_by(loopback));
    CHECK_FALSE(Peer::from_connect(nullptr, "").trusted_by(loopback));
    sockaddr un{};
    un.sa_family = AF_UNIX;
    CHECK(Peer::from_connect(&un, "192.0.2.5").trusted_by(loopback));
    CHECK_FALSE(Peer::from_connect(&un, "unknown").address);
}
