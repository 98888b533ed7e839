// The primary database as unitctl edits it: rules, bulk import/export,
// check and publish.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

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
    CHECK(d.primary.domains().value() == std::vector<std::string>{"example.com", "example.net", "xn--bcher-kva.example"});
}

TEST_CASE("misuse is refused with a clear error and changes nothing") {
    Db d;
    auto generation = d.primary.generation().value();
    check_error(d.primary.add_mailbox("x@example.com", "u9"), Errc::NotFound, "unit u9: no such unit");
    check_error(d.primary.add_mailbox("user@example.com", "u1"), Errc::Conflict, "mailbox user@example.com: already exists");
    check_error(d.primary.add_mailbox("x@example.org", "u1"), Errc::Conflict, "domain example.org is not served");
    check_error(d.primary.add_mailbox("x@example.com", "u3"), Errc::Conflict, "u3 is draining");
    check_error(d.primary.add_mailbox("no-at-sign", "u1"), Errc::Invalid, "");
    check_error(d.primary.add_domain("example.com"), Errc::Conflict, "already served");
    check_error(d.primary.remove_domain("example.com"), Errc::Conflict, "still used by");
    check_error(d.primary.remove_domain("example.org"), Errc::NotFound, "not served");
    check_error(d.primary.add_unit(UnitRecord{"u1", "smtp", "[x]", UnitState::Active}), Errc::Conflict, "already exists");
    check_error(d.primary.add_unit(UnitRecord{"bad name", "smtp", "[x]", UnitState::Active}), Errc::Invalid, "name");
    check_error(d.primary.add_unit(UnitRecord{"u8", "smtp", "", UnitState::Active}), Errc::Invalid, "nexthop");
    check_error(d.primary.remove_unit("u1"), Errc::Conflict, "unit u1: still has");
    check_error(d.primary.remove_unit("u3"), Errc::Conflict, "still has");  // bob lives there, moving@ moves there
    check_error(d.primary.remove_unit("u9"), Errc::NotFound, "no such unit");
    check_error(d.primary.change_unit("u1", UnitChange{}), Errc::Invalid, "nothing to change");
    check_error(d.primary.begin_move("john.doe@example.com", "u1"), Errc::Conflict, "already on unit u1");
    check_error(d.primary.begin_move("john.doe@example.com", "u9"), Errc::NotFound, "no such unit");
    check_error(d.primary.begin_move("moving@example.com", "u2"), Errc::Conflict, "already moving to u3");
    check_error(d.primary.begin_move("sus@example.com", "u2"), Errc::Conflict, "only active mailboxes move");
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
        {"kind,address,value,state\nmailbox,new@example.com,u1,frozen\n", "in.csv:2: mailbox new@example.com: bad state"},
        {"kind,address,value,state\nunit,u7,nocolon,\n", "in.csv:2: unit u7: value \"nocolon\" is not transport:nexthop"},
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
