// The toolkit itself: what the load generator counts, what the milter
// client and the control-socket reader see, must be right before the
// fault tests, the attacks and the benchmarks rely on them.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "daemon.hpp"
#include "load.hpp"
#include "milter_client.hpp"
#include "socket.hpp"
#include "unit/primary.hpp"
#include "unit/test_support.hpp"

using namespace unit::load;
using namespace std::chrono_literals;

TEST_CASE("classify maps each protocol's replies to what the sender sees") {
    auto policy = [](std::string text) { return classify(Protocol::Policy, Reply{true, std::move(text)}); };
    auto map = [](std::string text) { return classify(Protocol::Socketmap, Reply{true, std::move(text)}); };
    CHECK(policy("DUNNO") == Verdict::Accept);
    CHECK(policy("OK") == Verdict::Accept);
    CHECK(policy("550 5.1.1 User unknown") == Verdict::Reject);
    CHECK(policy("REJECT no") == Verdict::Reject);
    CHECK(policy("450 4.2.1 Mailbox temporarily unavailable") == Verdict::Tempfail);
    CHECK(policy("451 4.3.0 Directory temporarily unavailable") == Verdict::Tempfail);
    CHECK(policy("DEFER_IF_PERMIT later") == Verdict::Tempfail);
    CHECK(policy("DUNNOX") == Verdict::Tempfail);  // an unknown action: Postfix answers 451
    CHECK(map("OK smtp:[unit0001.example]") == Verdict::Accept);
    CHECK(map("NOTFOUND ") == Verdict::Reject);
    CHECK(map("TEMP directory unavailable") == Verdict::Tempfail);
    CHECK(map("PERM bad") == Verdict::Reject);
    CHECK(classify(Protocol::Policy, Reply{false, "timeout"}) == Verdict::NoAnswer);
    CHECK(std::string(verdict_name(Verdict::NoAnswer)) == "no-answer");
}

TEST_CASE("the histogram resolves 1 µs below 1 ms and 1% above") {
    Histogram h;
    for (int us = 1; us <= 1000; ++us) h.add(std::chrono::microseconds(us));
    CHECK(h.count() == 1000);
    CHECK(h.percentile_us(50) == doctest::Approx(500.5));
    CHECK(h.percentile_us(99) == doctest::Approx(990.5));
    CHECK(h.mean_us() == doctest::Approx(500.5));

    Histogram slow;
    slow.add(std::chrono::milliseconds(10));
    slow.add(std::chrono::seconds(3));
    CHECK(slow.percentile_us(50) == doctest::Approx(10'000).epsilon(0.01));
    CHECK(slow.percentile_us(100) == doctest::Approx(3'000'000).epsilon(0.01));

    h.merge(slow);
    CHECK(h.count() == 1002);
    CHECK(h.percentile_us(100) == doctest::Approx(3'000'000).epsilon(0.01));
    CHECK(Histogram().percentile_us(99) == 0);
}

TEST_CASE("a client gives no answer, without throwing, for a missing or silent server") {
    unit::test::TempDir dir;
    Client missing(dir.path("nothing"), 200ms);
    Reply r = missing.ask(Request{Protocol::Policy, "", "user@example.com", true});
    CHECK_FALSE(r.ok);
    CHECK(r.text.find("connect") != std::string::npos);

    // A listener that accepts (the kernel does) and never answers.
    std::string path = dir.path("silent");
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(listener, 4) == 0);
    Client silent(path, 200ms);
    auto start = std::chrono::steady_clock::now();
    r = silent.ask(Request{Protocol::Socketmap, "recipient", "user@example.com", true});
    auto took = std::chrono::steady_clock::now() - start;
    CHECK_FALSE(r.ok);
    CHECK(r.text == "timeout");
    CHECK(took >= 190ms);
    CHECK(took < 2s);
    CHECK_FALSE(silent.connected());

    unit::toolkit::MilterMessage message;
    message.recipients = {"<user@example.com>"};
    auto none = unit::toolkit::MilterClient(dir.path("nothing"), 200ms).transaction(message);
    CHECK(none.outcome == unit::toolkit::MilterOutcome::NoAnswer);
    CHECK(none.why.find("connect") != std::string::npos);
    start = std::chrono::steady_clock::now();
    auto mute = unit::toolkit::MilterClient(path, 200ms).transaction(message);
    took = std::chrono::steady_clock::now() - start;
    CHECK(mute.outcome == unit::toolkit::MilterOutcome::NoAnswer);
    CHECK(mute.why == "timeout");
    CHECK(took < 2s);
    CHECK_FALSE(unit::toolkit::read_control(path, 200ms).has_value());  // never closed
    CHECK_FALSE(unit::toolkit::read_control(dir.path("nothing")).has_value());
    close(listener);
}

TEST_CASE("the control socket's counters are read by name") {
    auto counters =
        unit::toolkit::parse_counters(R"({"uptime_seconds":3,"connections_open":0,"requests":18446744073709551615})");
    CHECK(counters.size() == 3);
    CHECK(counters["uptime_seconds"] == 3);
    CHECK(counters["connections_open"] == 0);
    CHECK(counters["requests"] == 18446744073709551615ull);
    CHECK(unit::toolkit::parse_counters(R"({"a":1,"b":"text","c":2})").size() == 1);  // stops at a non-number
    CHECK(unit::toolkit::parse_counters("").empty());
}

namespace {

// Every table, index and trigger of a database, with its SQL.
std::set<std::string> schema_of(const std::string& path) {
    sqlite3* db = nullptr;
    std::set<std::string> schema;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_exec(
            db, "SELECT type || ' ' || name || ': ' || ifnull(sql, '') FROM sqlite_schema",
            [](void* out, int, char** values, char**) {
                static_cast<std::set<std::string>*>(out)->insert(values[0]);
                return 0;
            },
            &schema, nullptr);
    }
    sqlite3_close_v2(db);
    return schema;
}

}  // namespace

TEST_CASE("the dataset, the workload and the driver against a real unitpolicy") {
    unit::test::TempDir dir;
    DatasetSpec spec;
    spec.mailboxes = 500;
    spec.units = 20;
    spec.aliases = 10;
    Dataset data = make_dataset(spec, dir.path("primary.db"), dir.path("units.db"));
    CHECK(data.existing.size() == 500);
    CHECK(data.aliases.size() == 10);
    CHECK(data.unknown.size() == 500);
    CHECK(data.existing.front() == "user0@example.com");
    CHECK_THROWS(make_dataset(spec, dir.path("primary.db"), dir.path("other.db")));  // exists already
    {
        // The content, read back through libunit: every row, valid, where the spec puts it.
        auto primary = unit::Primary::open(dir.path("primary.db"));
        REQUIRE(primary);
        auto problems = primary->check();
        REQUIRE(problems);
        CHECK(problems->empty());
        auto mailboxes = primary->mailboxes(std::nullopt);
        REQUIRE(mailboxes);
        CHECK(mailboxes->size() == 500);
        auto mailbox = primary->mailbox("user137@example.org");  // 137 % 3 == 2, 137 % 20 == 17
        REQUIRE(mailbox);
        CHECK(mailbox->unit == "unit0018");
        auto aliases = primary->aliases();
        REQUIRE(aliases);
        REQUIRE(aliases->size() == 20);
        CHECK(aliases->front().address == "alias0@example.com");
        CHECK(aliases->front().target == "user0@example.com");
        CHECK(aliases->at(1).target == "user1@example.net");
        auto generation = primary->generation();
        REQUIRE(generation);
        CHECK(generation.value() == 3 + 20 + 500 + 2 * 10);  // one bump per row, as the schema's triggers do
    }
    REQUIRE(unit::Primary::init(dir.path("fresh.db")));
    CHECK(schema_of(dir.path("primary.db")) == schema_of(dir.path("fresh.db")));  // indexes and triggers all back
    CHECK(schema_of(dir.path("primary.db")).size() > 10);
    CHECK_THROWS(make_dataset(DatasetSpec{.domains = {"Example.COM"}}, dir.path("upper.db"),
                              dir.path("upper-units.db")));

    auto workload = mixed_workload(data, 0.25, 2000);
    REQUIRE(workload.size() == 2000);
    std::size_t unknown = 0, policy = 0;
    for (const auto& r : workload) {
        unknown += r.exists ? 0 : 1;
        policy += r.protocol == Protocol::Policy ? 1 : 0;
    }
    CHECK(policy == 1000);
    CHECK(unknown > 400);
    CHECK(unknown < 600);
    CHECK(mixed_workload(data, 0.25, 100)[7].key == workload[7].key);  // deterministic

    std::string policy_socket = dir.path("policy"), map_socket = dir.path("map");
    std::string why;
    auto daemon = unit::toolkit::Daemon::start({unit::test::env_or_fail("UNITPOLICY"), "--db", dir.path("units.db"),
                                                "--policy-listen", "unix:" + policy_socket, "--socketmap-listen",
                                                "unix:" + map_socket, "--log", "stderr", "--threads", "2"},
                                               {policy_socket, map_socket}, dir.path("log"), 10s, why);
    REQUIRE_MESSAGE(daemon, why);
    CHECK(daemon->alive());

    std::atomic<std::uint64_t> right{0}, wrong{0};
    DriverOptions options;
    options.policy_socket = policy_socket;
    options.socketmap_socket = map_socket;
    options.connections = 4;
    options.duration = 300ms;
    auto result = drive(options, workload, [&](const Request& request, const Reply& reply, std::chrono::nanoseconds) {
        Verdict expected = request.exists ? Verdict::Accept : Verdict::Reject;
        (classify(request.protocol, reply) == expected ? right : wrong)++;
    });
    CHECK(result.requests > 100);
    CHECK(result.latency.count() == result.requests);
    CHECK(right.load() == result.requests);
    CHECK(wrong.load() == 0);
    CHECK(result.rate() > 0);

    auto sample = ProcessSample::read(daemon->pid());
    REQUIRE(sample);
    CHECK(sample->rss_bytes > 0);
    CHECK(sample->cpu_seconds >= 0);

    CHECK(daemon->stop() == 0);  // SIGTERM: a clean exit
    CHECK_FALSE(daemon->alive());
}

TEST_CASE("the milter client takes whole messages through a real unitmilter") {
    unit::test::TempDir dir;
    Dataset data = make_dataset(DatasetSpec{.mailboxes = 20, .units = 2, .aliases = 1}, dir.path("primary.db"),
                                dir.path("units.db"));
    std::string socket_path = dir.path("milter"), why;
    auto daemon = unit::toolkit::Daemon::start({unit::test::env_or_fail("UNITMILTER"), "--db", dir.path("units.db"),
                                                "--listen", "unix:" + socket_path, "--log", "stderr", "--role", "mx",
                                                "--hostname", "toolkit.example"},
                                               {socket_path}, dir.path("log"), 10s, why);
    REQUIRE_MESSAGE(daemon, why);
    unit::toolkit::MilterClient client(socket_path, 5s);
    unit::toolkit::MilterMessage message;
    message.recipients = {"<" + data.existing.front() + ">"};
    message.headers = {{"From", "<sender@example.net>"}, {"Subject", "toolkit"}};
    auto stamped = client.transaction(message);
    CHECK_MESSAGE(stamped.outcome == unit::toolkit::MilterOutcome::Continue, stamped.why);
    CHECK(stamped.modifications >= 1);  // the route header

    // From outside trusted_networks, more forged routing headers than
    // max_stripped_headers (10): a custom 550 reply, which is a rejection.
    for (int i = 0; i < 11; ++i) message.headers.emplace_back("X-Unit-Route", "hop=1; gen=1; units=unit0001; by=x");
    auto flood = client.transaction(message);
    CHECK_MESSAGE(flood.outcome == unit::toolkit::MilterOutcome::Reject, flood.why);
    CHECK(unit::toolkit::exit_code(daemon->stop(SIGTERM, 30s)) == 0);  // libmilter takes its time
}

TEST_CASE("the launcher waits for sockets or a log line, limits open files, and stops what it started") {
    unit::test::TempDir dir;
    using unit::toolkit::Daemon;
    std::string why;
    unit::toolkit::LaunchOptions options;
    options.open_files = rlimit{50, 60};
    options.truncate_log = true;
    unit::test::write_file(dir.path("log"), "an older run\n");
    auto shell = Daemon::start({"/bin/sh", "-c", "ulimit -n; echo starting: now; exec sleep 30"}, dir.path("log"),
                               options, why);
    REQUIRE_MESSAGE(shell, why);
    REQUIRE_MESSAGE(shell->wait_for_log("starting:", 10s, why), why);
    CHECK(shell->log() == "50\nstarting: now\n");  // truncated first
    CHECK(shell->alive());
    CHECK(unit::toolkit::exit_code(shell->stop()) == 128 + SIGTERM);
    CHECK_FALSE(shell->alive());

    // A program that exits at once: never ready, never logs the line.
    auto early = Daemon::start({"/bin/sh", "-c", "echo bye; exit 3"}, {dir.path("socket")}, dir.path("early"), 10s,
                               why);
    CHECK_FALSE(early);
    CHECK(why.find("exited with status 3 before it was ready") != std::string::npos);
    auto quiet = Daemon::start({"/bin/sh", "-c", "exit 4"}, dir.path("quiet"), {}, why);
    REQUIRE(quiet);
    CHECK_FALSE(quiet->wait_for_log("starting:", 10s, why));
    CHECK(why.find("exited with status 4") != std::string::npos);
    auto slow = Daemon::start({"/bin/sh", "-c", "exec sleep 30"}, {dir.path("socket")}, dir.path("slow"), 100ms, why);
    CHECK_FALSE(slow);
    CHECK(why.find("not ready after 100 ms") != std::string::npos);
}
