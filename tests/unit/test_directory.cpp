// The replica reader: opening, noticing replacements, refusing bad files.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "test_support.hpp"
#include "unit/directory.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::test;

namespace {

DirectoryOptions options_for(const std::string& path) {
    DirectoryOptions o;
    o.path = path;
    o.check_interval = std::chrono::milliseconds(100);
    return o;
}

std::int64_t served_generation(Directory& d) {
    auto reader = d.read();
    REQUIRE_MESSAGE(reader.ok(), reader.error().message);
    return reader->generation();
}

// Publishes the primary to `out` through a temporary name and a rename,
// as rsync does.
void install(Primary& primary, const std::string& staging, const std::string& out) {
    auto published = primary.publish(staging);
    REQUIRE_MESSAGE(published.ok(), published.error().message);
    REQUIRE(std::rename(staging.c_str(), out.c_str()) == 0);
}

struct Replica {
    TempDir dir;
    std::string primary_path = dir.path("primary.db");
    std::string replica = dir.path("units.db");
    Primary primary = make_sample_primary(primary_path);
    Replica() { install(primary, dir.path("staging.db"), replica); }
};

}  // namespace

TEST_CASE("a missing database never opened makes reads unavailable") {
    TempDir dir;
    Directory d(options_for(dir.path("none.db")));
    auto reader = d.read();
    REQUIRE(!reader.ok());
    CHECK(reader.error().code == Errc::Unavailable);
    CHECK(!d.status().serving);
    CHECK(d.status().problem.find("none.db") != std::string::npos);
}

TEST_CASE("a published snapshot is served with its generation and publish time") {
    Replica r;
    Directory d(options_for(r.replica));
    REQUIRE(d.status().serving);
    CHECK(d.status().problem.empty());
    CHECK(served_generation(d) == r.primary.generation().value());
    REQUIRE(d.status().snapshot.published_at.has_value());
    auto age = d.age_seconds(std::time(nullptr));
    REQUIRE(age.has_value());
    CHECK(*age >= 0);
    CHECK(*age < 60);
    auto reader = d.read();
    REQUIRE(reader.ok());
    CHECK(reader->domain_served("example.com").value());
    CHECK(!reader->domain_served("example.org").value());
    auto mailbox = reader->mailbox("moving@example.com");
    REQUIRE(mailbox.ok());
    REQUIRE(mailbox->has_value());
    CHECK((*mailbox)->state == MailboxState::Moving);
    CHECK((*mailbox)->moving_to == "u3");
    CHECK(!reader->mailbox("nobody@example.com")->has_value());
    CHECK(reader->unit("u2")->value().state == UnitState::Down);
    CHECK(reader->alias_targets("team@example.com").value() ==
          std::vector<std::string>{"dave@example.net", "sales@example.com"});
}

TEST_CASE("a replacement by rename is picked up within the check interval") {
    Replica r;
    Directory d(options_for(r.replica));
    auto first = served_generation(d);
    REQUIRE(r.primary.add_mailbox("new@example.com", "u1").ok());
    install(r.primary, r.dir.path("staging.db"), r.replica);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (served_generation(d) == first && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(served_generation(d) > first);
    CHECK(d.read()->mailbox("new@example.com")->has_value());
    CHECK(d.status().switches == 1);
    CHECK(d.status().refusals == 0);
}

TEST_CASE("bad replacements are refused and the last good snapshot keeps answering") {
    Replica r;
    Directory d(options_for(r.replica));
    auto good = served_generation(d);
    std::string bytes = read_file(r.replica);
    REQUIRE(bytes.size() > 8192);

    struct Bad {
        const char* what;
        std::string contents;
        const char* reason;
    };
    std::mt19937 rng(42);
    std::string random(bytes.size(), '\0');
    for (auto& c : random) c = static_cast<char>(rng());
    std::string truncated = bytes.substr(0, bytes.size() / 2);
    std::string zeroed = bytes;  // header intact, pages zeroed: corrupt b-trees
    std::fill(zeroed.begin() + 4096, zeroed.end(), '\0');
    const Bad cases[] = {
        {"truncated copy", truncated, ""},
        {"random bytes", random, "not a database"},
        {"zeroed pages", zeroed, ""},
        {"empty file", "", "not a unitpolicy database"},
    };
    std::uint64_t refusals = 0;
    for (const auto& bad : cases) {
        CAPTURE(bad.what);
        write_file(r.dir.path("bad.db"), bad.contents);
        REQUIRE(std::rename(r.dir.path("bad.db").c_str(), r.replica.c_str()) == 0);
        d.refresh(true);
        CHECK(d.status().refusals == ++refusals);
        CHECK(d.status().serving);
        CHECK(!d.status().problem.empty());
        CHECK(d.status().problem.find(bad.reason) != std::string::npos);
        CHECK(served_generation(d) == good);
        CHECK(d.read()->mailbox("user@example.com")->has_value());
    }
    // A good file after the bad ones is taken again.
    install(r.primary, r.dir.path("staging.db"), r.replica);
    d.refresh(true);
    CHECK(d.status().problem.empty());
    CHECK(d.status().switches == 1);
}

TEST_CASE("an unsupported schema version is refused") {
    Replica r;
    Directory d(options_for(r.replica));
    REQUIRE(d.status().serving);
    REQUIRE(r.primary.publish(r.dir.path("next.db")).ok());
    raw_sql(r.dir.path("next.db"), "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
    REQUIRE(std::rename(r.dir.path("next.db").c_str(), r.replica.c_str()) == 0);
    d.refresh(true);
    CHECK(d.status().refusals == 1);
    CHECK(d.status().problem.find("schema version 2 is not supported") != std::string::npos);

    Directory fresh(options_for(r.replica));
    CHECK(!fresh.status().serving);
    CHECK(fresh.read().error().code == Errc::Unavailable);
}

TEST_CASE("a deleted database keeps serving the snapshot that is open, and a new one is taken") {
    Replica r;
    Directory d(options_for(r.replica));
    auto good = served_generation(d);
    REQUIRE(std::remove(r.replica.c_str()) == 0);
    d.refresh(true);
    CHECK(d.status().serving);
    CHECK(d.status().problem.find("No such file") != std::string::npos);
    CHECK(served_generation(d) == good);
    install(r.primary, r.dir.path("staging.db"), r.replica);
    d.refresh(true);
    CHECK(d.status().problem.empty());
}

TEST_CASE("a database that appears after start is taken") {
    TempDir dir;
    Directory d(options_for(dir.path("units.db")));
    CHECK(!d.read().ok());
    auto primary = make_sample_primary(dir.path("primary.db"));
    install(primary, dir.path("staging.db"), dir.path("units.db"));
    d.refresh(true);
    CHECK(d.status().serving);
    CHECK(d.read().ok());
}

TEST_CASE("a WAL database written in place is read at its newest commit") {
    TempDir dir;
    auto primary = make_sample_primary(dir.path("primary.db"));
    Directory d(options_for(dir.path("primary.db")));
    auto before = served_generation(d);
    REQUIRE(primary.add_mailbox("late@example.com", "u1").ok());
    CHECK(served_generation(d) > before);
    CHECK(d.read()->mailbox("late@example.com")->has_value());
    CHECK(d.status().switches == 0);
}

TEST_CASE("directories sharing a validation cache remember a refused file") {
    Replica r;
    auto cache = std::make_shared<ValidationCache>();
    auto o = options_for(r.replica);
    o.validation = cache;
    Directory a(o);
    REQUIRE(a.status().serving);
    REQUIRE(cache->verdict(a.status().snapshot.file) == std::optional<Verdict>(Verdict{}));
    write_file(r.dir.path("bad.db"), std::string(10000, 'z'));
    REQUIRE(std::rename(r.dir.path("bad.db").c_str(), r.replica.c_str()) == 0);
    a.refresh(true);
    Directory b(o);
    CHECK(!b.status().serving);
    CHECK(b.status().problem == a.status().problem);
}

TEST_CASE("a snapshot renamed over a replica written in WAL mode waits until the old WAL is gone") {
    Replica r;
    auto cache = std::make_shared<ValidationCache>();
    auto o = options_for(r.replica);
    o.validation = cache;
    Directory d(o);
    REQUIRE(d.status().serving);
    {
        // The replica written in place in WAL mode, its writer still open: the WAL keeps its frames.
        auto writer = Primary::init(r.replica);
        REQUIRE(writer.ok());
        REQUIRE(writer->add_mailbox("inplace@example.com", "u1").ok());
        CHECK(d.read()->mailbox("inplace@example.com")->has_value());

        REQUIRE(r.primary.add_mailbox("next@example.com", "u1").ok());
        install(r.primary, r.dir.path("staging.db"), r.replica);
        d.refresh(true);
        CHECK(d.status().refusals == 1);
        CHECK(d.status().problem.find("stale WAL") != std::string::npos);
        CHECK(d.read()->mailbox("inplace@example.com")->has_value());  // the last good snapshot
        CHECK(!d.read()->mailbox("next@example.com")->has_value());

        // Read through the old WAL, the new file would show the old one's pages.
        Directory fresh(options_for(r.replica));
        CHECK(!fresh.status().serving);
        auto refused = fresh.read();
        REQUIRE(!refused.ok());
        CHECK(refused.error().code == Errc::Unavailable);
    }
    for (const char* suffix : {"-wal", "-shm"}) std::remove((r.replica + suffix).c_str());
    d.refresh(true);
    CHECK(d.status().problem.empty());
    CHECK(d.status().switches == 1);
    CHECK(d.read()->mailbox("next@example.com")->has_value());
    CHECK(cache->verdict(d.status().snapshot.file) == std::optional<Verdict>(Verdict{}));  // the file itself was good
}

TEST_CASE("after a wait for a lock runs out, lookups fail at once for the next busy_timeout") {
    using namespace std::chrono;
    Replica r;
    auto o = options_for(r.replica);
    o.busy_timeout = milliseconds(200);
    Directory d(o);
    REQUIRE(d.status().serving);
    sqlite3* locker = nullptr;
    REQUIRE(sqlite3_open(r.replica.c_str(), &locker) == SQLITE_OK);
    REQUIRE(sqlite3_exec(locker, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);

    auto timed_lookup = [&d](bool& ok) {
        auto start = steady_clock::now();
        auto reader = d.read();
        ok = reader.ok() && reader->mailbox("user@example.com").ok();
        return duration_cast<milliseconds>(steady_clock::now() - start);
    };
    bool ok = true;
    CHECK(timed_lookup(ok) >= milliseconds(190));  // the first waits the whole busy_timeout
    CHECK(!ok);
    CHECK(timed_lookup(ok) < milliseconds(100));   // the next ones do not queue behind it
    CHECK(!ok);
    std::this_thread::sleep_for(milliseconds(250));
    CHECK(timed_lookup(ok) >= milliseconds(190));  // later, one waits again
    CHECK(!ok);

    REQUIRE(sqlite3_exec(locker, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(locker);
    CHECK(timed_lookup(ok) < milliseconds(100));   // released: answered at once
    CHECK(ok);
}

TEST_CASE("with a snapshot hold, lookups share one snapshot until the hold runs out") {
    Replica r;
    auto o = options_for(r.replica);
    o.snapshot_hold = std::chrono::milliseconds(300);
    Directory d(o);
    auto writer = Primary::init(r.replica);  // written in place, in WAL mode
    REQUIRE(writer.ok());
    const auto before = served_generation(d);
    REQUIRE(writer->add_mailbox("held@example.com", "u1").ok());
    CHECK(!d.read()->mailbox("held@example.com")->has_value());  // the held snapshot
    CHECK(served_generation(d) == before);
    std::this_thread::sleep_for(std::chrono::milliseconds(350));
    CHECK(d.read()->mailbox("held@example.com")->has_value());
    CHECK(served_generation(d) > before);
}

namespace {

// A second connection to the replica that writes in rollback-journal mode
// and does not wait for locks.
struct RollbackWriter {
    sqlite3* db = nullptr;
    explicit RollbackWriter(const std::string& path) {
        REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    }
    ~RollbackWriter() { sqlite3_close_v2(db); }
    int exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }
};

}  // namespace

TEST_CASE("a held snapshot is let go once the hold runs out, busy or idle") {
    Replica r;
    auto o = options_for(r.replica);
    o.snapshot_hold = std::chrono::milliseconds(100);
    Directory d(o);
    served_generation(d);  // holds a read transaction: a shared lock
    RollbackWriter w(r.replica);
    CHECK(w.exec("BEGIN EXCLUSIVE") == SQLITE_BUSY);
    d.end_expired_read();  // too early: still held
    CHECK(w.exec("BEGIN EXCLUSIVE") == SQLITE_BUSY);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    d.end_expired_read();
    CHECK(w.exec("BEGIN EXCLUSIVE") == SQLITE_OK);
    CHECK(w.exec("COMMIT") == SQLITE_OK);
}

TEST_CASE("while a rollback-journal writer waits, reads are not held") {
    Replica r;
    auto o = options_for(r.replica);
    o.snapshot_hold = std::chrono::seconds(10);
    Directory d(o);
    RollbackWriter w(r.replica);
    REQUIRE(w.exec("BEGIN IMMEDIATE") == SQLITE_OK);  // RESERVED: it will want EXCLUSIVE to commit
    REQUIRE(w.exec("INSERT INTO mailboxes (address, unit) VALUES ('late@example.com', 'u1')") == SQLITE_OK);
    CHECK(!d.read()->mailbox("late@example.com")->has_value());  // that Reader ended its transaction
    CHECK(w.exec("COMMIT") == SQLITE_OK);  // no reader in the way
    CHECK(d.read()->mailbox("late@example.com")->has_value());
}

TEST_CASE("in the background mode a replacement is validated off the reading thread, and all readers switch") {
    Replica r;
    auto cache = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
    auto o = options_for(r.replica);
    o.validation = cache;
    o.check_interval = std::chrono::hours(1);  // only forced checks, and the verdict's arrival
    Directory d(o);
    REQUIRE(d.status().serving);  // nothing served yet: validated in place
    const auto first = served_generation(d);
    Directory other(o);  // another thread's reader, never forced to check
    REQUIRE(served_generation(other) == first);

    auto wait_for_verdict = [&] {
        int error = 0;
        auto id = file_id(r.replica, error);
        REQUIRE(id.has_value());
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!cache->verdict(*id) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return cache->verdict(*id);
    };

    REQUIRE(r.primary.add_mailbox("new@example.com", "u1").ok());
    install(r.primary, r.dir.path("staging.db"), r.replica);
    d.refresh(true);  // starts the validation, keeps serving
    CHECK(served_generation(d) == first);
    CHECK(wait_for_verdict() == std::optional<Verdict>(Verdict{}));
    CHECK(served_generation(d) > first);  // read() switches once the verdict is in
    CHECK(d.status().switches == 1);
    CHECK(served_generation(other) == served_generation(d));  // at its first read after the verdict
    CHECK(other.status().switches == 1);

    const auto second = served_generation(d);
    write_file(r.dir.path("bad.db"), std::string(10000, 'z'));
    REQUIRE(std::rename(r.dir.path("bad.db").c_str(), r.replica.c_str()) == 0);
    d.refresh(true);
    auto verdict = wait_for_verdict();
    REQUIRE(verdict.has_value());
    CHECK(!verdict->good());
    d.refresh();
    CHECK(d.status().refusals == 1);
    CHECK(!d.status().problem.empty());
    CHECK(served_generation(d) == second);
    CHECK(served_generation(other) == second);
    CHECK(other.status().refusals == 1);
    CHECK(!other.status().problem.empty());
}
