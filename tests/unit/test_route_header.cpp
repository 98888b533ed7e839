// unitmilter's routing headers: parsing, formatting, the per-message decision.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "milter/route_header.hpp"

using namespace unit::milter;
using Kind = HeaderEdit::Kind;

TEST_CASE("parse a well-formed route") {
    auto r = parse_route("hop=3; gen=42; units=u1,u2; by=mx1.example.com");
    CHECK(r.hop == 3);
    CHECK(r.gen == 42);
    CHECK(r.units == std::vector<std::string>{"u1", "u2"});
    CHECK(r.by == "mx1.example.com");
}

TEST_CASE("parse tolerates spaces, folding, case and unknown parameters") {
    auto r = parse_route(" HOP = 2 ;\r\n\tGen=7;  units = u1 ,\r\n u2, ;x=y; by= mx ;");
    CHECK(r.hop == 2);
    CHECK(r.gen == 7);
    CHECK(r.units == std::vector<std::string>{"u1", "u2"});
    CHECK(r.by == "mx");
    auto leading = parse_route(" hop=1");
    CHECK(leading.hop == 1);
}

TEST_CASE("a missing or garbage hop is no hop") {
    CHECK_FALSE(parse_route("").hop);
    CHECK_FALSE(parse_route("gen=1; units=u1").hop);
    CHECK_FALSE(parse_route("hop=").hop);
    CHECK_FALSE(parse_route("hop=-1").hop);
    CHECK_FALSE(parse_route("hop=3x").hop);
    CHECK_FALSE(parse_route("hop=0x10").hop);
    CHECK_FALSE(parse_route("hop=1 2").hop);
    CHECK_FALSE(parse_route("hop 3").hop);
    CHECK_FALSE(parse_route(std::string("hop=\0"
                                        "3",
                                        6))
                    .hop);
    CHECK_FALSE(parse_route(";;;===;;").hop);
}

TEST_CASE("a huge hop saturates instead of wrapping") {
    CHECK(parse_route("hop=99999999999999999999999999999").hop == max_hop_value);
    CHECK(parse_route("hop=007").hop == 7);
}

TEST_CASE("several hop parameters: the highest counts") { CHECK(parse_route("hop=2; hop=5; hop=x").hop == 5); }

TEST_CASE("units outside the unit-name charset are dropped when parsing") {
    auto r = parse_route("units=u1,user@example.com,a b,<x>,u-2_b.c");
    CHECK(r.units == std::vector<std::string>{"u1", "u-2_b.c"});
}

TEST_CASE("format writes hop, generation, sorted distinct units and host") {
    Route r{4, 17, {"u2", "u1", "u2"}, "mx1.example.com"};
    CHECK(format_route(r) == "hop=4; gen=17; units=u1,u2; by=mx1.example.com");
    CHECK(format_route(Route{}) == "hop=0; gen=0; units=; by=unknown");
}

TEST_CASE("format sanitises every value") {
    Route r{1, 2, {"u1\r\nBcc: x@y", "bad unit", "user@example.com", "\x01\x7f"}, "mx\r\n.evil;host by=x"};
    std::string v = format_route(r);
    CHECK(v.find('\r') == std::string::npos);
    CHECK(v.find('@') == std::string::npos);
    CHECK(std::all_of(v.begin(), v.end(), [](char c) { return c == '\n' || c == '\t' || (c >= ' ' && c < 0x7f); }));
    // No line break but folding (LF then TAB).
    for (std::size_t i = v.find('\n'); i != std::string::npos; i = v.find('\n', i + 1)) CHECK(v[i + 1] == '\t');
    auto back = parse_route(v);
    CHECK(back.hop == 1);
    CHECK(back.units.size() == 4);
    for (const auto& u : back.units) CHECK(std::all_of(u.begin(), u.end(), is_unit_name_char));
    CHECK(back.by == "mx__.evil_host_by_x");
}

TEST_CASE("a long unit list is folded and reads back whole") {
    Route r{1, 9, {}, "mx.example.com"};
    for (int i = 0; i < 60; ++i) r.units.push_back("unit" + std::to_string(100 + i));
    std::string v = format_route(r);
    CHECK(v.find("\n\t") != std::string::npos);
    std::size_t line = 0, longest = 0;
    for (char c : v) {
        line = c == '\n' ? 0 : line + 1;
        longest = std::max(longest, line);
    }
    CHECK(longest < 80);
    auto back = parse_route(v);
    CHECK(back.units.size() == 60);
    CHECK(back.by == "mx.example.com");
    CHECK(back.gen == 9);
}

TEST_CASE("format then parse is faithful") {
    Route r{5, 123456789012, {"a", "b.c", "d-e"}, "[192.0.2.1]"};
    CHECK(parse_route(format_route(r)) == r);
}

TEST_CASE("has_prefix compares without case") {
    CHECK(has_prefix("X-Unit-Route", "X-Unit-"));
    CHECK(has_prefix("x-unit-route", "X-Unit-"));
    CHECK(has_prefix("X-UNIT-", "X-Unit-"));
    CHECK_FALSE(has_prefix("X-Unit", "X-Unit-"));
    CHECK_FALSE(has_prefix("X-Units-", "X-Unit-"));
}

namespace {

HeaderScan scan_of(std::initializer_list<std::pair<const char*, const char*>> headers) {
    HeaderScan scan("X-Unit-", 10);
    for (const auto& [name, value] : headers) scan.add(name, value);
    return scan;
}

}  // namespace

TEST_CASE("the scan counts every prefixed header by name, without case") {
    auto scan = scan_of({{"Received", "from x"},
                         {"X-Unit-Route", "hop=2"},
                         {"Subject", "hi"},
                         {"x-unit-route", "hop=4; gen=1"},
                         {"X-Unit-Other", "v"},
                         {"X-UNIT-OTHER", "w"},
                         {"X-Unitary", "not ours"}});
    REQUIRE(scan.prefixed().size() == 2);
    CHECK(scan.prefixed()[0].name == "X-Unit-Route");
    CHECK(scan.prefixed()[0].count == 2);
    CHECK(scan.prefixed()[1].name == "X-Unit-Other");
    CHECK(scan.prefixed()[1].count == 2);
    CHECK(scan.route_count() == 2);
    CHECK(scan.incoming_hop() == 4);
    scan.clear();
    CHECK(scan.prefixed().empty());
    CHECK(scan.route_count() == 0);
    CHECK_FALSE(scan.incoming_hop());
}

TEST_CASE("untrusted: every prefixed header is deleted, highest index first, and the route added") {
    auto scan = scan_of({{"X-Unit-Route", "hop=5"}, {"X-Unit-Route", "hop=9"}, {"X-Unit-Note", "forged"}});
    auto verdict = check_headers(scan, false, 6);
    CHECK_FALSE(verdict.refuse);  // a forged hop never refuses
    CHECK(verdict.incoming == 0);
    CHECK(verdict.outgoing == 1);
    auto edits = plan_headers(scan, false, "hop=1; gen=3; units=u1; by=mx");
    std::vector<HeaderEdit> want{
        {Kind::Delete, "X-Unit-Route", 2, ""},
        {Kind::Delete, "X-Unit-Route", 1, ""},
        {Kind::Delete, "X-Unit-Note", 1, ""},
        {Kind::Add, "X-Unit-Route", 0, "hop=1; gen=3; units=u1; by=mx"},
    };
    CHECK(edits == want);
}

TEST_CASE("untrusted without routing headers: only the route is added") {
    auto scan = scan_of({{"Subject", "x"}});
    auto edits = plan_headers(scan, false, "v");
    REQUIRE(edits.size() == 1);
    CHECK(edits[0].kind == Kind::Add);
    CHECK(edits[0].name == "X-Unit-Route");
}

TEST_CASE("trusted: the route is kept and incremented in place, other prefixed headers stay") {
    auto scan = scan_of({{"X-Unit-Route", "hop=2; gen=1; units=u1; by=mx1"}, {"X-Unit-Note", "kept"}});
    auto verdict = check_headers(scan, true, 6);
    CHECK_FALSE(verdict.refuse);
    CHECK(verdict.incoming == 2);
    CHECK(verdict.outgoing == 3);
    auto edits = plan_headers(scan, true, "hop=3; gen=1; units=u1; by=u1host");
    std::vector<HeaderEdit> want{{Kind::Change, "X-Unit-Route", 1, "hop=3; gen=1; units=u1; by=u1host"}};
    CHECK(edits == want);
}

TEST_CASE("trusted with several routes: the highest hop counts and exactly one route leaves") {
    auto scan = scan_of({{"X-Unit-Route", "hop=1"}, {"x-unit-ROUTE", "hop=3"}, {"X-Unit-Route", "hop=garbage"}});
    auto verdict = check_headers(scan, true, 6);
    CHECK(verdict.outgoing == 4);
    auto edits = plan_headers(scan, true, "v");
    std::vector<HeaderEdit> want{
        {Kind::Delete, "X-Unit-Route", 3, ""},
        {Kind::Delete, "X-Unit-Route", 2, ""},
        {Kind::Change, "X-Unit-Route", 1, "v"},
    };
    CHECK(edits == want);
}

TEST_CASE("trusted without a route, or with a garbage hop: hop=1") {
    CHECK(check_headers(scan_of({}), true, 6).outgoing == 1);
    auto garbage = scan_of({{"X-Unit-Route", "hop=lots"}});
    CHECK(check_headers(garbage, true, 6).outgoing == 1);
    auto edits = plan_headers(scan_of({}), true, "v");
    REQUIRE(edits.size() == 1);
    CHECK(edits[0].kind == Kind::Add);
}

TEST_CASE("loop guard: a trusted hop at max_hops is refused with 451 4.4.6") {
    auto below = scan_of({{"X-Unit-Route", "hop=5"}});
    CHECK_FALSE(check_headers(below, true, 6).refuse);
    CHECK(check_headers(below, true, 6).outgoing == 6);
    auto at = scan_of({{"X-Unit-Route", "hop=6"}});
    auto verdict = check_headers(at, true, 6);
    REQUIRE(verdict.refuse);
    CHECK(*verdict.refuse == Reply{"451", "4.4.6", "routing loop: directory replicas disagree"});
    CHECK(check_headers(scan_of({{"X-Unit-Route", "hop=999999999999"}}), true, 6).refuse);
    CHECK_FALSE(check_headers(at, false, 6).refuse);  // untrusted: stripped, not counted
}

TEST_CASE("loop guard: a loop that is over is released, up to a ceiling") {
    auto at = scan_of({{"X-Unit-Route", "hop=6; gen=40"}});
    // An older directory here (or none): the replicas still disagree.
    CHECK(check_headers(at, true, 6, LoopContext{39, false}).refuse);
    CHECK(check_headers(at, true, 6, LoopContext{-1, false}).refuse);
    // Caught up with the host that stamped the route: released.
    auto caught_up = check_headers(at, true, 6, LoopContext{40, false});
    CHECK_FALSE(caught_up.refuse);
    CHECK(caught_up.released);
    CHECK(caught_up.outgoing == 7);
    CHECK(check_headers(at, true, 6, LoopContext{41, false}).released);
    // ... but not past 2 x max_hops, which ends a loop between hosts that agree.
    auto ceiling = scan_of({{"X-Unit-Route", "hop=12; gen=40"}});
    CHECK(check_headers(ceiling, true, 6, LoopContext{41, false}).refuse);
    // Delivered on this unit: nothing can loop any more, whatever the count.
    CHECK_FALSE(check_headers(ceiling, true, 6, LoopContext{40, true}).refuse);
    CHECK(check_headers(ceiling, true, 6, LoopContext{40, true}).released);
    // A route without a generation is never released for age.
    CHECK(check_headers(scan_of({{"X-Unit-Route", "hop=6"}}), true, 6, LoopContext{41, false}).refuse);
    // The generation that counts is the one of the route with the highest hop.
    auto two = scan_of({{"X-Unit-Route", "hop=6; gen=50"}, {"X-Unit-Route", "hop=2; gen=10"}});
    CHECK(two.incoming_generation() == 50);
    CHECK(check_headers(two, true, 6, LoopContext{49, false}).refuse);
    // Untrusted clients: nothing is counted, nothing is released.
    CHECK_FALSE(check_headers(at, false, 6, LoopContext{41, false}).released);
}

TEST_CASE("a custom prefix") {
    HeaderScan scan("X-Route-", 10);
    scan.add("X-Route-Route", "hop=2");
    scan.add("X-Unit-Route", "hop=5");
    CHECK(scan.route_name() == "X-Route-Route");
    CHECK(scan.incoming_hop() == 2);
    CHECK(scan.prefixed().size() == 1);
    CHECK(scan.occurrences() == 1);
}

TEST_CASE("flood: occurrences count, not names: one more than max_stripped refuses an untrusted message with a 5xx") {
    HeaderScan at("X-Unit-", 10), over("X-Unit-", 10);
    for (int i = 0; i < 10; ++i) at.add(i % 2 ? "X-Unit-Route" : "x-unit-ROUTE", "hop=1");
    for (int i = 0; i < 11; ++i) over.add("X-Unit-Route", "hop=1");
    CHECK(at.occurrences() == 10);
    CHECK_FALSE(at.flooded());
    CHECK_FALSE(check_headers(at, false, 6).refuse);
    auto edits = plan_headers(at, false, "v");
    CHECK(edits.size() == 11);  // ten deletions and the route
    CHECK(std::count_if(edits.begin(), edits.end(), [](const auto& e) { return e.kind == Kind::Delete; }) == 10);

    CHECK(over.occurrences() == 11);
    CHECK(over.flooded());
    auto verdict = check_headers(over, false, 6);
    REQUIRE(verdict.refuse);
    CHECK(*verdict.refuse == Reply{"550", "5.7.1", "too many forged routing headers"});
    CHECK(verdict.refuse == forged_headers_reply());
    // A trusted client is never refused for it (its extra routes are kept instead).
    CHECK_FALSE(check_headers(over, true, 6).refuse);
}

TEST_CASE("flood: max_stripped 0 refuses any prefixed header from an untrusted client") {
    HeaderScan scan("X-Unit-", 0);
    scan.add("Subject", "x");
    CHECK_FALSE(check_headers(scan, false, 6).refuse);
    scan.add("X-Unit-Note", "x");
    CHECK(check_headers(scan, false, 6).refuse == forged_headers_reply());
}

TEST_CASE("flood: memory is bounded: past max_stripped the names are forgotten, the route still read") {
    HeaderScan scan("X-Unit-", 100);
    std::string big(64 * 1024, 'a');
    for (int i = 0; i < 10000; ++i) {
        scan.add("X-Unit-N" + std::to_string(i), big);
        CHECK(scan.prefixed().size() <= 100);
    }
    scan.add("X-Unit-Route", "hop=3; units=" + big);
    CHECK(scan.prefixed().empty());
    CHECK(scan.occurrences() == 10001);
    CHECK(scan.route_count() == 1);
    CHECK(scan.incoming_hop() == 3);
    CHECK(check_headers(scan, false, 6).refuse == forged_headers_reply());
    scan.clear();
    CHECK(scan.occurrences() == 0);
    CHECK_FALSE(scan.flooded());
    scan.add("x-unit-n7", "x");
    REQUIRE(scan.prefixed().size() == 1);
    CHECK(scan.prefixed()[0].count == 1);
}

TEST_CASE("flood: a trusted client's extra routes are deleted up to max_stripped, kept beyond") {
    HeaderScan some("X-Unit-", 10), many("X-Unit-", 10);
    for (int i = 1; i <= 11; ++i) some.add("X-Unit-Route", "hop=" + std::to_string(i));
    for (int i = 1; i <= 20000; ++i) many.add("X-Unit-Route", "hop=" + std::to_string(i % 7));
    many.add("X-Unit-Note", "kept");

    CHECK_FALSE(some.routes_flooded());
    auto edits = plan_headers(some, true, "v");
    REQUIRE(edits.size() == 11);  // routes 11 down to 2, then the change of the first
    CHECK(edits.front() == HeaderEdit{Kind::Delete, "X-Unit-Route", 11, ""});
    CHECK(edits.back() == HeaderEdit{Kind::Change, "X-Unit-Route", 1, "v"});

    CHECK(many.routes_flooded());
    CHECK(many.route_count() == 20000);
    auto verdict = check_headers(many, true, 12);
    CHECK_FALSE(verdict.refuse);
    CHECK(verdict.outgoing == 7);  // the highest hop (6) plus one: the changed route carries the highest
    std::vector<HeaderEdit> want{{Kind::Change, "X-Unit-Route", 1, "v"}};
    CHECK(plan_headers(many, true, "v") == want);
    // The loop guard still applies.
    CHECK(check_headers(many, true, 6).refuse == loop_reply());
}

TEST_CASE("flood: mixed case is one name; edits never pass max_stripped + 1 for any client") {
    HeaderScan scan("X-Unit-", 100);
    for (int round = 0; round < 50; ++round)
        for (int i = 0; i < 2; ++i) scan.add((round % 2 ? "x-unit-n" : "X-UNIT-N") + std::to_string(i), "x");
    REQUIRE(scan.prefixed().size() == 2);
    CHECK(scan.prefixed()[1].name == "X-UNIT-N1");
    CHECK(scan.prefixed()[0].count == 50);
    CHECK(plan_headers(scan, false, "v").size() == 101);
    for (std::size_t max : {0, 1, 10, 100}) {
        for (int routes : {0, 1, 2, 50, 500}) {
            HeaderScan s("X-Unit-", max);
            for (int i = 0; i < routes; ++i) s.add("X-Unit-Route", "hop=1");
            for (int i = 0; i < routes; ++i) s.add("X-Unit-Other", "x");
            CHECK(plan_headers(s, true, "v").size() <= max + 1);
            if (!check_headers(s, false, 6).refuse) CHECK(plan_headers(s, false, "v").size() <= max + 1);
        }
    }
}
