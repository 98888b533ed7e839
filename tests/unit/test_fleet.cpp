// The fleet view of unitctl: the Prometheus text reader, the hosts file,
// a host's report from its metrics, and the decision of `fleet wait`.
#include <doctest/doctest.h>

#include <cmath>

#include "common/metrics_http.hpp"
#include "common/replica_metrics.hpp"
#include "ctl/fleet_report.hpp"
#include "ctl/prometheus_text.hpp"
#include "json_reader.hpp"
#include "milter/stats.hpp"
#include "policyd/stats.hpp"
#include "test_support.hpp"

using namespace unit;
using namespace unit::ctl;

TEST_CASE("prometheus text: samples, labels, escapes, comments") {
    auto samples = parse_prometheus_text(
        "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n\n"
        "b{x=\"1\",y=\"q\\\"uo\\\\te\\n\"} 2.5 1700000000\r\n  c{} +Inf\nd NaN\ne{z=\"\"} -1e3");
    REQUIRE(samples.ok());
    REQUIRE(samples->size() == 5);
    CHECK((*samples)[0].name == "a_total");
    CHECK((*samples)[0].value == 3);
    CHECK((*samples)[1].label("x") == "1");
    CHECK((*samples)[1].label("y") == "q\"uo\\te\n");
    CHECK(!(*samples)[1].label("w"));
    CHECK((*samples)[1].value == 2.5);
    CHECK(std::isinf((*samples)[2].value));
    CHECK(std::isnan((*samples)[3].value));
    CHECK((*samples)[4].label("z") == "");
    CHECK((*samples)[4].value == -1000);
}

TEST_CASE("prometheus text: a malformed line is an error naming it") {
    for (const char* text :
         {"<html>\n", "a{x=\"1\" 2\n", "a{x=1} 2\n", "a\n", "a{x=\"1\"} two\n", "a 1\n{x=\"\"} 1\n"}) {
        auto samples = parse_prometheus_text(text);
        CAPTURE(text);
        REQUIRE(!samples.ok());
        CHECK(samples.error().code == Errc::Invalid);
        CHECK(samples.error().message.starts_with("line "));
    }
    CHECK(parse_prometheus_text("ok 1\n\nbad\n").error().message.starts_with("line 3: "));
}

TEST_CASE("prometheus text: reads what the daemons write") {
    common::MetricsText m;
    m.family("unitpolicy_replica_generation", common::MetricsText::Type::Gauge, "help");
    m.sample("unitpolicy_replica_generation", 42);
    common::replica_metrics(m, "unitpolicy", {"p\"id\\", true, "foreign", 1700000000, ""});
    auto samples = parse_prometheus_text(m.text());
    REQUIRE(samples.ok());
    auto report = report_of(*samples);
    CHECK(report.answered());
    CHECK(report.daemon == "unitpolicy");
    CHECK(report.generation == 42);
    CHECK(report.primary_id == "p\"id\\");
    CHECK(report.pending);
    CHECK(report.refused == "foreign");
    CHECK(report.last_refusal == 1700000000);
}

TEST_CASE("both daemons' /metrics read as a report: generation, primary, pending, refusal") {
    unit::policyd::Stats policy;
    policy.replica.generation = 9;
    policy.replica.published_at = 1000;
    policy.replica.notes.serving("0123456789abcdef");
    policy.replica.notes.refused("regression", 1500);
    policy.replica.notes.set_pending(true);
    auto report = report_of(Fetched{unit::policyd::stats_prometheus(policy), ""});
    CHECK(report.daemon == "unitpolicy");
    CHECK(report.generation == 9);
    CHECK(report.published_at == 1000);
    CHECK(report.primary_id == "0123456789abcdef");
    CHECK(report.pending);
    CHECK(report.refused == "regression");
    CHECK(report.last_refusal == 1500);

    unit::milter::MilterStats milter;
    milter.replica.generation = 11;
    milter.replica.published_at = 2000;
    milter.replica.notes.serving("fedcba");
    milter.replica.notes.refused("foreign", 2500);
    milter.replica.notes.switched();  // the refusal is over, its time stays
    report = report_of(Fetched{unit::milter::stats_prometheus(milter), ""});
    CHECK(report.daemon == "unitmilter");
    CHECK(report.generation == 11);
    CHECK(report.published_at == 2000);
    CHECK(report.primary_id == "fedcba");
    CHECK(!report.pending);
    CHECK(report.refused.empty());
    CHECK(report.last_refusal == 2500);
}

TEST_CASE("metrics URL") {
    auto host = parse_metrics_url("http://mx1.example.com:9101/metrics");
    REQUIRE(host.ok());
    CHECK(host->name == "mx1.example.com:9101");
    CHECK(host->host == "mx1.example.com");
    CHECK(host->port == "9101");
    CHECK(host->target == "/metrics");
    host = parse_metrics_url("http://[::1]:9", "mx2");
    REQUIRE(host.ok());
    CHECK(host->name == "mx2");
    CHECK(host->host == "::1");
    CHECK(host->target == "/metrics");
    host = parse_metrics_url("http://10.0.0.1/x?y");
    REQUIRE(host.ok());
    CHECK(host->port == "80");
    CHECK(host->target == "/x?y");
    for (const char* bad : {"https://mx1:9101/metrics", "mx1:9101", "http://", "http://mx1:0/", "http://mx1:99999/",
                            "http://mx1:x/", "http://::1/", "http://[::1/", "http://u@mx1/", "http://mx 1/"}) {
        CAPTURE(bad);
        CHECK(!parse_metrics_url(bad).ok());
    }
}

TEST_CASE("hosts file: names, comments, errors with their line") {
    auto hosts = parse_fleet_hosts(
        "# the MXs\nmx1 http://10.0.0.1:9101/metrics  # first\n\n"
        "   http://10.0.0.2:9101/metrics\n",
        "fleet.hosts");
    REQUIRE(hosts.ok());
    REQUIRE(hosts->size() == 2);
    CHECK((*hosts)[0].name == "mx1");
    CHECK((*hosts)[1].name == "10.0.0.2:9101");

    auto bad = parse_fleet_hosts("mx1 http://a:1/\nmx1 http://b:1/\n", "F");
    REQUIRE(!bad.ok());
    CHECK(bad.error().message == "F:2: host 'mx1' named twice");
    bad = parse_fleet_hosts("\n\na b c\n", "F");
    CHECK(bad.error().message.starts_with("F:3: expected URL or NAME URL"));
    bad = parse_fleet_hosts("mx1 https://a/\n", "F");
    CHECK(bad.error().message.starts_with("F:1: bad URL 'https://a/': https"));
    bad = parse_fleet_hosts("# nothing\n", "F");
    CHECK(bad.error().message == "F: no host");
}

namespace {

HostReport serving(std::int64_t generation, std::string primary_id = "aaaa1111bbbb2222") {
    HostReport r;
    r.daemon = "unitpolicy";
    r.generation = generation;
    r.primary_id = std::move(primary_id);
    return r;
}

}  // namespace

TEST_CASE("report: not a daemon's metrics, or a failed fetch") {
    CHECK(!report_of(std::vector<Sample>{{"node_load1", {}, 1}}).answered());
    CHECK(report_of(Fetched{"", "connect: Connection refused"}).error == "connect: Connection refused");
    CHECK(report_of(Fetched{"<html>", ""}).error.starts_with("not metrics text: line 1"));
    auto milter = report_of(Fetched{"unitmilter_replica_generation 7\nunitmilter_held_messages{unit=\"u1\"} 3\n", ""});
    CHECK(milter.daemon == "unitmilter");
    CHECK(milter.generation == 7);
    REQUIRE(milter.held.size() == 1);
    CHECK(milter.held[0] == std::pair<std::string, std::int64_t>{"u1", 3});
}

TEST_CASE("wait: a host lags behind, serves another primary, or does not answer") {
    const std::optional<std::string> primary = "aaaa1111bbbb2222";
    CHECK(!lag_of(serving(5), 5, primary));
    CHECK(!lag_of(serving(6), 5, primary));
    CHECK(lag_of(serving(4), 5, primary) == "serves generation 4");
    auto refused = serving(4);
    refused.refused = "regression";
    CHECK(lag_of(refused, 5, primary) == "serves generation 4, replacement refused (regression)");
    CHECK(lag_of(serving(9, "ffff0000"), 5, primary) == "serves another primary (ffff0000, generation 9)");
    CHECK(!lag_of(serving(9, "ffff0000"), 5, std::nullopt));
    CHECK(!lag_of(serving(5, ""), 5, primary));  // an older unitctl's snapshot: the generation alone
    CHECK(lag_of(HostReport::failed("no answer within 3000 ms"), 5, primary) == "no answer: no answer within 3000 ms");
}

TEST_CASE("wait: the primary most hosts serve, when the database does not say") {
    CHECK(majority_primary({serving(5, "a"), serving(5, "a"), serving(5, "b")}) == "a");
    CHECK(!majority_primary({serving(5, "a"), serving(5, "b")}));
    CHECK(!majority_primary({HostReport::failed("x")}));
    CHECK(majority_primary({serving(5, "a"), serving(5, ""), serving(5, "")}) == "a");  // no identity, no vote
    CHECK(majority_primary({serving(5, "a"), HostReport::failed("x"), HostReport::failed("y")}) == "a");
}

TEST_CASE("wait: the hosts that keep it waiting, named, in order") {
    const std::vector<FleetHost> hosts = {parse_metrics_url("http://a:1/", "mx1").value(),
                                          parse_metrics_url("http://b:1/", "mx2").value(),
                                          parse_metrics_url("http://c:1/", "mx3").value()};
    // The primary's identity known: a host of another primary lags whatever its generation.
    CHECK(lagging(hosts, {serving(7), serving(8), serving(9, "other123456")}, {7, "aaaa1111bbbb2222"}) ==
          std::vector<std::string>{"mx3: serves another primary (other123, generation 9)"});
    CHECK(lagging(hosts, {serving(7), serving(6), HostReport::failed("connect: Connection refused")},
                  {7, "aaaa1111bbbb2222"}) ==
          std::vector<std::string>{"mx2: serves generation 6", "mx3: no answer: connect: Connection refused"});
    CHECK(lagging(hosts, {serving(7), serving(7), serving(8)}, {7, "aaaa1111bbbb2222"}).empty());
    // --generation alone: the primary most hosts serve.
    CHECK(lagging(hosts, {serving(7), serving(7), serving(7, "other123456")}, {7, std::nullopt}) ==
          std::vector<std::string>{"mx3: serves another primary (other123, generation 7)"});
    CHECK(lagging(hosts, {serving(7), serving(7, ""), serving(7)}, {7, std::nullopt}).empty());
    // Two primaries, one host each: neither can be trusted.
    CHECK(lagging({hosts[0], hosts[1]}, {serving(7, "x1"), serving(7, "y2")}, {7, std::nullopt}) ==
          std::vector<std::string>{"mx1: serves primary x1, and the fleet several",
                                   "mx2: serves primary y2, and the fleet several"});
}

TEST_CASE("status line") {
    auto host = parse_metrics_url("http://mx1:9101/metrics", "mx1").value();
    auto r = serving(42);
    r.published_at = 1000;
    CHECK(status_line(host, r, 1300) == "mx1  unitpolicy  generation 42  age 5m  primary aaaa1111");
    r.pending = true;
    r.refused = "foreign";
    r.last_refusal = 1290;
    r.held = {{"unit12", 3}, {"unit13", 0}};
    CHECK(status_line(host, r, 1300) ==
          "mx1  unitpolicy  generation 42  age 5m  primary aaaa1111  replacement pending"
          "  replacement refused (foreign, 10s ago)  held unit12=3 unit13=0");
    CHECK(status_line(host, HostReport::failed("connect: Connection refused"), 0) ==
          "mx1  no answer: connect: Connection refused");
    CHECK(short_duration(59) == "59s");
    CHECK(short_duration(7200) == "2h");
    CHECK(short_duration(3 * 86400) == "3d");
}

TEST_CASE("status as JSON: every field always there, null where the host did not say") {
    using unit::test::parse_json;
    auto host = parse_metrics_url("http://mx1:9101/metrics", "mx1").value();
    const std::vector<std::string> fields{"host",       "url",          "error",        "daemon",
                                          "generation", "published_at", "age_seconds",  "primary_id",
                                          "pending",    "refused",      "last_refusal", "held"};
    auto r = serving(42);
    r.published_at = 1000;
    auto v = parse_json(status_json(host, r, 1300));
    CHECK(v.names() == fields);
    CHECK(v["host"].string == "mx1");
    CHECK(v["url"].string == "http://mx1:9101/metrics");
    CHECK(v["error"].is_null());
    CHECK(v["daemon"].string == "unitpolicy");
    CHECK(v["generation"].number == 42);
    CHECK(v["published_at"].number == 1000);
    CHECK(v["age_seconds"].number == 300);
    CHECK(v["primary_id"].string == r.primary_id);
    CHECK(v["pending"].kind == unit::test::JsonValue::Kind::Bool);
    CHECK(!v["pending"].boolean);
    CHECK(v["refused"].is_null());
    CHECK(v["last_refusal"].is_null());
    CHECK(v["held"].object.empty());

    r.pending = true;
    r.refused = "foreign \"x\"";
    r.last_refusal = 1290;
    r.held = {{"unit12", 3}, {"unit13", 0}};
    v = parse_json(status_json(host, r, 1300));
    CHECK(v["pending"].boolean);
    CHECK(v["refused"].string == "foreign \"x\"");
    CHECK(v["last_refusal"].number == 1290);
    CHECK(v["held"].names() == std::vector<std::string>{"unit12", "unit13"});
    CHECK(v["held"]["unit12"].number == 3);

    v = parse_json(status_json(host, HostReport::failed("connect: Connection refused"), 0));
    CHECK(v.names() == fields);
    CHECK(v["error"].string == "connect: Connection refused");
    for (const char* name : {"daemon", "generation", "published_at", "age_seconds", "primary_id", "pending", "refused",
                             "last_refusal", "held"})
        CHECK_MESSAGE(v[name].is_null(), name);
}

TEST_CASE("examples/fleet.hosts is a valid hosts file") {
    auto hosts = read_fleet_hosts(unit::test::env_or_fail("UNIT_SOURCE_ROOT") + "/examples/fleet.hosts");
    REQUIRE_MESSAGE(hosts.ok(), hosts.error().message);
    CHECK(hosts->size() == 5);
    CHECK(hosts->front().name == "mx1");
    CHECK(!read_fleet_hosts("/nonexistent/fleet.hosts").ok());
}
