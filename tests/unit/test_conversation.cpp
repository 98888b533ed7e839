// One connection's protocol logic over a real database, without sockets.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "policyd/conversation.hpp"
#include "test_support.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::policyd;
using namespace unit::test;

namespace {

std::string policy_request(std::string_view recipient, std::string_view state = "RCPT") {
    return fmt::format(
        "request=smtpd_access_policy\nprotocol_state={}\nprotocol_name=ESMTP\nclient_address=192.0.2.1\n"
        "recipient={}\nsender=a@b.example\nqueue_id=\ninstance=1.2.3\n\n",
        state, recipient);
}

std::string netstring(std::string_view s) { return fmt::format("{}:{},", s.size(), s); }

struct Fixture {
    TempDir dir;
    Stats stats;
    std::unique_ptr<Worker> worker;

    explicit Fixture(bool with_database = true) {
        if (with_database) {
            auto primary = make_sample_primary(dir.path("primary.db"));
            REQUIRE(primary.publish(dir.path("units.db")).ok());
        }
        auto settings = std::make_shared<Settings>();
        settings->db = dir.path("units.db");
        settings->resolver.address.recipient_delimiter = "+";
        worker = std::make_unique<Worker>(settings, stats, nullptr);
    }
};

}  // namespace

// What the conversations answer, request by request and stream by stream,
// is in the golden transcripts (tests/golden); here, what they count, which
// no client sees.
TEST_CASE("a policy conversation counts its requests, those that ask no check apart") {
    Fixture f;
    const std::string long_local(330, 'a');
    const std::string in = policy_request("user+x@example.com") + policy_request("nobody@example.com", "DATA") +
                           policy_request(long_local + "@example.com") + policy_request("\"\"@Example.COM") +
                           policy_request(long_local + "@example.org") + policy_request("user@bad..domain");
    PolicyConversation c(*f.worker);
    std::string out;
    REQUIRE(c.feed(in, out));
    CHECK(f.stats.policy_requests == 6);
    CHECK(f.stats.verdicts[static_cast<int>(VerdictKind::NotRcpt)] == 1);
    CHECK(f.stats.outcomes[static_cast<int>(Outcome::Malformed)] == 4);
    CHECK(f.stats.protocol_errors == 0);
    CHECK_FALSE(c.feed("recipient=" + std::string(9000, 'a') + "\n", out));
    CHECK(f.stats.protocol_errors == 1);
}

TEST_CASE("without a database every lookup is counted as a tempfail of cause no database") {
    Fixture f(false);
    PolicyConversation c(*f.worker);
    std::string out;
    REQUIRE(c.feed(policy_request("nobody@example.com"), out));
    SocketmapConversation m(*f.worker);
    REQUIRE(m.feed(netstring("recipient nobody@example.com") + netstring("domain example.com"), out));
    CHECK(f.stats.tempfail_causes[static_cast<int>(TempfailCause::NoDatabase)] == 3);
}

TEST_CASE("Postfix's partial keys are counted apart from malformed input") {
    for (bool with_database : {true, false}) {
        CAPTURE(with_database);
        Fixture f(with_database);
        SocketmapConversation c(*f.worker);
        std::string out;
        REQUIRE(c.feed(netstring("alias @example.com") + netstring("alias user") +
                           netstring("transportmx example.com") + netstring("transportmx .example.com") +
                           netstring("recipient @example.com") + netstring("recipient user@"),
                       out));
        CHECK(f.stats.socketmap_partial_keys == 5);
        CHECK(f.stats.outcomes[static_cast<int>(Outcome::Malformed)] == 1);  // "user@" only
        CHECK(f.stats.socketmap_requests == 6);
    }
}

TEST_CASE("a broken socketmap stream is counted as a protocol error") {
    Fixture f;
    SocketmapConversation c(*f.worker);
    std::string out;
    CHECK(c.feed(netstring("domain example.com") + "5:abc", out));  // incomplete: waits for more
    CHECK_FALSE(c.feed("xyz;", out));
    CHECK(f.stats.protocol_errors == 1);
}

TEST_CASE("a lookup past lookup_timeout answers the tempfail action within the bound, counted by cause") {
    Fixture f;
    auto settings = std::make_shared<Settings>();
    settings->db = f.dir.path("units.db");
    settings->lookup_timeout = std::chrono::milliseconds(300);
    f.worker = std::make_unique<Worker>(settings, f.stats, nullptr);
    raw_sql(settings->db,
            "DROP TABLE mailboxes; CREATE VIEW mailboxes (address, unit, state, moving_to) AS"
            " WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000000)"
            " SELECT 'x' || i || '@example.com', 'u1', 'active', NULL FROM n;");
    PolicyConversation c(*f.worker);
    std::string out;
    auto started = std::chrono::steady_clock::now();
    REQUIRE(c.feed(policy_request("john.doe@example.com"), out));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    MESSAGE("answered after ", took.count(), " ms");
    CHECK(out == "action=451 4.3.0 Directory temporarily unavailable\n\n");
    CHECK(took < std::chrono::milliseconds(900));
    CHECK(f.stats.tempfail_causes[static_cast<std::size_t>(TempfailCause::LookupTimeout)] == 1);
    CHECK(stats_json(f.stats).find("\"tempfail_lookup_timeout\":1") != std::string::npos);
    CHECK(stats_prometheus(f.stats).find("cause=\"lookup_timeout\"") != std::string::npos);
}

TEST_CASE("an idle worker's tick lets go of replaced replicas: no descriptor left on a deleted file") {
    TempDir dir;
    auto primary = make_sample_primary(dir.path("primary.db"));
    REQUIRE(primary.publish(dir.path("units.db")).ok());
    auto settings = std::make_shared<Settings>();
    settings->db = dir.path("units.db");
    Stats stats;
    auto cache = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
    Worker worker(settings, stats, cache, std::chrono::milliseconds(100));
    PolicyConversation c(worker);
    std::string out;
    REQUIRE(c.feed(policy_request("user@example.com"), out));  // the snapshot is open and read
    for (int i = 0; i < 3; ++i) {
        REQUIRE(primary.add_mailbox(fmt::format("new{}@example.com", i), "u1").ok());
        REQUIRE(primary.publish(dir.path("staging.db")).ok());
        REQUIRE(std::rename(dir.path("staging.db").c_str(), dir.path("units.db").c_str()) == 0);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (worker.directory().status().switches < static_cast<std::uint64_t>(i + 1) &&
               std::chrono::steady_clock::now() < deadline) {
            worker.tick();  // as the server's ticker, every snapshot_hold, with no request
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    CHECK(worker.directory().status().switches == 3);
    int deleted = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        auto target = std::filesystem::read_symlink(entry.path(), ec).string();
        if (!ec && target.rfind(dir.root(), 0) == 0 && target.find(" (deleted)") != std::string::npos) ++deleted;
    }
    CHECK(deleted == 0);
}
