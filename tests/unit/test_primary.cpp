// The primary database as unitctl edits it: rules, bulk import/export,
// check and publish.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <sstream>

#include "test_support.hpp"
#include "unit/directory.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::test;

namespace {

struct Db {
    TempDir dir;
    std::string path = dir.path("primary.db");
    Primary primary = make_sample_primary(path);
};

void check_error(const Result<void>& r, Errc code, std::string_view text) {
    REQUIRE(!r.ok());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

std::string exported(Primary& p) {
    std::ostringstream out;
    REQUIRE(p.export_csv(out).ok());
    return out.str();
}

}  // namespace

TEST_CASE("keys are stored normalised") {
    Db d;
    REQUIRE(d.primary.add_mailbox("Mixed.Case@EXAMPLE.com.", "u1").ok());
    auto m = d.primary.mailbox("mixed.case@example.com");
    REQUIRE(m.ok());
    CHECK(m->address == "mixed.case@example.com");
    CHECK(d.primary.domains().value() ==
          std::vector<std::string>{"example.com", "example.net", "xn--bcher-kva.example"});
}

TEST_CASE("misuse is refused with a clear error and changes nothing") {
    Db d;
    auto generation = d.primary.generation().value();
    check_error(d.primary.add_mailbox("x@example.com", "u9"), Errc::NotFound, "unit u9: no such unit");
    check_error(d.primary.add_mailbox("user@example.com", "u1"), Errc::Conflict,
                "mailbox user@example.com: already exists");
    check_error(d.primary.add_mailbox("x@example.org", "u1"), Errc::Conflict, "domain example.org is not served");
    check_error(d.primary.add_mailbox("x@example.com", "u3"), Errc::Conflict, "u3 is draining");
    check_error(d.primary.add_mailbox("no-at-sign", "u1"), Errc::Invalid, "");
    check_error(d.primary.add_domain("example.com"), Errc::Conflict, "already served");
    check_error(d.primary.remove_domain("example.com"), Errc::Conflict, "still used by");
    check_error(d.primary.remove_domain("example.org"), Errc::NotFound, "not served");
    check_error(d.primary.add_unit(UnitRecord{"u1", "smtp", "[x]", UnitState::Active}), Errc::Conflict,
                "already exists");
    check_error(d.primary.add_unit(UnitRecord{"bad name", "smtp", "[x]", UnitState::Active}), Errc::Invalid, "name");
    check_error(d.primary.add_unit(UnitRecord{"u8", "smtp", "", UnitState::Active}), Errc::Invalid, "nexthop");
    check_error(d.primary.remove_unit("u1"), Errc::Conflict, "unit u1: still has");
    check_error(d.primary.remove_unit("u3"), Errc::Conflict, "still has");  // bob lives there, moving@ moves there
    check_error(d.primary.remove_unit("u9"), Errc::NotFound, "no such unit");
    check_error(d.primary.change_unit("u1", UnitChange{}), Errc::Invalid, "nothing to change");
    check_error(d.primary.begin_move("john.doe@example.com", "u9"), Errc::NotFound, "no such unit");
    check_error(d.primary.begin_move("moving@example.com", "u2"), Errc::Conflict, "already moving to u3");
    check_error(d.primary.begin_move("sus@example.com", "u3"), Errc::Conflict, "u3 is draining");
    check_error(d.primary.finish_move("user@example.com"), Errc::Conflict, "not moving");
    check_error(d.primary.set_mailbox_state("moving@example.com", MailboxState::Disabled), Errc::Conflict,
                "finish or abort");
    check_error(d.primary.set_mailbox_state("user@example.com", MailboxState::Moving), Errc::Invalid, "move begin");
    check_error(d.primary.remove_mailbox("nobody@example.com"), Errc::NotFound, "no such mailbox");
    check_error(d.primary.add_alias("sales@example.com", {"bob@example.com"}), Errc::Conflict, "already exists");
    check_error(d.primary.add_alias("x@example.org", {"bob@example.com"}), Errc::Conflict, "not served");
    check_error(d.primary.add_alias("x@example.com", {}), Errc::Invalid, "no target");
    check_error(d.primary.remove_alias("nothing@example.com", std::nullopt), Errc::NotFound, "no such alias");
    CHECK(d.primary.generation().value() == generation);
}

TEST_CASE("an alias that would close a cycle is refused") {
    Db d;
    REQUIRE(d.primary.add_alias("a@example.com", {"b@example.com"}).ok());
    check_error(d.primary.add_alias("b@example.com", {"a@example.com"}), Errc::Conflict, "alias cycle");
    CHECK(d.primary.add_alias("a@example.com", {"a@example.com"}).ok());  // a self-reference is not a cycle
}

TEST_CASE("a move begins, finishes and aborts") {
    Db d;
    REQUIRE(d.primary.begin_move("john.doe@example.com", "u2").ok());
    CHECK(d.primary.mailbox("john.doe@example.com")->moving_to == "u2");
    REQUIRE(d.primary.abort_move("john.doe@example.com").ok());
    CHECK(d.primary.mailbox("john.doe@example.com")->unit == "u1");
    CHECK(d.primary.mailbox("john.doe@example.com")->state == MailboxState::Active);
    REQUIRE(d.primary.finish_move("moving@example.com").ok());
    auto moved = d.primary.mailbox("moving@example.com");
    CHECK(moved->unit == "u3");
    CHECK(moved->state == MailboxState::Active);
    CHECK(moved->moving_to.empty());
}

TEST_CASE("export then import into an empty database is a faithful copy") {
    Db d;
    REQUIRE(d.primary.add_unit(UnitRecord{"u4", "lmtp", "[10.0.0.12]:2525", UnitState::Active}).ok());
    std::string csv = exported(d.primary);
    auto copy = Primary::init(d.dir.path("copy.db"));
    REQUIRE(copy.ok());
    std::istringstream in(csv);
    auto stats = copy->import_csv(in, "backup.csv");
    REQUIRE_MESSAGE(stats.ok(), stats.error().message);
    CHECK(stats->domains == 3);
    CHECK(stats->units == 4);
    CHECK(stats->mailboxes == 8);
    CHECK(exported(copy.value()) == csv);
    CHECK(csv.find("mailbox,moving@example.com,u1,moving:u3\n") != std::string::npos);
    CHECK(csv.find("alias,@example.net,dave@example.net,\n") != std::string::npos);
}

TEST_CASE("a bad import row names its line and changes nothing") {
    Db d;
    std::string before = exported(d.primary);
    struct Bad {
        std::string csv;
        std::string error;
    };
    const Bad cases[] = {
        {"kind,address,value,state\nmailbox,new@example.com,u1,\nmailbox,user@example.com,u1,\n",
         "in.csv:3: mailbox user@example.com: already exists"},
        {"kind,address,value,state\nmailbox,new@example.com,u9,\n", "in.csv:2: unit u9: no such unit"},
        {"kind,address,value,state\nmailbox,new@example.org,u1,\n", "in.csv:2: domain example.org is not served"},
        {"kind,address,value,state\nmailbox,new@example.com,u1,frozen\n",
         "in.csv:2: mailbox new@example.com: bad state"},
        {"kind,address,value,state\nunit,u7,nocolon,\n",
         "in.csv:2: unit u7: value \"nocolon\" is not transport:nexthop"},
        {"kind,address,value,state\nwidget,x,y,\n", "in.csv:2: unknown kind \"widget\""},
        {"kind,address,value,state\nalias,p@example.com,q@example.com,\nalias,q@example.com,p@example.com,\n",
         "alias cycle"},
        {"name,address\n", "in.csv:1: the header must be"},
        {"kind,address,value,state\nmailbox,\"unterminated,u1,\n", "in.csv"},
    };
    for (const auto& bad : cases) {
        CAPTURE(bad.csv);
        std::istringstream in(bad.csv);
        auto r = d.primary.import_csv(in, "in.csv");
        REQUIRE(!r.ok());
        CHECK_MESSAGE(r.error().message.find(bad.error) != std::string::npos, r.error().message);
        CHECK(exported(d.primary) == before);
    }
}

TEST_CASE("import takes rows in any order and missing state columns") {
    TempDir dir;
    auto p = Primary::init(dir.path("p.db"));
    REQUIRE(p.ok());
    std::istringstream in("kind,address,value,state\nmailbox,a@x.example,u1\nunit,u1,smtp:[u1],\ndomain,X.Example,,\n");
    auto r = p->import_csv(in, "in.csv");
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(p->mailbox("a@x.example")->state == MailboxState::Active);
}

TEST_CASE("import holds rows back until the file is read: out of key order, later units, duplicates") {
    TempDir dir;
    auto p = Primary::init(dir.path("p.db"));
    REQUIRE(p.ok());
    // The scratch database of the held rows is in TMPDIR, and gone after.
    const std::string tmp = dir.path("tmp");
    std::filesystem::create_directory(tmp);
    ::setenv("TMPDIR", tmp.c_str(), 1);
    std::string csv = "kind,address,value,state\ndomain,x.example,,\nunit,u1,smtp:[u1],\n";
    for (int i = 9999; i >= 0; --i) csv += fmt::format("mailbox,user{}@x.example,u{},\n", i, i % 2 + 1);
    csv += "alias,all@x.example,user0@x.example,\nunit,u2,smtp:[u2],\n";
    std::vector<ImportProgress> seen;
    std::istringstream in(csv);
    auto r = p->import_csv(in, "in.csv", [&](const ImportProgress& progress) { seen.push_back(progress); });
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(r->mailboxes == 10000);
    CHECK(r->aliases == 1);
    CHECK(p->mailbox("user1@x.example")->unit == "u2");
    CHECK(std::filesystem::is_empty(tmp));
    // Read every 4096 rows, then the held rows applied, the aliases checked, the commit.
    REQUIRE(seen.size() >= 4);
    CHECK(seen.front().step == ImportProgress::Step::Reading);
    CHECK(seen.front().rows == 4096);
    CHECK(seen.front().bytes > 0);
    CHECK(seen.front().bytes < csv.size());
    CHECK(seen.back().step == ImportProgress::Step::Committing);
    CHECK(seen.back().rows == 10004);
    CHECK(seen.back().bytes == csv.size());
    CHECK(seen[seen.size() - 2].step == ImportProgress::Step::Checking);

    // A held row's error names its line, and nothing is left of the import.
    const auto generation = p->generation().value();
    std::istringstream dup(
        "kind,address,value,state\nmailbox,b@x.example,u1,\nmailbox,a@x.example,u1,\n"
        "mailbox,b@x.example,u2,\nmailbox,c@x.example,u9,\n");
    auto refused = p->import_csv(dup, "dup.csv");
    REQUIRE(!refused.ok());
    CHECK(refused.error().message == "dup.csv:4: mailbox b@x.example: already exists");
    std::istringstream unknown("kind,address,value,state\nmailbox,c@x.example,u9,\nmailbox,b@x.example,u1,\n");
    refused = p->import_csv(unknown, "unknown.csv");
    REQUIRE(!refused.ok());
    CHECK(refused.error().message == "unknown.csv:2: unit u9: no such unit");
    CHECK(p->generation().value() == generation);
    CHECK(!p->mailbox("a@x.example").ok());
    CHECK(std::filesystem::is_empty(tmp));
    ::unsetenv("TMPDIR");
}

TEST_CASE("check finds nothing in a healthy database and every planted problem") {
    Db d;
    auto healthy = d.primary.check();
    REQUIRE(healthy.ok());
    CHECK(healthy->empty());
    raw_sql(d.path,
            "INSERT INTO mailboxes (address, unit) VALUES ('orphan@example.com', 'u9');"
            "INSERT INTO mailboxes (address, unit, state) VALUES ('limbo@example.com', 'u1', 'moving');"
            "INSERT INTO mailboxes (address, unit) VALUES ('stranger@example.org', 'u1');"
            "INSERT INTO mailboxes (address, unit) VALUES ('Upper@example.com', 'u1');"
            "INSERT INTO aliases VALUES ('a@example.com', 'b@example.com'), ('b@example.com', 'a@example.com');"
            "INSERT INTO aliases VALUES ('c@example.com', 'Bob@Example.com');"
            "INSERT INTO domains VALUES ('Upper.example');");
    auto problems = d.primary.check();
    REQUIRE(problems.ok());
    std::string all;
    for (const auto& p : *problems) all += p + "\n";
    CHECK(all.find("mailbox orphan@example.com: on unknown unit u9") != std::string::npos);
    CHECK(all.find("mailbox limbo@example.com: moving without moving_to") != std::string::npos);
    CHECK(all.find("mailbox stranger@example.org: domain example.org is not served") != std::string::npos);
    CHECK(all.find("mailbox Upper@example.com: not normalised (expected upper@example.com)") != std::string::npos);
    CHECK(all.find("alias cycle: a@example.com -> b@example.com -> a@example.com") != std::string::npos);
    CHECK(all.find("integrity: CHECK constraint failed in mailboxes") != std::string::npos);  // limbo@
    CHECK(all.find("alias target Bob@Example.com: not normalised (expected bob@example.com)") != std::string::npos);
    CHECK(all.find("domain Upper.example: not normalised (expected upper.example)") != std::string::npos);
    CHECK_MESSAGE(problems->size() == 9, all);
}

TEST_CASE("check reports a damaged file") {
    Db d;
    auto bytes = read_file(d.path);
    d.primary = std::move(Primary::init(d.dir.path("other.db")).value());  // close the damaged one first
    // Zero the second half of every page after the first: b-tree pages break.
    for (std::size_t page = 4096; page + 4096 <= bytes.size(); page += 4096)
        std::fill(bytes.begin() + static_cast<long>(page) + 2048, bytes.begin() + static_cast<long>(page) + 4096, '\0');
    write_file(d.dir.path("damaged.db"), bytes);
    auto damaged = Primary::open(d.dir.path("damaged.db"));
    if (!damaged.ok()) {
        CHECK(damaged.error().code == Errc::Corrupt);
        return;
    }
    auto problems = damaged->check();
    CHECK((!problems.ok() || !problems->empty()));
}

TEST_CASE("publish writes a stamped rollback-journal snapshot by rename") {
    Db d;
    std::string out = d.dir.path("units.db");
    auto info = d.primary.publish(out);
    REQUIRE_MESSAGE(info.ok(), info.error().message);
    CHECK(info->generation == d.primary.generation().value());
    CHECK(info->published_at.size() == 20);
    std::string header = read_file(out).substr(0, 20);
    CHECK(header.substr(0, 16) == std::string("SQLite format 3\0", 16));
    CHECK(header[18] == 1);  // write version 1: rollback journal, not WAL (2)
    CHECK(header[19] == 1);
    for (const auto& entry : std::filesystem::directory_iterator(d.dir.root()))
        CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
    Directory replica(DirectoryOptions{out, std::chrono::milliseconds(0), std::chrono::milliseconds(100), {}});
    REQUIRE(replica.status().serving);
    CHECK(replica.status().snapshot.generation == info->generation);
    CHECK(replica.status().snapshot.published_at.has_value());
    auto onto_primary = d.primary.publish(d.path);
    REQUIRE(!onto_primary.ok());
    CHECK(onto_primary.error().code == Errc::Invalid);
}

namespace {
std::time_t mtime_seconds(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mtim.tv_sec;
}
}  // namespace

TEST_CASE("each publish has a later whole-second mtime than the snapshot it replaces") {
    // rsync -t skips a file of the same size and integer-second mtime.
    Db d;
    std::string out = d.dir.path("units.db");
    REQUIRE(d.primary.publish(out).ok());
    std::time_t first = mtime_seconds(out);
    REQUIRE(d.primary.publish(out).ok());
    CHECK(mtime_seconds(out) > first);

    // A previous snapshot stamped ahead of the clock (an earlier burst of
    // publishes, or a clock stepped back) is still overtaken.
    std::time_t ahead = std::time(nullptr) + 3600;
    const struct timespec times[2] = {{0, UTIME_OMIT}, {ahead, 0}};
    REQUIRE(::utimensat(AT_FDCWD, out.c_str(), times, 0) == 0);
    REQUIRE(d.primary.publish(out).ok());
    CHECK(mtime_seconds(out) == ahead + 1);
}

// ------------------------------------------------------------ issue 12

namespace {

DatabaseMeta meta_of(const std::string& path) {
    auto meta = read_database_meta(path);
    REQUIRE_MESSAGE(meta.ok(), meta.error().message);
    return meta.value();
}

void check_refused(const Result<PublishInfo>& r, Errc code, std::string_view text) {
    REQUIRE(!r.ok());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

std::string all_lines(const std::vector<std::string>& lines) {
    std::string all;
    for (const auto& line : lines) all += line + "\n";
    return all;
}

bool has_line(const std::vector<std::string>& lines, std::string_view text) {
    return all_lines(lines).find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("init gives the primary an identity, publish copies it into the snapshot") {
    Db d;
    auto id = d.primary.meta().value().primary_id;
    REQUIRE(id.has_value());
    CHECK(id->size() == 32);
    CHECK(id->find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(Primary::init(d.path).value().meta().value().primary_id == id);  // kept by init
    CHECK(!d.primary.meta().value().published_at);

    TempDir other;
    CHECK(make_sample_primary(other.path("p.db")).meta().value().primary_id != id);

    // A primary made without unitctl (no primary_id) gets one at init and at publish.
    raw_sql(d.path, "DELETE FROM meta WHERE key = 'primary_id'");
    CHECK(Primary::init(d.path).value().meta().value().primary_id.value().size() == 32);
    raw_sql(d.path, "DELETE FROM meta WHERE key = 'primary_id'");
    REQUIRE(d.primary.publish(d.dir.path("units.db")).ok());
    auto fresh_id = d.primary.meta().value().primary_id;
    REQUIRE(fresh_id.has_value());
    auto snapshot = meta_of(d.dir.path("units.db"));
    CHECK(snapshot.primary_id == fresh_id);
    CHECK(snapshot.published_at.has_value());
    CHECK(!snapshot.publish_override);
}

TEST_CASE("publish refuses a lower generation of the same primary unless it is a rollback") {
    Db d;
    std::string out = d.dir.path("units.db");
    REQUIRE(d.primary.add_mailbox("new@example.com", "u1").ok());
    auto first = d.primary.publish(out);
    REQUIRE(first.ok());
    auto before = read_file(out);
    // As a primary restored from an older backup would be.
    raw_sql(d.path, fmt::format("UPDATE meta SET value = '{}' WHERE key = 'generation'", first->generation - 5));
    check_refused(d.primary.publish(out), Errc::Conflict,
                  fmt::format("holds generation {} of this primary, newer than generation {}", first->generation,
                              first->generation - 5));
    CHECK(read_file(out) == before);

    PublishOptions rollback;
    rollback.override_generation = PublishOverride::Rollback;
    auto rolled = d.primary.publish(out, rollback);
    REQUIRE_MESSAGE(rolled.ok(), rolled.error().message);
    CHECK(meta_of(out).generation == first->generation - 5);
    CHECK(meta_of(out).publish_override == "rollback");

    // The next ordinary publish carries no override.
    REQUIRE(d.primary.add_mailbox("newer@example.com", "u1").ok());
    REQUIRE(d.primary.publish(out).ok());
    CHECK(!meta_of(out).publish_override);
}

TEST_CASE("publish refuses a snapshot of another primary unless it is a takeover") {
    Db d;
    std::string out = d.dir.path("units.db");
    REQUIRE(d.primary.publish(out).ok());
    const auto old_id = *d.primary.meta().value().primary_id;

    // A primary rebuilt from an export: same data, a new identity.
    std::ostringstream csv;
    REQUIRE(d.primary.export_csv(csv).ok());
    auto rebuilt = Primary::init(d.dir.path("rebuilt.db"));
    REQUIRE(rebuilt.ok());
    std::istringstream in(csv.str());
    REQUIRE(rebuilt->import_csv(in, "backup.csv").ok());
    const auto new_id = *rebuilt->meta().value().primary_id;
    check_refused(rebuilt->publish(out), Errc::Conflict,
                  fmt::format("holds a snapshot of another primary (primary_id {}", old_id));
    CHECK(meta_of(out).primary_id == old_id);
    check_refused(rebuilt->publish(out, PublishOptions{PublishOverride::Rollback, {}, false, 0644}), Errc::Conflict,
                  new_id);

    auto taken = rebuilt->publish(out, PublishOptions{PublishOverride::Takeover, {}, false, 0644});
    REQUIRE_MESSAGE(taken.ok(), taken.error().message);
    CHECK(meta_of(out).primary_id == new_id);
    CHECK(meta_of(out).publish_override == "takeover");
    // And the old primary is now the foreign one.
    check_refused(d.primary.publish(out), Errc::Conflict, "another primary");

    // A snapshot from before primary identities is adopted by the next
    // publish, generations compared: upgrading needs no --takeover.
    raw_sql(out, "DELETE FROM meta WHERE key = 'primary_id'");
    raw_sql(out, "UPDATE meta SET value = '999999' WHERE key = 'generation'");
    check_refused(rebuilt->publish(out), Errc::Conflict, "refusing to go back");
    raw_sql(out, "UPDATE meta SET value = '1' WHERE key = 'generation'");
    auto adopted = rebuilt->publish(out);
    REQUIRE_MESSAGE(adopted.ok(), adopted.error().message);
    CHECK(meta_of(out).primary_id == new_id);
}

TEST_CASE("publish refuses a snapshot that removes too many mailboxes, and says which") {
    Db d;
    std::string rows = "kind,address,value,state\n";
    for (int i = 0; i < 1000; ++i) rows += fmt::format("mailbox,bulk{:04}@example.com,u1,\n", i);
    std::istringstream in(rows);
    REQUIRE(d.primary.import_csv(in, "bulk.csv").ok());
    std::string out = d.dir.path("units.db");
    REQUIRE(d.primary.publish(out).ok());
    auto before = read_file(out);

    // 1,008 mailboxes: the default limit is 500 (5% would be 50).
    raw_sql(d.path, "DELETE FROM mailboxes WHERE address LIKE 'bulk%' AND address < 'bulk0501'");
    REQUIRE(d.primary.mailboxes(std::nullopt).value().size() == 507);
    check_refused(d.primary.publish(out), Errc::Conflict,
                  "removes 501 of the 1008 mailboxes of the previous one, more than 500 (bulk0000@example.com, "
                  "bulk0001@example.com, bulk0002@example.com, bulk0003@example.com, bulk0004@example.com, ...)");
    CHECK(read_file(out) == before);

    PublishOptions limited;
    limited.max_removed = RemovalLimit{40, true};  // 40% of 1008 is 403
    check_refused(d.primary.publish(out, limited), Errc::Conflict, "more than 403");
    limited.max_removed = RemovalLimit{501, false};
    auto allowed = d.primary.publish(out, limited);
    REQUIRE_MESSAGE(allowed.ok(), allowed.error().message);
    CHECK(allowed->removed == 501);

    // 499 of 507: a large share, but not more than 500.
    raw_sql(d.path, "DELETE FROM mailboxes WHERE address LIKE 'bulk%'");
    REQUIRE(d.primary.publish(out).ok());

    std::istringstream again(rows);
    REQUIRE(d.primary.import_csv(again, "bulk.csv").ok());
    REQUIRE(d.primary.publish(out).ok());
    raw_sql(d.path, "DELETE FROM mailboxes WHERE address LIKE 'bulk%'");
    check_refused(d.primary.publish(out), Errc::Conflict, "removes 1000 of the 1008");
    PublishOptions forced;
    forced.force = true;
    auto taken = d.primary.publish(out, forced);
    REQUIRE_MESSAGE(taken.ok(), taken.error().message);
    CHECK(taken->removed == 1000);
}

TEST_CASE("publish replaces only a regular file that is a snapshot, never the primary's files") {
    Db d;
    std::string fifo = d.dir.path("fifo.db");
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    check_refused(d.primary.publish(fifo), Errc::Invalid, "a FIFO, not a regular file");  // and did not block
    check_refused(d.primary.publish("/dev/null"), Errc::Invalid, "a character device, not a regular file");
    check_refused(d.primary.publish(d.dir.root()), Errc::Invalid, "a directory, not a regular file");
    std::filesystem::create_symlink(fifo, d.dir.path("link.db"));
    check_refused(d.primary.publish(d.dir.path("link.db")), Errc::Invalid, "a FIFO");
    REQUIRE(std::filesystem::exists(d.path + "-wal"));
    check_refused(d.primary.publish(d.path + "-wal"), Errc::Invalid, "is the primary database's -wal");
    check_refused(d.primary.publish(d.path + "-journal"), Errc::Invalid, "is the primary database's -journal");
    check_refused(d.primary.publish(d.path), Errc::Invalid, "is the primary database itself");

    // A file that is not a snapshot (here another primary) needs force.
    TempDir other;
    auto foreign = make_sample_primary(other.path("p.db"));
    check_refused(d.primary.publish(other.path("p.db")), Errc::Conflict,
                  "not a unitpolicy snapshot (no meta.published_at");
    write_file(d.dir.path("notes.txt"), "not a database at all, but long enough to be read as one by SQLite\n");
    check_refused(d.primary.publish(d.dir.path("notes.txt")), Errc::Conflict, "not a unitpolicy snapshot");
    PublishOptions forced;
    forced.force = true;
    REQUIRE(d.primary.publish(d.dir.path("notes.txt"), forced).ok());
    CHECK(meta_of(d.dir.path("notes.txt")).published_at.has_value());
}

TEST_CASE("publish never writes through a symlink planted beside OUT") {
    Db d;
    std::string out = d.dir.path("units.db");
    std::string victim = d.dir.path("victim");
    write_file(victim, "precious");
    // The temporary names of the old code: .units.db.tmpPID and its journal.
    std::string planted = d.dir.path(fmt::format(".units.db.tmp{}", ::getpid()));
    std::filesystem::create_symlink(victim, planted);
    std::filesystem::create_symlink(victim, planted + "-journal");
    REQUIRE(d.primary.publish(out).ok());
    REQUIRE(d.primary.publish(out).ok());
    CHECK(read_file(victim) == "precious");
    CHECK(std::filesystem::is_symlink(planted));
    CHECK(std::filesystem::is_symlink(planted + "-journal"));
    int entries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(d.dir.root())) {
        ++entries;
        const bool stray = entry.path().filename().string().rfind(".units.db.", 0) == 0 && !entry.is_symlink();
        CHECK_MESSAGE(!stray, entry.path().string());
    }
    CHECK(entries == 7);  // primary.db, -wal, -shm, units.db, victim and the two links

    // OUT's directory may itself be reached through a symbolic link.
    std::filesystem::create_directory(d.dir.path("real"));
    std::filesystem::create_directory_symlink(d.dir.path("real"), d.dir.path("published"));
    auto through = d.primary.publish(d.dir.path("published/units.db"));
    CHECK_MESSAGE(through.ok(), through.error().message);
    CHECK(meta_of(d.dir.path("real/units.db")).published_at.has_value());
}

TEST_CASE("a snapshot has mode 0644 whatever the umask, or the mode asked for") {
    Db d;
    std::string out = d.dir.path("units.db");
    mode_t old_umask = ::umask(077);
    auto published = d.primary.publish(out);
    PublishOptions private_mode;
    private_mode.mode = 0640;
    auto second = d.primary.publish(d.dir.path("private.db"), private_mode);
    ::umask(old_umask);
    REQUIRE(published.ok());
    REQUIRE(second.ok());
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
    REQUIRE(::stat(d.dir.path("private.db").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);
}

TEST_CASE("only well-formed transports, nexthops and alias targets are stored") {
    Db d;
    auto generation = d.primary.generation().value();
    for (const char* transport : {"error", "discard", "retry", "unithold", "smtp:x", "a b"})
        check_error(d.primary.add_unit(UnitRecord{"u8", transport, "[u8.example.com]", UnitState::Active}),
                    Errc::Invalid, "bad transport");
    for (const char* nexthop :
         {"[u8.example.com]\n", "a b", "u8.example.com,evil", "[u8.example.com]:99999", "", "2001:db8::1"})
        check_error(d.primary.add_unit(UnitRecord{"u8", "smtp", nexthop, UnitState::Active}), Errc::Invalid,
                    "bad nexthop");
    check_error(d.primary.change_unit("u1", UnitChange{{}, std::string("[u1] "), {}}), Errc::Invalid, "bad nexthop");
    check_error(d.primary.change_unit("u1", UnitChange{{}, {}, std::string("discard")}), Errc::Invalid,
                "bad transport");
    check_error(d.primary.add_alias("x@example.com", {"a@elsewhere.org,b@elsewhere.org"}), Errc::Invalid,
                "bad alias target");
    check_error(d.primary.add_alias("x@example.com", {"\"a b\"@elsewhere.org"}), Errc::Invalid, "bad alias target");
    // Normalised, these would be stored quoted ("m."@...), which check() refuses.
    for (const char* target : {"m.@elsewhere.org", "a..b@example.com"})
        check_error(d.primary.add_alias("x@example.com", {target}), Errc::Invalid, "its local part needs quoting");
    std::istringstream units("kind,address,value,state\nunit,u8,error:[u8.example.com],\n");
    CHECK(!d.primary.import_csv(units, "in.csv").ok());
    std::istringstream aliases("kind,address,value,state\nalias,x@example.com,\"a@x.org,b@y.org\",\n");
    auto r = d.primary.import_csv(aliases, "in.csv");
    REQUIRE(!r.ok());
    CHECK(r.error().message.find("in.csv:2: bad alias target") != std::string::npos);
    CHECK(d.primary.generation().value() == generation);

    // The site's own hold transport.
    TempDir dir;
    PrimaryOptions options;
    options.hold_transport = "parked";
    auto p = Primary::init(dir.path("p.db"), options);
    REQUIRE(p.ok());
    check_error(p->add_unit(UnitRecord{"u1", "parked", "[u1]", UnitState::Active}), Errc::Invalid, "hold transport");
    CHECK(p->add_unit(UnitRecord{"u1", "unithold", "[u1]", UnitState::Active}).ok());
    CHECK(p->add_unit(UnitRecord{"u2", "lmtp", "[2001:db8::1]:24", UnitState::Active}).ok());
}

TEST_CASE("with refuse_dangling_targets an alias target must resolve") {
    TempDir dir;
    std::string path = dir.path("p.db");
    make_sample_primary(path);
    PrimaryOptions options;
    options.refuse_dangling_targets = true;
    auto p = Primary::open(path, options);
    REQUIRE(p.ok());
    check_error(p->add_alias("list@example.com", {"user@example.com", "gone@example.com"}), Errc::Conflict,
                "alias list@example.com -> gone@example.com: gone@example.com does not resolve");
    CHECK(p->aliases().value().size() == 8);  // nothing added
    CHECK(p->add_alias("list@example.com", {"sales@example.com", "off@example.com", "x@elsewhere.org"}).ok());
    CHECK(p->add_alias("list2@example.com", {"anything@example.net"}).ok());  // @example.net is a catch-all
    check_error(p->add_alias("list3@example.com", {"john.doe+tag@example.com"}), Errc::Conflict, "does not resolve");
    check_error(p->add_alias("john@example.com", {"john@example.com"}), Errc::Conflict,
                "does not resolve");  // no mailbox

    options.recipient_delimiter = "+";
    auto with_delimiter = Primary::open(path, options);
    REQUIRE(with_delimiter.ok());
    CHECK(with_delimiter->add_alias("list3@example.com", {"john.doe+tag@example.com"}).ok());
    // As in the resolver, an extension lands in a mailbox only, not in an alias.
    check_error(with_delimiter->add_alias("list4@example.com", {"sales+tag@example.com"}), Errc::Conflict,
                "does not resolve");

    // Import: a target defined later in the same file resolves.
    std::istringstream good(
        "kind,address,value,state\nalias,a@example.com,b@example.com,\n"
        "alias,b@example.com,user@example.com,\n");
    auto imported = p->import_csv(good, "in.csv");
    CHECK_MESSAGE(imported.ok(), imported.error().message);
    std::istringstream bad(
        "kind,address,value,state\nalias,c@example.com,user@example.com,\n"
        "alias,c@example.com,nobody@example.com,\n");
    auto refused = p->import_csv(bad, "in.csv");
    REQUIRE(!refused.ok());
    CHECK(refused.error().message ==
          "in.csv:3: alias c@example.com -> nobody@example.com: nobody@example.com does "
          "not resolve (no mailbox, alias or catch-all in its served domain)");
}

TEST_CASE("an alias past max_alias_targets is refused") {
    TempDir dir;
    PrimaryOptions options;
    options.max_alias_targets = 8;  // team@example.com visits 7
    std::string path = dir.path("p.db");
    make_sample_primary(path);
    auto p = Primary::open(path, options);
    REQUIRE(p.ok());
    CHECK(p->add_alias("four@example.com", {"a@x.org", "b@x.org", "c@x.org", "d@x.org"}).ok());
    // 5 rows here and 4 below: 9 rows visited.
    check_error(p->add_alias("nine@example.com", {"four@example.com", "e@x.org", "f@x.org", "g@x.org", "h@x.org"}),
                Errc::Conflict,
                "alias nine@example.com: its expansion visits 9 alias rows, more than max_alias_targets 8");
    CHECK(!p->mailbox("nine@example.com").ok());
}

TEST_CASE(
    "check reports bad values, dangling targets and aliases past the work limit; warns of dead aliases and "
    "missing postmasters") {
    TempDir dir;
    std::string path = dir.path("p.db");
    make_sample_primary(path);
    PrimaryOptions options;
    options.max_alias_targets = 50;
    auto p = Primary::open(path, options);
    REQUIRE(p.ok());
    auto healthy = p->check_report();
    REQUIRE(healthy.ok());
    CHECK(healthy->problems.empty());
    CHECK(all_lines(healthy->warnings) ==
          "domain example.com: no postmaster@example.com (no mailbox, alias or catch-all)\n"
          "domain xn--bcher-kva.example: no postmaster@xn--bcher-kva.example (no mailbox, alias or catch-all)\n");

    std::string wide;
    for (int i = 0; i < 60; ++i) wide += fmt::format("{}('wide@example.com', 't{}@x.org')", i ? "," : "", i);
    raw_sql(path,
            "UPDATE units SET nexthop = '[u1.example.com]\n' WHERE name = 'u1';"
            "UPDATE units SET transport = 'error' WHERE name = 'u2';"
            "INSERT INTO aliases VALUES ('postmaster@example.com', 'a@x.org,b@y.org');"
            "INSERT INTO aliases VALUES ('list@example.com', 'gone@example.com');"
            "INSERT INTO aliases VALUES ('dead@example.com', 'off@example.com');"
            "INSERT INTO aliases VALUES ('dead2@example.com', 'dead@example.com');"
            "INSERT INTO aliases VALUES ('postmaster@xn--bcher-kva.example', 'anna@xn--bcher-kva.example');"
            "INSERT INTO aliases VALUES " +
                wide);
    auto report = p->check_report();
    REQUIRE(report.ok());
    INFO(all_lines(report->problems), all_lines(report->warnings));
    CHECK(has_line(report->problems, "unit u1: bad nexthop \"[u1.example.com]\\x0a\""));
    CHECK(has_line(report->problems, "unit u2: bad transport \"error\""));
    CHECK(has_line(report->problems, "alias postmaster@example.com: bad alias target \"a@x.org,b@y.org\""));
    CHECK(has_line(report->problems, "alias list@example.com -> gone@example.com: gone@example.com does not resolve"));
    CHECK(has_line(report->problems,
                   "alias wide@example.com: its expansion visits 60 alias rows, more than max_alias_targets 50"));
    CHECK(report->problems.size() == 5);
    CHECK(all_lines(report->warnings) ==
          "alias dead2@example.com: every target is disabled or unknown: mail to it is refused\n"
          "alias dead@example.com: every target is disabled or unknown: mail to it is refused\n"
          "alias list@example.com: every target is disabled or unknown: mail to it is refused\n");
    CHECK(p->check().value() == report->problems);
}
