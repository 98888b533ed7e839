#include <doctest/doctest.h>
#include <fmt/format.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "policyd/held_mail.hpp"
#include "policyd/program.hpp"
#include "test_support.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::policyd;
using namespace std::chrono_literals;

namespace {

// Lines as Postfix 3.7's "postqueue -j" prints them (from a live instance):
// held by defer_transports, then after "postqueue -f" sent it to the hold
// nexthop, in and out of a chroot, an ordinary deferral, and an old smtp
// clone that died on the hold nexthop (no reason at all).
const std::string held_line =
    R"({"queue_name": "deferred", "queue_id": "1BFD713A037", "arrival_time": 1796276021, "message_size": 402, )"
    R"("forced_expire": false, "sender": "sender@sender.invalid", "recipients": [{"address": "h1@example.com", )"
    R"("delay_reason": "deferred transport"}]})";
const std::string flushed_reason = "connect to mx.it.invalid[/dev/null/unitpolicy-held/unit1]: Not a directory";
const std::string chroot_reason = "connect to mx.my.com[/dev/null/unitpolicy-held/u1]: No such file or directory";
const std::string refused_reason = "connect to 127.0.0.1[127.0.0.1]:2525: Connection refused";

std::string line(const std::string& id, const std::vector<std::pair<std::string, std::string>>& recipients,
                 const std::string& queue = "deferred") {
    std::string out = R"({"queue_name": ")" + queue + R"(", "queue_id": ")" + id + R"(", "recipients": [)";
    for (std::size_t i = 0; i < recipients.size(); ++i) {
        if (i) out += ", ";
        out += R"({"address": ")" + recipients[i].first + '"';
        if (!recipients[i].second.empty()) out += R"(, "delay_reason": ")" + recipients[i].second + '"';
        out += '}';
    }
    return out + "]}";
}

HeldRoute held_on(const std::string& unit) { return {HeldRoute::Kind::Held, unit}; }
const HeldRoute deliverable{HeldRoute::Kind::Deliverable, {}};
const HeldRoute no_route{};

Resolution mailbox(MailboxState mstate, UnitState ustate = UnitState::Active, const std::string& unit = "u1") {
    Resolution r;
    r.outcome = mstate == MailboxState::Disabled ? Outcome::Disabled : Outcome::Mailbox;
    r.input = r.address = "user@example.com";
    Destination d;
    d.mailbox.address = r.address;
    d.mailbox.unit = unit;
    d.mailbox.state = mstate;
    d.unit = UnitRecord{unit, "lmtp", "[" + unit + ".example.com]:24", ustate};
    r.destination = d;
    return r;
}

}  // namespace

TEST_CASE("postqueue -j lines parse into messages and recipients") {
    auto m = parse_queue_line(held_line);
    REQUIRE(m);
    CHECK(m->queue_name == "deferred");
    CHECK(m->queue_id == "1BFD713A037");
    REQUIRE(m->recipients.size() == 1);
    CHECK(m->recipients[0].address == "h1@example.com");
    CHECK(m->recipients[0].delay_reason == "deferred transport");

    m = parse_queue_line(line("ABC", {{"a@x", ""}, {"b@x", flushed_reason}}, "active"));
    REQUIRE(m);
    CHECK(m->queue_name == "active");
    REQUIRE(m->recipients.size() == 2);
    CHECK(m->recipients[0].delay_reason.empty());
    CHECK(m->recipients[1].delay_reason == flushed_reason);

    CHECK_FALSE(parse_queue_line(""));
    CHECK_FALSE(parse_queue_line("postqueue: fatal: Queue report unavailable - mail system is down"));
    CHECK_FALSE(parse_queue_line(R"({"queue_name": "deferred", "recipients": []})"));  // no queue id
    CHECK_FALSE(parse_queue_line(R"({"queue_id": "A", "recipients": )"));              // cut short
}

TEST_CASE("a delay reason says held for defer_transports and for the hold nexthop, not otherwise") {
    CHECK(was_held("deferred transport"));
    CHECK(was_held(flushed_reason));
    CHECK(was_held(chroot_reason));
    CHECK_FALSE(was_held(refused_reason));
    CHECK_FALSE(was_held(""));
    CHECK_FALSE(was_held("deferred transport, and more"));
}

TEST_CASE("a recipient's route now: held on its unit, deliverable, or none") {
    AnswerSettings mx;
    CHECK(route_of(mailbox(MailboxState::Active), mx).kind == HeldRoute::Kind::Deliverable);
    for (auto r : {mailbox(MailboxState::Moving), mailbox(MailboxState::Suspended),
                   mailbox(MailboxState::Active, UnitState::Down)}) {
        const auto route = route_of(r, mx);
        CHECK(route.kind == HeldRoute::Kind::Held);
        CHECK(route.unit == "u1");
    }
    CHECK(route_of(mailbox(MailboxState::Disabled), mx).kind == HeldRoute::Kind::NoRoute);
    Resolution temp;
    temp.outcome = Outcome::Tempfail;
    Resolution unknown;
    unknown.outcome = Outcome::Unknown;
    Resolution foreign;
    foreign.outcome = Outcome::Foreign;
    for (const auto& r : {temp, unknown, foreign}) CHECK(route_of(r, mx).kind == HeldRoute::Kind::NoRoute);

    AnswerSettings unit = mx;  // the unit role's map
    unit.unit = "u1";
    unit.mx_relay = "smtp:[mx.example.com]";
    CHECK(route_of(mailbox(MailboxState::Active), unit).kind == HeldRoute::Kind::Deliverable);
    CHECK(route_of(mailbox(MailboxState::Active, UnitState::Active, "u2"), unit).kind == HeldRoute::Kind::Deliverable);
    CHECK(route_of(mailbox(MailboxState::Moving, UnitState::Active, "u2"), unit).unit == "u2");

    AnswerSettings renamed = mx;  // another hold transport name
    renamed.hold_transport = "hold2";
    CHECK(route_of(mailbox(MailboxState::Moving), renamed).unit == "u1");
    AnswerSettings defer = mx;  // hold_mode defer: retry:, the mailbox names the unit
    defer.hold_mode = HoldMode::Defer;
    CHECK(route_of(mailbox(MailboxState::Moving), defer).kind == HeldRoute::Kind::Held);
    CHECK(route_of(mailbox(MailboxState::Moving), defer).unit == "u1");
}

TEST_CASE("a scan counts held messages per unit and releases those whose held recipient has a route now") {
    const std::map<std::string, HeldRoute> routes = {
        {"moving@x", held_on("u1")}, {"down@x", held_on("u3")}, {"moved@x", deliverable},
        {"other@x", deliverable},    {"gone@x", no_route},      {"remote@y", no_route},
    };
    std::map<std::string, int> asked;
    HeldScan scan([&](std::string_view address) {
        ++asked[std::string(address)];
        return routes.at(std::string(address));
    });
    scan.add(*parse_queue_line(line("A", {{"moving@x", "deferred transport"}})));              // still held
    scan.add(*parse_queue_line(line("B", {{"moved@x", "deferred transport"}})));               // released
    scan.add(*parse_queue_line(line("C", {{"moved@x", flushed_reason}})));                     // released after a flush
    scan.add(*parse_queue_line(line("D", {{"moving@x", flushed_reason}, {"moving@x", ""}})));  // one unit, once
    scan.add(*parse_queue_line(line("E", {{"moving@x", "deferred transport"}, {"down@x", "deferred transport"}})));
    scan.add(*parse_queue_line(line("F", {{"moving@x", "deferred transport"}, {"moved@x", "deferred transport"}})));
    scan.add(*parse_queue_line(line("G", {{"other@x", refused_reason}})));                  // not ours
    scan.add(*parse_queue_line(line("H", {{"gone@x", "deferred transport"}})));             // never released
    scan.add(*parse_queue_line(line("I", {{"remote@y", refused_reason}})));                 // not held
    scan.add(*parse_queue_line(line("J", {{"moved@x", "deferred transport"}}, "active")));  // not deferred
    scan.add(*parse_queue_line(line("K", {{"other@x", ""}})));  // no reason: left to Postfix

    CHECK(scan.release() == std::vector<std::string>{"B", "C", "F"});
    CHECK(scan.held() == std::map<std::string, std::uint64_t>{{"u1", 4}, {"u3", 1}, {std::string(no_route_unit), 1}});
    for (const auto& [address, times] : asked) {
        CAPTURE(address);
        CHECK(times == 1);  // each address resolved once per scan
    }
}

TEST_CASE("run_program hands over stdout lines and fails with a reason") {
    test::TempDir dir;
    std::vector<std::string> lines;
    auto collect = [&](std::string_view l) { lines.emplace_back(l); };
    REQUIRE(run_program({"/bin/sh", "-c", "printf 'one\\ntwo\\nlast'"}, {}, collect).ok());
    CHECK(lines == std::vector<std::string>{"one", "two", "last"});

    auto missing = run_program({dir.path("no-such-postqueue")}, {}, collect);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message.find("No such file or directory") != std::string::npos);

    auto failing = run_program({"/bin/sh", "-c", "echo 'postqueue: fatal: bad -c' >&2; exit 75"}, {}, collect);
    REQUIRE_FALSE(failing.ok());
    CHECK(failing.error().message == "/bin/sh: exit status 75: postqueue: fatal: bad -c");
    auto warned = run_program({"/bin/sh", "-c",
                               "echo 'postqueue: warning: main.cf, line 27: overriding' >&2; "
                               "echo 'postqueue: fatal: Queue report unavailable - mail system is down' >&2; "
                               "exit 69"},
                              {}, collect);
    REQUIRE_FALSE(warned.ok());
    CHECK(warned.error().message ==
          "/bin/sh: exit status 69: postqueue: fatal: Queue report unavailable - mail system is down");
    auto silent = run_program({"/bin/sh", "-c", "exit 3"}, {}, collect);
    REQUIRE_FALSE(silent.ok());
    CHECK(silent.error().message == "/bin/sh: exit status 3: no message");

    const auto start = std::chrono::steady_clock::now();
    auto slow = run_program({"/bin/sleep", "30"}, {200ms, 1024}, collect);
    REQUIRE_FALSE(slow.ok());
    CHECK(slow.error().message.find("no answer within 200 ms") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < 5s);

    auto long_line = run_program({"/bin/sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x"}, {5s, 1024}, collect);
    REQUIRE_FALSE(long_line.ok());
    CHECK(long_line.error().message.find("longer than 1024 bytes") != std::string::npos);
}

TEST_CASE("the watcher scans at once and every interval, releases, counts, and survives a failing postqueue") {
    test::TempDir dir;
    auto primary = test::make_sample_primary(dir.path("primary.db"));
    REQUIRE(primary.publish(dir.path("units.db")).ok());
    // A postqueue standing in for Postfix's: -j prints queue.jsonl, -i QUEUEID
    // appends to released; -c DIR must come first.
    const auto fake = dir.path("postqueue");
    {
        std::ofstream script(fake);
        script << "#!/bin/sh\n[ \"$1\" = -c ] && [ \"$2\" = " << dir.path("etc") << " ] || exit 64\nshift 2\n"
               << "case $1 in -j) cat " << dir.path("queue.jsonl") << ";; -i) echo \"$2\" >>" << dir.path("released")
               << ";; -f) echo flush >>" << dir.path("released") << ";; *) exit 64;; esac\n";
    }
    REQUIRE(chmod(fake.c_str(), 0755) == 0);
    {
        std::ofstream queue(dir.path("queue.jsonl"));
        queue << line("HELD", {{"moving@example.com", "deferred transport"}}) << '\n'
              << line("FREE", {{"john.doe@example.com", flushed_reason}}) << '\n'
              << line("UNKNOWN", {{"nobody@example.com", "deferred transport"}}) << '\n';
    }
    auto settings = std::make_shared<Settings>();
    settings->db = dir.path("units.db");
    settings->postqueue = fake;
    settings->postfix_config_directory = dir.path("etc");
    settings->held_mail_interval = 1s;
    Stats stats;
    HeldMailWatcher watcher(settings, stats, nullptr);
    watcher.start();
    auto wait_for = [](auto condition) {
        for (int i = 0; i < 50 && !condition(); ++i) std::this_thread::sleep_for(100ms);
        return condition();
    };
    REQUIRE(wait_for([&] { return stats.held_scanned_at.load() > 0; }));
    CHECK(stats.held() == std::map<std::string, std::uint64_t>{{"u1", 1}, {std::string(no_route_unit), 1}});
    CHECK(stats.held_released.load() == 1);
    CHECK(stats.held_scan_errors.load() == 0);
    std::ifstream released(dir.path("released"));
    std::string first;
    std::getline(released, first);
    CHECK(first == "FREE");

    // More releases than max_single_releases: one postqueue -f instead
    {
        std::ofstream queue(dir.path("queue.jsonl"));
        queue << line("HELD", {{"moving@example.com", "deferred transport"}}) << '\n';
        for (std::size_t i = 0; i <= max_single_releases; ++i)
            queue << line(fmt::format("FREE{}", i), {{"john.doe@example.com", "deferred transport"}}) << '\n';
    }
    std::remove(dir.path("released").c_str());
    REQUIRE(wait_for([&] { return stats.held_released.load() == 2 + max_single_releases; }));
    std::ifstream flushed(dir.path("released"));
    std::stringstream calls;
    calls << flushed.rdbuf();
    CHECK(calls.str() == "flush\n");

    // postqueue gone: each scan fails and is counted; the last counts stay
    auto broken = std::make_shared<Settings>(*settings);
    broken->postqueue = dir.path("missing");
    watcher.reconfigure(broken);
    REQUIRE(wait_for([&] { return stats.held_scan_errors.load() >= 1; }));
    CHECK(stats.held().at("u1") == 1);
    watcher.stop();
}

TEST_CASE("the held counts are served on the control socket and to Prometheus") {
    Stats stats;
    stats.set_held({{"u1", 2}, {std::string(no_route_unit), 1}});
    stats.held_released = 5;
    stats.held_scan_errors = 1;
    stats.held_scanned_at = 1796276021;
    const auto json = stats_json(stats);
    CHECK(json.find(R"("held_messages":3)") != std::string::npos);
    CHECK(json.find(R"("held_released":5)") != std::string::npos);
    CHECK(json.find(R"("held_scan_errors":1)") != std::string::npos);
    const auto text = stats_prometheus(stats);
    CHECK(text.find("# TYPE unitpolicy_held_messages gauge\n") != std::string::npos);
    CHECK(text.find("unitpolicy_held_messages{unit=\"u1\"} 2\n") != std::string::npos);
    CHECK(text.find("unitpolicy_held_messages{unit=\"(none)\"} 1\n") != std::string::npos);
    CHECK(text.find("unitpolicy_held_scan_timestamp_seconds 1796276021\n") != std::string::npos);
    CHECK(text.find("unitpolicy_held_released_total 5\n") != std::string::npos);
    CHECK(text.find("unitpolicy_held_scan_errors_total 1\n") != std::string::npos);
}
