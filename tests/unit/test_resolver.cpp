// Resolution: normalisation, outcomes, aliases, staleness, faults.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "test_support.hpp"
#include "unit/primary.hpp"
#include "unit/resolver.hpp"

using namespace unit;
using namespace unit::test;

namespace {

struct World : SampleReplica {
    ResolverOptions options;

    World() { options.address.recipient_delimiter = "+"; }
    Resolution resolve(std::string_view address) { return unit::resolve(*directory, options, address); }
};

std::vector<std::string> target_addresses(const Resolution& r) {
    std::vector<std::string> out;
    for (const auto& t : r.targets) out.push_back(t.address);
    std::sort(out.begin(), out.end());
    return out;
}

const AliasTarget& target(const Resolution& r, std::string_view address) {
    auto it = std::find_if(r.targets.begin(), r.targets.end(),
                           [&](const AliasTarget& t) { return t.address == address; });
    REQUIRE(it != r.targets.end());
    return *it;
}

}  // namespace

TEST_CASE("a mailbox resolves with its unit, route and generation") {
    World w;
    auto r = w.resolve("john.doe@example.com");
    REQUIRE(r.outcome == Outcome::Mailbox);
    REQUIRE(r.destination.has_value());
    CHECK(r.destination->unit.name == "u1");
    CHECK(r.destination->unit.route() == "smtp:[u1.example.com]");
    CHECK(r.destination->mailbox.state == MailboxState::Active);
    CHECK(r.generation == w.primary.generation().value());
    CHECK(!r.trace.empty());
}

TEST_CASE("User+Tag@EXAMPLE.COM. resolves like user@example.com") {
    World w;
    // user@example.com is an alias keeping a copy: compare the mailbox john.doe instead too.
    auto plain = w.resolve("user@example.com");
    auto tagged = w.resolve("User+Tag@EXAMPLE.COM.");
    CHECK(tagged.outcome == plain.outcome);
    CHECK(tagged.address == "user@example.com");
    CHECK(target_addresses(tagged) == target_addresses(plain));
    auto john = w.resolve("John.Doe+lists@Example.Com");
    REQUIRE(john.outcome == Outcome::Mailbox);
    CHECK(john.address == "john.doe@example.com");
}

TEST_CASE("a quoted local part equals its unquoted form") {
    World w;
    auto r = w.resolve("\"john.doe\"@example.com");
    REQUIRE(r.outcome == Outcome::Mailbox);
    CHECK(r.address == "john.doe@example.com");
}

TEST_CASE("a U-label domain matches its A-label") {
    World w;
    auto u = w.resolve("anna@bücher.example");
    auto a = w.resolve("anna@xn--bcher-kva.example");
    REQUIRE(u.outcome == Outcome::Mailbox);
    REQUIRE(a.outcome == Outcome::Mailbox);
    CHECK(u.address == a.address);
}

TEST_CASE("unknown, foreign, disabled, suspended, moving and down") {
    World w;
    CHECK(w.resolve("nobody@example.com").outcome == Outcome::Unknown);
    CHECK(w.resolve("someone@example.org").outcome == Outcome::Foreign);
    CHECK(w.resolve("off@example.com").outcome == Outcome::Disabled);
    auto sus = w.resolve("sus@example.com");
    REQUIRE(sus.outcome == Outcome::Mailbox);
    CHECK(sus.destination->mailbox.state == MailboxState::Suspended);
    auto moving = w.resolve("moving@example.com");
    REQUIRE(moving.outcome == Outcome::Mailbox);
    REQUIRE(moving.destination->moving_to.has_value());
    CHECK(moving.destination->moving_to->name == "u3");
    CHECK(moving.destination->unit.name == "u1");
    auto down = w.resolve("bob@example.com");
    REQUIRE(down.outcome == Outcome::Mailbox);
    CHECK(down.destination->unit.state == UnitState::Draining);
}

TEST_CASE("an extension is tried exact first, then stripped") {
    World w;
    REQUIRE(w.primary.add_mailbox("bob+special@example.com", "u1").ok());
    w.publish();
    auto exact = w.resolve("bob+special@example.com");
    REQUIRE(exact.outcome == Outcome::Mailbox);
    CHECK(exact.destination->unit.name == "u1");
    auto stripped = w.resolve("bob+other@example.com");
    REQUIRE(stripped.outcome == Outcome::Mailbox);
    CHECK(stripped.destination->unit.name == "u3");
    w.options.address.recipient_delimiter.clear();
    CHECK(w.resolve("bob+other@example.com").outcome == Outcome::Unknown);
}

TEST_CASE("aliases expand through nested aliases to mailboxes and external addresses") {
    World w;
    auto team = w.resolve("team@example.com");
    REQUIRE(team.outcome == Outcome::Alias);
    CHECK(target_addresses(team) == std::vector<std::string>{"bob@example.com", "copy@elsewhere.org",
                                                             "dave@example.net", "partner@other.org",
                                                             "user@example.com"});
    CHECK(target(team, "partner@other.org").kind == AliasTarget::Kind::External);
    CHECK(target(team, "dave@example.net").destination->unit.state == UnitState::Down);
    CHECK(target(team, "bob@example.com").destination->unit.name == "u3");
    // user@ is itself an alias keeping a copy: its mailbox and copy@ are reached.
    CHECK(target(team, "user@example.com").kind == AliasTarget::Kind::Mailbox);
}

TEST_CASE("an alias naming itself keeps the copy in its own mailbox") {
    World w;
    auto r = w.resolve("user@example.com");
    REQUIRE(r.outcome == Outcome::Alias);
    CHECK(target_addresses(r) == std::vector<std::string>{"copy@elsewhere.org", "user@example.com"});
    CHECK(target(r, "user@example.com").destination->unit.name == "u1");
}

TEST_CASE("the domain catch-all takes unknown addresses of its domain only") {
    World w;
    auto r = w.resolve("whoever@example.net");
    REQUIRE(r.outcome == Outcome::Alias);
    CHECK(r.address == "@example.net");
    CHECK(target_addresses(r) == std::vector<std::string>{"dave@example.net"});
    CHECK(w.resolve("dave@example.net").outcome == Outcome::Mailbox);
    CHECK(w.resolve("whoever@example.com").outcome == Outcome::Unknown);
}

TEST_CASE("an alias target without a mailbox in a domain with a catch-all goes to the catch-all's targets") {
    World w;
    // As Postfix expands it: whoever@example.net is looked up again in the
    // alias map, where @example.net answers for it.
    REQUIRE(w.primary.add_alias("fwd@example.com", {"whoever@example.net"}).ok());
    REQUIRE(w.primary.add_alias("both@example.com", {"whoever@example.net", "someone@example.net"}).ok());
    w.publish();
    auto r = w.resolve("fwd@example.com");
    REQUIRE(r.outcome == Outcome::Alias);
    CHECK(target_addresses(r) == std::vector<std::string>{"dave@example.net"});
    CHECK(target(r, "dave@example.net").kind == AliasTarget::Kind::Mailbox);
    CHECK(target_addresses(w.resolve("both@example.com")) == std::vector<std::string>{"dave@example.net"});
    // The catch-all's own unknown targets stay unknown, without a loop.
    raw_sql(w.dir.path("primary.db"), "INSERT INTO aliases VALUES ('@example.net', 'nobody@example.net')");
    w.publish();
    auto looped = w.resolve("fwd@example.com");
    REQUIRE(looped.outcome == Outcome::Alias);
    CHECK(target(looped, "nobody@example.net").kind == AliasTarget::Kind::Unknown);
    CHECK(target(looped, "dave@example.net").kind == AliasTarget::Kind::Mailbox);
}

TEST_CASE("dangling and disabled alias targets are reported per target") {
    World w;
    REQUIRE(w.primary.add_alias("list@example.com", {"off@example.com", "gone@example.com"}).ok());
    w.publish();
    auto r = w.resolve("list@example.com");
    REQUIRE(r.outcome == Outcome::Alias);
    CHECK(target(r, "off@example.com").kind == AliasTarget::Kind::Disabled);
    CHECK(target(r, "gone@example.com").kind == AliasTarget::Kind::Unknown);
}

TEST_CASE("an alias cycle is a reported temporary failure, not a hang") {
    World w;
    raw_sql(w.dir.path("primary.db"),
            "INSERT INTO aliases VALUES ('a@example.com', 'b@example.com'),"
            " ('b@example.com', 'c@example.com'), ('c@example.com', 'a@example.com')");
    w.publish();
    auto r = w.resolve("a@example.com");
    CHECK(r.outcome == Outcome::Tempfail);
    CHECK(r.reason.find("alias cycle: a@example.com -> b@example.com -> c@example.com -> a@example.com") !=
          std::string::npos);
    CHECK(r.targets.empty());
}

TEST_CASE("an alias chain deeper than the limit is a temporary failure") {
    World w;
    std::string sql;
    for (int i = 0; i < 10; ++i)
        sql += "INSERT INTO aliases VALUES ('l" + std::to_string(i) + "@example.com', 'l" + std::to_string(i + 1) +
               "@example.com');";
    sql += "INSERT INTO mailboxes (address, unit) VALUES ('l10@example.com', 'u1');";
    raw_sql(w.dir.path("primary.db"), sql);
    w.publish();
    auto deep = w.resolve("l0@example.com");
    CHECK(deep.outcome == Outcome::Tempfail);
    CHECK(deep.reason.find("deeper than 8") != std::string::npos);
    auto shallow = w.resolve("l3@example.com");  // 7 aliases to the mailbox
    REQUIRE(shallow.outcome == Outcome::Alias);
    CHECK(target_addresses(shallow) == std::vector<std::string>{"l10@example.com"});
}

TEST_CASE("an unknown address in a replica older than reject_max_age is unconfirmed") {
    World w;
    raw_sql(w.replica, "UPDATE meta SET value = '2020-01-01T00:00:00Z' WHERE key = 'published_at'");
    w.directory.emplace(DirectoryOptions{w.replica, std::chrono::milliseconds(0), std::chrono::milliseconds(200), {}});
    w.options.reject_max_age = std::chrono::hours(24);
    auto unknown = w.resolve("nobody@example.com");
    CHECK(unknown.outcome == Outcome::Unconfirmed);
    CHECK(unknown.reason.find("reject_max_age") != std::string::npos);
    CHECK(w.resolve("john.doe@example.com").outcome == Outcome::Mailbox);
    w.options.reject_max_age = std::chrono::seconds(0);
    CHECK(w.resolve("nobody@example.com").outcome == Outcome::Unknown);
    w.options.max_replica_age = std::chrono::hours(24 * 7);
    auto stale = w.resolve("john.doe@example.com");
    CHECK(stale.outcome == Outcome::Tempfail);
    CHECK(stale.reason.find("max_replica_age") != std::string::npos);
    CHECK(stale.cause == TempfailCause::Stale);
}

TEST_CASE("a fresh replica answers unknown plainly") {
    World w;
    w.options.reject_max_age = std::chrono::hours(1);
    CHECK(w.resolve("nobody@example.com").outcome == Outcome::Unknown);
}

TEST_CASE("a missing or corrupt database is a temporary failure, never unknown") {
    TempDir dir;
    ResolverOptions options;
    Directory missing(
        DirectoryOptions{dir.path("none.db"), std::chrono::milliseconds(0), std::chrono::milliseconds(200), {}});
    auto r = resolve(missing, options, "nobody@example.com");
    CHECK(r.outcome == Outcome::Tempfail);
    CHECK(r.cause == TempfailCause::NoDatabase);
    CHECK(r.generation == -1);
    CHECK(r.reason.find("none.db") != std::string::npos);

    write_file(dir.path("junk.db"), std::string(8192, '\x01'));
    Directory junk(
        DirectoryOptions{dir.path("junk.db"), std::chrono::milliseconds(0), std::chrono::milliseconds(200), {}});
    CHECK(resolve(junk, options, "nobody@example.com").outcome == Outcome::Tempfail);
}

TEST_CASE("a mailbox on a unit that does not exist is a temporary failure") {
    World w;
    raw_sql(w.dir.path("primary.db"), "INSERT INTO mailboxes (address, unit) VALUES ('lost@example.com', 'u9')");
    w.publish();
    auto r = w.resolve("lost@example.com");
    CHECK(r.outcome == Outcome::Tempfail);
    CHECK(r.reason.find("unknown unit u9") != std::string::npos);
    CHECK(r.cause == TempfailCause::BadData);
}

TEST_CASE("malformed addresses are reported, not looked up") {
    World w;
    for (const char* bad : {"", "no-at-sign", "@example.com", "user@", "a\rb@example.com"}) {
        CAPTURE(bad);
        auto r = w.resolve(bad);
        CHECK(r.outcome == Outcome::Malformed);
        CHECK(!r.reason.empty());
    }
    CHECK(w.resolve(std::string(400, 'a') + "@example.com").outcome == Outcome::Malformed);
}

TEST_CASE("outcomes have stable names") {
    CHECK(to_string(Outcome::Unconfirmed) == "unconfirmed");
    CHECK(to_string(Outcome::Tempfail) == "tempfail");
}

TEST_CASE("domains are served, not served, malformed or a temporary failure") {
    World w;
    auto served = resolve_domain(*w.directory, w.options, "Example.COM.");
    CHECK(served.outcome == DomainOutcome::Served);
    CHECK(served.domain == "example.com");
    CHECK(served.generation == w.primary.generation().value());
    CHECK(resolve_domain(*w.directory, w.options, "bücher.example").outcome == DomainOutcome::Served);
    CHECK(resolve_domain(*w.directory, w.options, "example.org").outcome == DomainOutcome::NotServed);
    CHECK(resolve_domain(*w.directory, w.options, "bad domain").outcome == DomainOutcome::Malformed);

    TempDir empty;
    Directory missing(
        DirectoryOptions{empty.path("none.db"), std::chrono::milliseconds(0), std::chrono::milliseconds(200), {}});
    auto broken = resolve_domain(missing, w.options, "example.com");
    CHECK(broken.outcome == DomainOutcome::Tempfail);
    CHECK(!broken.reason.empty());
}

TEST_CASE("without the trace, every outcome is the same and nothing is traced") {
    World w;
    ResolverOptions untraced = w.options;
    untraced.trace = false;
    for (const char* address : {"john.doe@example.com", "john.doe+tag@example.com", "team@example.com",
                                "nobody@example.com", "anyone@example.net", "x@foreign.example", "not an address"}) {
        CAPTURE(address);
        Resolution traced = w.resolve(address);
        Resolution plain = resolve(*w.directory, untraced, address);
        CHECK(plain.outcome == traced.outcome);
        CHECK(plain.address == traced.address);
        CHECK(plain.generation == traced.generation);
        CHECK(plain.reason == traced.reason);
        CHECK(target_addresses(plain) == target_addresses(traced));
        CHECK(plain.destination.has_value() == traced.destination.has_value());
        CHECK(!traced.trace.empty());
        CHECK(plain.trace.empty());
    }
}

namespace {

// n alias rows "big@example.com" -> m0..m(n-1)@example.com, each a mailbox on u1.
void add_big_alias(const std::string& primary, int n) {
    std::string sql = "BEGIN;";
    for (int i = 0; i < n; ++i) {
        auto m = "m" + std::to_string(i) + "@example.com";
        sql += "INSERT INTO mailboxes (address, unit) VALUES ('" + m + "', 'u1');";
        sql += "INSERT INTO aliases VALUES ('big@example.com', '" + m + "');";
    }
    raw_sql(primary, sql + "COMMIT;");
}

}  // namespace

TEST_CASE("alias expansion past max_alias_targets is an alias_limit temporary failure") {
    World w;
    add_big_alias(w.dir.path("primary.db"), 1001);
    w.publish();
    auto r = w.resolve("big@example.com");
    CHECK(r.outcome == Outcome::Tempfail);
    CHECK(r.cause == TempfailCause::AliasLimit);
    CHECK(r.reason.find("max_alias_targets 1000") != std::string::npos);
    CHECK(r.reason.find("big@example.com") != std::string::npos);
    CHECK(r.targets.empty());
    CHECK(to_string(r.cause) == "alias_limit");
    w.options.max_alias_targets = 1001;  // the rows visited, the alias's own included
    auto fits = w.resolve("big@example.com");
    REQUIRE(fits.outcome == Outcome::Alias);
    CHECK(fits.targets.size() == 1001);
}

TEST_CASE("rows of nested aliases count toward the limit") {
    World w;
    // team@ -> sales@ (3 rows) + dave@: 2 + 3 rows, and user@ (reached
    // through sales@) 2 more: 7.
    w.options.max_alias_targets = 6;
    auto r = w.resolve("team@example.com");
    CHECK(r.outcome == Outcome::Tempfail);
    CHECK(r.cause == TempfailCause::AliasLimit);
    w.options.max_alias_targets = 7;
    CHECK(w.resolve("team@example.com").outcome == Outcome::Alias);
}

TEST_CASE("a 5,000-target alias under a 10,000 limit resolves with every target") {
    World w;
    add_big_alias(w.dir.path("primary.db"), 5000);
    w.publish();
    w.options.max_alias_targets = 10000;
    w.options.trace = false;
    auto r = w.resolve("big@example.com");
    REQUIRE(r.outcome == Outcome::Alias);
    REQUIRE(r.targets.size() == 5000);
    CHECK(std::all_of(r.targets.begin(), r.targets.end(),
                      [](const AliasTarget& t) { return t.kind == AliasTarget::Kind::Mailbox; }));
    CHECK(target_addresses(r).front() == "m0@example.com");
}

TEST_CASE("a DAG of nested aliases is expanded once per alias, not once per path") {
    // dag@ names 10 aliases, each naming all 10 of the next level, 7 levels
    // (8 deep with dag@), the last level naming one mailbox each:
    // 10 + 6 x 100 + 10 = 620 rows, but 10^7 paths to expand one by one.
    World w;
    std::string sql = "BEGIN;";
    auto name = [](int level, int i) { return "l" + std::to_string(level) + "x" + std::to_string(i) + "@example.com"; };
    for (int i = 0; i < 10; ++i) sql += "INSERT INTO aliases VALUES ('dag@example.com', '" + name(0, i) + "');";
    for (int level = 0; level < 6; ++level)
        for (int i = 0; i < 10; ++i)
            for (int j = 0; j < 10; ++j)
                sql += "INSERT INTO aliases VALUES ('" + name(level, i) + "', '" + name(level + 1, j) + "');";
    for (int i = 0; i < 10; ++i) {
        auto m = "leaf" + std::to_string(i) + "@example.com";
        sql += "INSERT INTO mailboxes (address, unit) VALUES ('" + m + "', 'u1');";
        sql += "INSERT INTO aliases VALUES ('" + name(6, i) + "', '" + m + "');";
    }
    raw_sql(w.dir.path("primary.db"), sql + "COMMIT;");
    w.publish();
    auto r = w.resolve("dag@example.com");
    REQUIRE(r.outcome == Outcome::Alias);
    CHECK(target_addresses(r).size() == 10);
    CHECK(target(r, "leaf3@example.com").kind == AliasTarget::Kind::Mailbox);
    // The same work limit: 620 rows pass the default, not a limit of 600.
    w.options.max_alias_targets = 600;
    CHECK(w.resolve("dag@example.com").cause == TempfailCause::AliasLimit);
}

namespace {

// A World whose replica holds a bad value written behind unitctl's back.
Resolution resolve_with_bad_value(const std::string& sql, const std::string& address,
                                  const std::string& hold_transport = "unithold") {
    World w;
    raw_sql(w.replica, sql);
    w.directory.emplace(DirectoryOptions{w.replica, std::chrono::milliseconds(0), std::chrono::milliseconds(200), {}});
    w.options.hold_transport = hold_transport;
    return w.resolve(address);
}

}  // namespace

TEST_CASE("a unit's bad nexthop or transport is bad data for the addresses that need it") {
    struct Case {
        std::string sql, shown;
    };
    const Case cases[] = {
        {"UPDATE units SET nexthop = 'a' || char(10) || 'b' WHERE name = 'u1'", "a\\x0ab"},
        {"UPDATE units SET nexthop = 'a' || char(0) || 'b' WHERE name = 'u1'", "a\\x00b"},
        {"UPDATE units SET nexthop = '[u1.example.com] x' WHERE name = 'u1'", "[u1.example.com] x"},
        {"UPDATE units SET nexthop = 'a,b' WHERE name = 'u1'", "a,b"},
        {"UPDATE units SET transport = 'error' WHERE name = 'u1'", "error"},
        {"UPDATE units SET transport = 'discard' WHERE name = 'u1'", "discard"},
        {"UPDATE units SET transport = 'unithold' WHERE name = 'u1'", "unithold"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.sql);
        for (const char* address :
             {"john.doe@example.com", "off@example.com", "user@example.com", "sales@example.com"}) {
            CAPTURE(address);
            auto r = resolve_with_bad_value(c.sql, address);
            CHECK(r.outcome == Outcome::Tempfail);
            CHECK(r.cause == TempfailCause::BadData);
            CHECK(r.reason.find("unit u1: bad ") != std::string::npos);
            CHECK(r.reason.find("\"" + c.shown + "\"") != std::string::npos);
            CHECK(r.reason.find('\n') == std::string::npos);
            CHECK(r.reason.find('\0') == std::string::npos);
            CHECK(!r.destination.has_value());
        }
        // Addresses that do not need u1 are not affected.
        CHECK(resolve_with_bad_value(c.sql, "bob@example.com").outcome == Outcome::Mailbox);
        CHECK(resolve_with_bad_value(c.sql, "anyone@example.net").outcome == Outcome::Alias);
    }
    // The hold transport is the daemon's: another name is a unit's own transport.
    const std::string sql = "UPDATE units SET transport = 'parked' WHERE name = 'u1'";
    CHECK(resolve_with_bad_value(sql, "john.doe@example.com").outcome == Outcome::Mailbox);
    auto held = resolve_with_bad_value(sql, "john.doe@example.com", "parked");
    CHECK(held.outcome == Outcome::Tempfail);
    CHECK(held.cause == TempfailCause::BadData);
    CHECK(held.reason.find("the hold transport") != std::string::npos);
}

TEST_CASE("an alias target that is not exactly one address is bad data") {
    for (std::string bad : {"a@x,b@y", "a@x b@y", "<a@x>"}) {
        CAPTURE(bad);
        auto r = resolve_with_bad_value("INSERT INTO aliases VALUES ('list@example.com', '" + bad + "')",
                                        "list@example.com");
        CHECK(r.outcome == Outcome::Tempfail);
        CHECK(r.cause == TempfailCause::BadData);
        CHECK(r.reason.find("alias list@example.com: bad alias target \"" + bad + "\"") != std::string::npos);
        CHECK(r.targets.empty());
        // Nested: the alias naming it fails too.
        auto nested = resolve_with_bad_value("INSERT INTO aliases VALUES ('list@example.com', '" + bad +
                                                 "'), ('sales@example.com', 'list@example.com')",
                                             "team@example.com");
        CHECK(nested.outcome == Outcome::Tempfail);
        CHECK(nested.cause == TempfailCause::BadData);
    }
}

TEST_CASE("an alias with dead targets still lists them, for the interfaces to judge") {
    World w;
    REQUIRE(w.primary.add_alias("deadlist@example.com", {"off@example.com"}).ok());
    w.publish();
    auto r = w.resolve("deadlist@example.com");
    REQUIRE(r.outcome == Outcome::Alias);
    REQUIRE(r.targets.size() == 1);
    CHECK(r.targets[0].kind == AliasTarget::Kind::Disabled);
}

TEST_CASE("a lookup past lookup_timeout is a tempfail with cause lookup_timeout, within the bound") {
    World w;
    DirectoryOptions o{w.replica, std::chrono::milliseconds(0), std::chrono::milliseconds(200), {}};
    o.lookup_timeout = std::chrono::milliseconds(250);
    w.directory.emplace(o);
    // The replica changed in place after validation into one whose mailboxes
    // is a view over a recursive CTE (thirty million rows per lookup).
    raw_sql(w.replica,
            "DROP TABLE mailboxes; CREATE VIEW mailboxes (address, unit, state, moving_to) AS"
            " WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000000)"
            " SELECT 'x' || i || '@example.com', 'u1', 'active', NULL FROM n;");
    auto started = std::chrono::steady_clock::now();
    auto r = w.resolve("john.doe@example.com");
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    MESSAGE("tempfail after ", took.count(), " ms");
    CHECK(r.outcome == Outcome::Tempfail);
    CHECK(r.cause == TempfailCause::LookupTimeout);
    CHECK(to_string(r.cause) == "lookup_timeout");
    CHECK(r.reason.find("lookup_timeout") != std::string::npos);
    CHECK(took < std::chrono::milliseconds(750));
    // The next request gets its own bound, and what needs no mailbox answers.
    CHECK(w.resolve("john.doe@example.com").cause == TempfailCause::LookupTimeout);
    CHECK(w.resolve("someone@example.org").outcome == Outcome::Foreign);
}

TEST_CASE("a published_at in the future counts as older than every limit: no 5xx, tempfail past max_replica_age") {
    World w;
    raw_sql(w.replica, "UPDATE meta SET value = '2099-01-01T00:00:00Z' WHERE key = 'published_at';");
    w.reopen();
    auto r = w.resolve("nobody@example.com");
    CHECK(r.outcome == Outcome::Unconfirmed);
    CHECK(r.reason.find("unknown age") != std::string::npos);
    CHECK(w.resolve("john.doe@example.com").outcome == Outcome::Mailbox);
    w.options.max_replica_age = std::chrono::hours(24 * 365);
    auto stale = w.resolve("john.doe@example.com");
    CHECK(stale.outcome == Outcome::Tempfail);
    CHECK(stale.cause == TempfailCause::Stale);
}

TEST_CASE("a published_at a little in the future (clock skew) is trusted") {
    World w;
    std::time_t soon = std::time(nullptr) + 120;
    std::tm tm{};
    gmtime_r(&soon, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    raw_sql(w.replica, std::string("UPDATE meta SET value = '") + stamp + "' WHERE key = 'published_at';");
    w.reopen();
    CHECK(w.resolve("nobody@example.com").outcome == Outcome::Unknown);
}
