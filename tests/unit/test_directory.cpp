// The replica reader: opening, noticing replacements, refusing bad files.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "test_support.hpp"
#include "unit/directory.hpp"
#include "unit/primary.hpp"
#include "unit/resolver.hpp"

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
    CHECK(timed_lookup(ok) < milliseconds(100));  // the next ones do not queue behind it
    CHECK(!ok);
    std::this_thread::sleep_for(milliseconds(250));
    CHECK(timed_lookup(ok) >= milliseconds(190));  // later, one waits again
    CHECK(!ok);

    REQUIRE(sqlite3_exec(locker, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(locker);
    CHECK(timed_lookup(ok) < milliseconds(100));  // released: answered at once
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
    CHECK(w.exec("COMMIT") == SQLITE_OK);                        // no reader in the way
    CHECK(d.read()->mailbox("late@example.com")->has_value());
}

namespace {

// Two readers of one replica, as two threads of a daemon, sharing a
// validation cache in the background mode; only forced checks and the
// arrival of a verdict make them look at the path.
struct TwoReaders {
    Replica r;
    std::shared_ptr<ValidationCache> cache = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
    DirectoryOptions o = [this] {
        auto options = options_for(r.replica);
        options.validation = cache;
        options.check_interval = std::chrono::hours(1);
        return options;
    }();
    Directory d{o};
    Directory other{o};  // another thread's reader, never forced to check
};

}  // namespace

TEST_CASE("in the background mode a replacement is validated off the reading thread, and all readers switch") {
    TwoReaders t;
    auto& [r, cache, o, d, other] = t;
    REQUIRE(d.status().serving);  // nothing served yet: validated in place
    const auto first = served_generation(d);
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

TEST_CASE("a chmod after the rename does not leave a reader on the old snapshot while another serves the new") {
    TwoReaders t;
    auto& [r, cache, o, d, other] = t;
    const auto first = served_generation(d);
    REQUIRE(served_generation(other) == first);

    REQUIRE(r.primary.add_mailbox("new@example.com", "u1").ok());
    install(r.primary, r.dir.path("staging.db"), r.replica);
    d.refresh(true);  // starts the validation
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (served_generation(d) == first && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(served_generation(d) > first);

    // What it_publish and rsync -p do after the rename: the ctime changes.
    REQUIRE(chmod(r.replica.c_str(), 0644) == 0);
    CHECK(served_generation(other) == served_generation(d));  // at once, not after a second validation
    CHECK(!other.status().pending.has_value());
}

// ---------------------------------------------------------------- a replacement pending, refused or regressed

namespace {

// The Directory's reader: resolves with the clock given, untraced.
Resolution resolve_now(Directory& d, std::string_view address) {
    ResolverOptions o;
    o.trace = false;
    return resolve(d, o, address);
}

}  // namespace

TEST_CASE("right after the rename, an address of the pending generation is unconfirmed, not unknown") {
    for (auto mode : {ValidationCache::Mode::Background, ValidationCache::Mode::InPlace}) {
        CAPTURE(static_cast<int>(mode));
        Replica r;
        auto o = options_for(r.replica);
        o.validation = std::make_shared<ValidationCache>(mode);
        o.check_interval = std::chrono::hours(1);  // never looked at by the clock
        Directory d(o);
        const auto first = served_generation(d);
        CHECK(resolve_now(d, "new@example.com").outcome == Outcome::Unknown);
        CHECK(!d.replacement_pending());

        REQUIRE(r.primary.add_mailbox("new@example.com", "u1").ok());
        install(r.primary, r.dir.path("staging.db"), r.replica);
        auto unconfirmed = resolve_now(d, "new@example.com");
        CHECK(unconfirmed.outcome == Outcome::Unconfirmed);
        CHECK(unconfirmed.generation == first);
        CHECK(unconfirmed.doubt.find("being validated") != std::string::npos);
        CHECK(unconfirmed.reason.find("being validated") != std::string::npos);
        CHECK(d.status().pending.has_value());
        CHECK(resolve_now(d, "bob@example.com").outcome == Outcome::Mailbox);  // positives still answer

        // Validated (here at the next read, or on the cache's thread): served.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        Resolution later;
        do {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            later = resolve_now(d, "new@example.com");
        } while (later.outcome != Outcome::Mailbox && std::chrono::steady_clock::now() < deadline);
        CHECK(later.outcome == Outcome::Mailbox);
        CHECK(later.generation > first);
        CHECK(!d.status().pending.has_value());
        CHECK(resolve_now(d, "nobody@example.com").outcome == Outcome::Unknown);
    }
}

TEST_CASE("an alias with a target it cannot deliver to is in doubt while a replacement is pending") {
    Replica r;
    REQUIRE(r.primary.add_alias("crew@example.com", {"bob@example.com", "later@example.com"}).ok());
    install(r.primary, r.dir.path("staging.db"), r.replica);
    auto o = options_for(r.replica);
    o.validation = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
    o.check_interval = std::chrono::hours(1);
    Directory d(o);
    auto sure = resolve_now(d, "crew@example.com");
    REQUIRE(sure.outcome == Outcome::Alias);
    CHECK(sure.doubt.empty());
    CHECK(resolve_now(d, "sales@example.com").doubt.empty());  // every target delivers: no stat needed

    // later@ arrives in the next generation: unitmilter must not expand
    // crew@ without it while that file is pending.
    REQUIRE(r.primary.add_mailbox("later@example.com", "u1").ok());
    install(r.primary, r.dir.path("staging.db"), r.replica);
    auto pending = resolve_now(d, "crew@example.com");
    REQUIRE(pending.outcome == Outcome::Alias);
    CHECK(pending.doubt.find("being validated") != std::string::npos);
}

TEST_CASE("a FIFO renamed over the replica is refused at once, never opened, and the snapshot keeps serving") {
    for (bool background : {false, true}) {
        CAPTURE(background);
        Replica r;
        auto o = options_for(r.replica);
        if (background) o.validation = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
        Directory d(o);
        const auto good = served_generation(d);
        REQUIRE(mkfifo(r.dir.path("fifo").c_str(), 0644) == 0);
        REQUIRE(std::rename(r.dir.path("fifo").c_str(), r.replica.c_str()) == 0);
        auto started = std::chrono::steady_clock::now();
        d.refresh(true);  // an open() of the FIFO would block here for good
        CHECK(!d.replacement_pending());
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(1));
        REQUIRE(d.status().refused.has_value());
        CHECK(d.status().refused->reason == RefusalReason::NotRegular);
        CHECK(d.status().refusals_by_reason[static_cast<std::size_t>(RefusalReason::NotRegular)] == 1);
        CHECK(d.status().problem.find("not a regular file") != std::string::npos);
        CHECK(served_generation(d) == good);
        // The newer file behind a refused one may hold the address: in doubt.
        CHECK(resolve_now(d, "nobody@example.com").outcome == Outcome::Unconfirmed);
        CHECK(resolve_now(d, "off@example.com").outcome == Outcome::Unconfirmed);  // disabled, in doubt too
        install(r.primary, r.dir.path("staging.db"), r.replica);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (d.status().switches == 0 && std::chrono::steady_clock::now() < deadline) {
            d.refresh(true);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        CHECK(d.status().switches == 1);
        CHECK(!d.status().refused.has_value());
    }
}

TEST_CASE("a replacement this process may not read is refused as unreadable, and taken once readable") {
    if (geteuid() != 0) return;  // needs root to become another user
    Replica r;
    REQUIRE(chmod(r.dir.root().c_str(), 0777) == 0);  // nobody renames the file in
    REQUIRE(chmod(r.replica.c_str(), 0644) == 0);
    REQUIRE(r.primary.add_mailbox("new@example.com", "u1").ok());
    REQUIRE(r.primary.publish(r.dir.path("next.db")).ok());
    REQUIRE(chmod(r.dir.path("next.db").c_str(), 0600) == 0);  // published under umask 077
    int ignored = 0;
    const auto next_inode = file_id(r.dir.path("next.db"), ignored).value().inode;
    // Permissions hold for another user only: the checks run in a child as nobody.
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        int failures = 0;
        auto expect = [&failures](bool ok, int bit) {
            if (!ok) failures |= bit;
        };
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(100);
        auto o = options_for(r.replica);
        o.validation = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
        Directory d(o);
        expect(d.status().serving, 1);
        const auto first = d.status().snapshot.generation;
        if (std::rename(r.dir.path("next.db").c_str(), r.replica.c_str()) != 0) _exit(101);
        auto unknown = resolve_now(d, "new@example.com");
        expect(unknown.outcome == Outcome::Unconfirmed, 2);
        for (int i = 0; i < 200 && !d.status().refused; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            d.refresh(true);
        }
        expect(d.status().refused && d.status().refused->reason == RefusalReason::Unreadable, 4);
        expect(d.status().problem.find("permission denied") != std::string::npos, 8);
        expect(d.status().snapshot.generation == first, 16);
        expect(resolve_now(d, "new@example.com").outcome == Outcome::Unconfirmed, 32);  // never a 5xx
        expect(resolve_now(d, "bob@example.com").outcome == Outcome::Mailbox, 64);
        // Once the administrator (the parent) fixes the mode, the same file
        // is taken: its ctime changed, so it is tried again.
        struct stat st {};
        for (int i = 0; i < 500 && (stat(r.replica.c_str(), &st) != 0 || (st.st_mode & 0777) != 0644); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        for (int i = 0; i < 500 && resolve_now(d, "new@example.com").outcome != Outcome::Mailbox; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            d.refresh(true);
        }
        expect(resolve_now(d, "new@example.com").outcome == Outcome::Mailbox, 128);
        _exit(failures);
    }
    // Once the child renamed the file in, it has it refused within moments
    // (it polls for the mode fix meanwhile).
    for (int i = 0; i < 500; ++i) {
        int error = 0;
        auto at_path = file_id(r.replica, error);
        if (at_path && at_path->inode == next_inode) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    REQUIRE(chmod(r.replica.c_str(), 0644) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

namespace {

// An SQLite VFS that makes open() of one file hang until released, as on a
// hung network mount. Registered as the default while it lives.
class HangingOpen {
public:
    explicit HangingOpen(std::string suffix) {
        real_ = sqlite3_vfs_find(nullptr);
        REQUIRE(real_ != nullptr);
        wrapper_ = *real_;
        wrapper_.zName = "hanging";
        wrapper_.pAppData = this;
        wrapper_.xOpen = [](sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out) {
            auto* self = static_cast<HangingOpen*>(vfs->pAppData);
            std::string_view n = name ? name : "";
            {
                std::unique_lock lock(self->mutex_);
                if (self->hanging_ && n.size() >= self->suffix_.size() &&
                    n.substr(n.size() - self->suffix_.size()) == self->suffix_) {
                    ++self->hung_;
                    self->released_cv_.wait(lock, [self] { return !self->hanging_; });
                }
            }
            return self->real_->xOpen(self->real_, name, file, flags, out);
        };
        suffix_ = std::move(suffix);
        REQUIRE(sqlite3_vfs_register(&wrapper_, 1) == SQLITE_OK);
    }
    ~HangingOpen() {
        release();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the threads it held finish
        sqlite3_vfs_register(real_, 1);
        sqlite3_vfs_unregister(&wrapper_);
    }
    void hang() {
        std::lock_guard lock(mutex_);
        hanging_ = true;
    }
    void release() {
        {
            std::lock_guard lock(mutex_);
            hanging_ = false;
        }
        released_cv_.notify_all();
    }
    int hung() {
        std::lock_guard lock(mutex_);
        return hung_;
    }

private:
    sqlite3_vfs* real_ = nullptr;
    sqlite3_vfs wrapper_{};
    std::string suffix_;
    std::mutex mutex_;
    std::condition_variable released_cv_;
    bool hanging_ = false;
    int hung_ = 0;
};

}  // namespace

TEST_CASE("a validation past validation_timeout is refused, and a stuck one never delays destruction") {
    using namespace std::chrono;
    Replica r;
    HangingOpen vfs("/units.db");
    auto cache = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
    auto o = options_for(r.replica);
    o.validation = cache;
    o.check_interval = milliseconds(20);
    o.validation_timeout = milliseconds(300);
    Directory d(o);
    const auto good = served_generation(d);

    vfs.hang();
    REQUIRE(r.primary.add_mailbox("new@example.com", "u1").ok());
    install(r.primary, r.dir.path("staging.db"), r.replica);
    CHECK(d.replacement_pending());  // its validation starts, and hangs in open()
    auto started = steady_clock::now();
    while (!d.status().refused && steady_clock::now() - started < seconds(5)) {
        std::this_thread::sleep_for(milliseconds(10));
        CHECK(served_generation(d) == good);
    }
    REQUIRE(d.status().refused.has_value());
    CHECK(d.status().refused->reason == RefusalReason::Timeout);
    CHECK(steady_clock::now() - started >= milliseconds(250));
    CHECK(steady_clock::now() - started < seconds(2));
    CHECK(d.status().problem.find("validation_timeout (300 ms)") != std::string::npos);
    CHECK(vfs.hung() == 1);

    // Another file, its validation stuck too: destroying the cache does not wait for it.
    REQUIRE(r.primary.add_mailbox("newer@example.com", "u1").ok());
    install(r.primary, r.dir.path("staging.db"), r.replica);
    CHECK(d.replacement_pending());
    for (int i = 0; i < 100 && vfs.hung() < 2; ++i) std::this_thread::sleep_for(milliseconds(5));
    CHECK(vfs.hung() == 2);
    started = steady_clock::now();
    d = Directory(options_for(r.dir.path("none.db")));
    cache.reset();
    CHECK(steady_clock::now() - started < milliseconds(200));
    vfs.release();
}

TEST_CASE("SQLite's own work on a replacement is interrupted at validation_timeout") {
    Replica r;
    auto o = options_for(r.replica);
    o.validation_timeout = std::chrono::milliseconds(0);
    Directory d(o);
    CHECK(!d.status().serving);
    REQUIRE(d.status().refused.has_value());
    CHECK(d.status().refused->reason == RefusalReason::Timeout);
}

namespace {

// A snapshot of the primary at `out` with its meta rewritten as given
// (the unitctl side writes these; here they are set directly).
void stage(Replica& r, const std::string& out, const std::string& primary_id, std::int64_t generation,
           const std::string& override_value = "") {
    REQUIRE(r.primary.publish(out).ok());
    raw_sql(out, fmt::format("DELETE FROM meta WHERE key IN ('primary_id', 'publish_override');"
                             "UPDATE meta SET value = '{}' WHERE key = 'generation';",
                             generation));
    if (!primary_id.empty())
        raw_sql(out, fmt::format("INSERT INTO meta (key, value) VALUES ('primary_id', '{}')", primary_id));
    if (!override_value.empty())
        raw_sql(out, fmt::format("INSERT INTO meta (key, value) VALUES ('publish_override', '{}')", override_value));
}

void rename_in(Replica& r, const std::string& from) { REQUIRE(std::rename(from.c_str(), r.replica.c_str()) == 0); }

}  // namespace

TEST_CASE("a lower generation of the same primary, or another primary, is refused unless published so") {
    const std::string a(32, 'a'), b(32, 'b');
    Replica r;
    const std::string next = r.dir.path("next.db");
    stage(r, next, a, 1019);
    rename_in(r, next);
    auto cache = std::make_shared<ValidationCache>();
    auto o = options_for(r.replica);
    o.validation = cache;
    Directory d(o);
    REQUIRE(served_generation(d) == 1019);

    auto expect_refused = [&](RefusalReason reason, const std::vector<std::string>& words) {
        const auto served = served_generation(d);
        d.refresh(true);
        REQUIRE(d.status().refused.has_value());
        CHECK(d.status().refused->reason == reason);
        for (const auto& w : words) CHECK_MESSAGE(d.status().problem.find(w) != std::string::npos, w);
        CHECK(served_generation(d) == served);
    };
    auto expect_taken = [&](std::int64_t generation) {
        d.refresh(true);
        CHECK(!d.status().refused.has_value());
        CHECK(served_generation(d) == generation);
    };

    stage(r, next, a, 3);
    rename_in(r, next);
    expect_refused(RefusalReason::Regression, {"generation 3", "generation 1019", a, "--rollback"});
    CHECK(resolve_now(d, "nobody@example.com").outcome == Outcome::Unknown);  // the newer snapshot is sure

    stage(r, next, b, 5000);
    rename_in(r, next);
    expect_refused(RefusalReason::Foreign, {"generation 5000", b, "generation 1019", a, "--takeover"});
    stage(r, next, b, 5000, "rollback");
    rename_in(r, next);
    expect_refused(RefusalReason::Foreign, {b});
    stage(r, next, "", 2000);  // a file without an identity, over one with it, is another primary's
    rename_in(r, next);
    expect_refused(RefusalReason::Foreign, {"(none)"});
    CHECK(d.status().refusals_by_reason[static_cast<std::size_t>(RefusalReason::Foreign)] == 3);

    // A Directory with nothing served takes any valid file, unless its cache
    // knows what the process serves.
    stage(r, next, a, 3);
    rename_in(r, next);
    Directory alone(options_for(r.replica));
    CHECK(served_generation(alone) == 3);
    Directory sharing(o);
    CHECK(!sharing.status().serving);
    REQUIRE(sharing.status().refused.has_value());
    CHECK(sharing.status().refused->reason == RefusalReason::Regression);

    stage(r, next, a, 3, "rollback");
    rename_in(r, next);
    expect_taken(3);
    stage(r, next, a, 4);
    rename_in(r, next);
    expect_taken(4);
    stage(r, next, b, 1, "takeover");
    rename_in(r, next);
    expect_taken(1);
    stage(r, next, b, 2);
    rename_in(r, next);
    expect_taken(2);

    // A snapshot served without an identity (an older unitctl's) is adopted
    // by the first replacement that has one, generations compared.
    stage(r, next, "", 10, "takeover");
    rename_in(r, next);
    expect_taken(10);
    stage(r, next, a, 9);
    rename_in(r, next);
    expect_refused(RefusalReason::Regression, {"generation 9"});
    stage(r, next, a, 11);
    rename_in(r, next);
    expect_taken(11);
}

// ---------------------------------------------------------------- hostile files (issue 13)

namespace {

// A `mailboxes` that is a view over a recursive CTE: every lookup through it
// would count to thirty million before it answers (without a bound).
const char* const endless_mailboxes =
    "DROP TABLE mailboxes;"
    "CREATE VIEW mailboxes (address, unit, state, moving_to) AS"
    " WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000000)"
    " SELECT 'x' || i || '@example.com', 'u1', 'active', NULL FROM n;";

// Descriptors of this process open on deleted files under `root`.
int deleted_files_open(const std::string& root) {
    int count = 0;
    for (int fd = 0; fd < 4096; ++fd) {
        char target[4096];
        auto n = readlink(fmt::format("/proc/self/fd/{}", fd).c_str(), target, sizeof target - 1);
        if (n <= 0) continue;
        std::string link(target, static_cast<std::size_t>(n));
        if (link.rfind(root, 0) == 0 && link.find(" (deleted)") != std::string::npos) ++count;
    }
    return count;
}

}  // namespace

TEST_CASE("a replacement whose tables are not the schema's is refused, and the snapshot keeps serving") {
    const std::vector<std::pair<const char*, const char*>> cases = {
        {"mailboxes is a view", endless_mailboxes},
        {"extra trigger", "CREATE TRIGGER noisy AFTER INSERT ON domains BEGIN SELECT 1; END;"},
        {"extra view", "CREATE VIEW everything AS SELECT * FROM mailboxes;"},
        {"meta is a view",
         "ALTER TABLE meta RENAME TO meta_data; CREATE VIEW meta (key, value) AS SELECT key, value FROM meta_data;"},
        {"aliases without its primary key",
         "DROP TABLE aliases; CREATE TABLE aliases (address TEXT NOT NULL, target TEXT NOT NULL);"},
        {"units without nexthop",
         "DROP TABLE units; CREATE TABLE units (name TEXT PRIMARY KEY, transport TEXT, state TEXT) WITHOUT ROWID;"},
        {"generated state",
         "DROP TABLE mailboxes; CREATE TABLE mailboxes (address TEXT PRIMARY KEY, unit TEXT, moving_to TEXT,"
         " state TEXT AS ('active')) WITHOUT ROWID;"},
    };
    for (const auto& [name, sql] : cases) {
        CAPTURE(name);
        Replica r;
        Directory d(options_for(r.replica));
        const auto first = served_generation(d);
        auto published = r.primary.publish(r.dir.path("hostile.db"));
        REQUIRE(published.ok());
        raw_sql(r.dir.path("hostile.db"), sql);
        REQUIRE(std::rename(r.dir.path("hostile.db").c_str(), r.replica.c_str()) == 0);
        d.refresh(true);
        CHECK(served_generation(d) == first);
        CHECK(d.status().switches == 0);
        REQUIRE(d.status().refused.has_value());
        CHECK(d.status().refused->reason == RefusalReason::SchemaMismatch);
        CHECK(d.status().refusals_by_reason[static_cast<std::size_t>(RefusalReason::SchemaMismatch)] == 1);
        MESSAGE(d.status().refused->message);
        CHECK(d.read()->mailbox("user@example.com")->has_value());
        // Nothing served before: the file is refused at once, never read.
        Directory fresh(options_for(r.replica));
        CHECK(!fresh.status().serving);
        REQUIRE(fresh.status().refused.has_value());
        CHECK(fresh.status().refused->reason == RefusalReason::SchemaMismatch);
        CHECK(to_string(fresh.status().refused->reason) == "schema_mismatch");
    }
}

TEST_CASE("extra tables, columns and indexes of a provider's own are allowed") {
    Replica r;
    raw_sql(r.replica,
            "CREATE TABLE provider_notes (address TEXT PRIMARY KEY, note TEXT);"
            "ALTER TABLE mailboxes ADD COLUMN quota INTEGER;"
            "CREATE INDEX units_by_state ON units (state);");
    Directory d(options_for(r.replica));
    CHECK(d.status().serving);
    CHECK(!d.status().refused.has_value());
}

TEST_CASE("a lookup that runs past lookup_timeout is interrupted and fails as a timeout") {
    Replica r;
    auto o = options_for(r.replica);
    o.lookup_timeout = std::chrono::milliseconds(200);
    Directory d(o);
    REQUIRE(d.status().serving);
    // Changed in place after validation, as a live replicator may.
    raw_sql(r.replica, endless_mailboxes);
    auto started = std::chrono::steady_clock::now();
    auto reader = d.read();
    REQUIRE(reader.ok());
    auto mailbox = reader->mailbox("user@example.com");
    auto took = std::chrono::steady_clock::now() - started;
    MESSAGE("interrupted after ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), " ms");
    REQUIRE(!mailbox.ok());
    CHECK(mailbox.error().code == Errc::Timeout);
    CHECK(mailbox.error().message.find("lookup_timeout (200 ms)") != std::string::npos);
    CHECK(took < std::chrono::milliseconds(700));
    // The connection still answers what does not run away.
    CHECK(reader->domain_served("example.com").value());
    // Diagnostics are not bound: summary() of a sane file still counts.
}

TEST_CASE("a hot journal beside the replica is refused as hot_journal, and said so on lookups") {
    Replica r;
    // Not empty, first byte not zero: SQLite takes it for a hot journal.
    write_file(r.replica + "-journal", std::string(512, '\x5a'));
    Directory d(options_for(r.replica));
    CHECK(!d.status().serving);
    REQUIRE(d.status().refused.has_value());
    CHECK(d.status().refused->reason == RefusalReason::HotJournal);
    CHECK(d.status().problem.find("-journal") != std::string::npos);
    // Removed: the same file is taken at the next look.
    REQUIRE(std::remove((r.replica + "-journal").c_str()) == 0);
    d.refresh(true);
    CHECK(d.status().serving);
    // One that appears beside the served snapshot: each read fails, saying why.
    write_file(r.replica + "-journal", std::string(512, '\x5a'));
    auto reader = d.read();
    REQUIRE(!reader.ok());
    CHECK(reader.error().message.find("hot journal") != std::string::npos);
    REQUIRE(std::remove((r.replica + "-journal").c_str()) == 0);
    CHECK(d.read().ok());
}

TEST_CASE("a published_at beyond the clock skew makes the age unknown, older than every limit, reported once") {
    Replica r;
    auto cache = std::make_shared<ValidationCache>();
    auto o = options_for(r.replica);
    o.validation = cache;
    raw_sql(r.replica, "UPDATE meta SET value = '2099-01-01T00:00:00Z' WHERE key = 'published_at';");
    Directory d(o);
    REQUIRE(d.status().serving);
    const std::time_t now = std::time(nullptr);
    CHECK(d.age_seconds(now) == unknown_age);
    auto text = clock_skew_to_report(d.status(), cache.get(), now);
    REQUIRE(text.has_value());
    CHECK(text->find("in the future") != std::string::npos);
    Directory other(o);
    CHECK(!clock_skew_to_report(other.status(), cache.get(), now).has_value());  // once per file
    // Within the skew, the age is what it says.
    CHECK(d.age_seconds(*d.status().snapshot.published_at - 60) == -60);
}

TEST_CASE("the validation cache keeps at most max_files files, never forgetting the one served") {
    ValidationCache cache;
    FileId served{1, 1, 10, 10, 10};
    cache.record(served, Verdict{});
    cache.note_served({"p", 1, served});
    for (std::uint64_t i = 2; i < 3 * ValidationCache::max_files; ++i) {
        FileId id{1, i, 10, 10, 10};
        cache.record(id, Verdict{RefusalReason::Corrupt, "bad"});
        CHECK(cache.first_report(id, RefusalReason::Corrupt));
    }
    CHECK(cache.files_remembered() <= ValidationCache::max_files);
    CHECK(cache.verdict(served).has_value());
    CHECK(cache.verdict(FileId{1, 3 * ValidationCache::max_files - 1, 10, 10, 10}).has_value());
    CHECK(!cache.verdict(FileId{1, 2, 10, 10, 10}).has_value());
}

TEST_CASE("an idle directory lets go of a replaced file at its next refresh, without a read") {
    Replica r;
    auto cache = std::make_shared<ValidationCache>(ValidationCache::Mode::Background);
    auto o = options_for(r.replica);
    o.validation = cache;
    o.check_interval = std::chrono::milliseconds(0);
    Directory d(o);
    REQUIRE(d.status().serving);
    for (int i = 0; i < 3; ++i) {
        REQUIRE(r.primary.add_mailbox(fmt::format("new{}@example.com", i), "u1").ok());
        install(r.primary, r.dir.path("staging.db"), r.replica);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (d.status().switches < static_cast<std::uint64_t>(i + 1) && std::chrono::steady_clock::now() < deadline) {
            d.refresh();
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    CHECK(d.status().switches == 3);
    CHECK(deleted_files_open(r.dir.root()) == 0);
}
