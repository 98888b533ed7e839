// The record of replica files whose integrity check passed, and how a
// Directory trusts it across restarts.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "test_support.hpp"
#include "unit/checked_files.hpp"
#include "unit/directory.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::test;

namespace {

CheckedFile entry(std::uint64_t inode, std::int64_t generation, std::string primary_id = "0123abcd") {
    return CheckedFile{FileId{64769, inode, 4096 * 10, 1'700'000'000'123'456'789, 1'700'000'001'000'000'000},
                       std::move(primary_id), generation};
}

// The file at `path` as the record keys it: stat() and its meta.
CheckedFile as_recorded(const std::string& path) {
    int error = 0;
    auto id = file_id(path, error);
    REQUIRE(id.has_value());
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    auto meta = [&](const char* key) {
        sqlite3_stmt* stmt = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &stmt, nullptr) == SQLITE_OK);
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        std::string value;
        if (sqlite3_step(stmt) == SQLITE_ROW) value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        sqlite3_finalize(stmt);
        return value;
    };
    CheckedFile file{*id, meta("primary_id"), std::stoll(meta("generation"))};
    sqlite3_close(db);
    return file;
}

// Zeroes, in place, the root page of the mailboxes table: the schema and
// meta still read, PRAGMA quick_check fails.
void corrupt_mailboxes(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "SELECT rootpage, (SELECT page_size FROM pragma_page_size()) FROM sqlite_schema "
                               "WHERE type = 'table' AND name = 'mailboxes'",
                               -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const long page = sqlite3_column_int64(stmt, 0), page_size = sqlite3_column_int64(stmt, 1);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    REQUIRE(page > 1);
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp((page - 1) * page_size);
    const std::string zeros(static_cast<std::size_t>(page_size), '\0');
    file.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
    REQUIRE(file.good());
}

// A daemon's start: a Directory with a fresh ValidationCache over `record`.
DirectoryStatus start(const std::string& path, std::shared_ptr<CheckedFiles> record) {
    DirectoryOptions o;
    o.path = path;
    o.validation = std::make_shared<ValidationCache>(ValidationCache::Mode::Background, std::move(record));
    Directory d(o);
    d.refresh(true);
    return d.status();
}

}  // namespace

TEST_CASE("the record's text reads back, and lines that do not parse are skipped") {
    const std::vector<CheckedFile> entries = {entry(11, 7), entry(12, 8, "")};
    const std::string text = checked_files_text(entries);
    CHECK(text.rfind("# unitpolicy:", 0) == 0);
    CHECK(parse_checked_files(text) == entries);
    CHECK(parse_checked_files(text + "garbage line\n1 2 3\n1 2 3 4 5 6 id extra\n\n") == entries);
    CHECK(parse_checked_files("").empty());
    CHECK(parse_checked_files(std::string("\0\x01\x02", 3)).empty());
}

TEST_CASE("the record keeps the newest entries, merges with another writer and survives a restart") {
    TempDir dir;
    CheckedFiles first(dir.root());
    for (std::uint64_t i = 1; i <= CheckedFiles::max_entries + 3; ++i) REQUIRE(first.add(entry(i, 1)).ok());
    CheckedFiles restarted(dir.root());
    CHECK(!restarted.contains(entry(1, 1)));
    CHECK(!restarted.contains(entry(3, 1)));
    CHECK(restarted.contains(entry(4, 1)));
    CHECK(restarted.contains(entry(CheckedFiles::max_entries + 3, 1)));
    CHECK(!restarted.contains(entry(4, 2)));           // another generation
    CHECK(!restarted.contains(entry(4, 1, "other")));  // another primary
    // The other daemon adds one: a later add here keeps it.
    CheckedFiles other(dir.root());
    REQUIRE(other.add(entry(100, 1)).ok());
    REQUIRE(restarted.add(entry(101, 1)).ok());
    CheckedFiles third(dir.root());
    CHECK(third.contains(entry(100, 1)));
    CHECK(third.contains(entry(101, 1)));
}

TEST_CASE("a record that cannot be written says why and still answers in the process") {
    TempDir dir;
    CheckedFiles record(dir.path("missing"));
    auto written = record.add(entry(1, 1));
    REQUIRE(!written.ok());
    CHECK(written.error().message.find("cannot create") != std::string::npos);
    CHECK(record.contains(entry(1, 1)));
    CHECK(checked_files_in("") == nullptr);
}

TEST_CASE("a file planted at the temporary name is replaced, not written through") {
    TempDir dir;
    write_file(dir.path("victim"), "keep");
    const std::string temporary = dir.path(fmt::format("checked-files.{}.tmp", getpid()));
    REQUIRE(symlink(dir.path("victim").c_str(), temporary.c_str()) == 0);
    CheckedFiles record(dir.root());
    REQUIRE(record.add(entry(1, 1)).ok());
    CHECK(read_file(dir.path("victim")) == "keep");
    CHECK(CheckedFiles(dir.root()).contains(entry(1, 1)));
}

TEST_CASE("a Directory records the file it checked, and a restart trusts the record for that file only") {
    TempDir dir;
    Primary primary = make_sample_primary(dir.path("primary.db"));
    const std::string replica = dir.path("units.db");
    REQUIRE(primary.publish(replica).ok());
    auto record = checked_files_in(dir.root());

    // First start: checked, and recorded.
    CHECK(start(replica, record).serving);
    CHECK(CheckedFiles(dir.root()).contains(as_recorded(replica)));

    // A file whose integrity check fails is refused without a record...
    corrupt_mailboxes(replica);
    const auto corrupt = start(replica, nullptr);
    CHECK(!corrupt.serving);
    CHECK(corrupt.problem.find("quick_check") != std::string::npos);
    // ...and with a record of another generation or another file.
    CheckedFile other_generation = as_recorded(replica);
    other_generation.generation += 1;
    CheckedFile other_file = as_recorded(replica);
    other_file.file.inode += 1;
    for (const auto& wrong : {other_generation, other_file}) {
        TempDir elsewhere;
        auto wrong_record = checked_files_in(elsewhere.root());
        REQUIRE(wrong_record->add(wrong).ok());
        CHECK(!start(replica, wrong_record).serving);
    }
    // Recorded as this very file, its check is skipped (what a restart over
    // a file checked before does): proof that the check did not run.
    TempDir trusted;
    auto trusting = checked_files_in(trusted.root());
    REQUIRE(trusting->add(as_recorded(replica)).ok());
    CHECK(start(replica, trusting).serving);
}

TEST_CASE("a record that cannot be written is reported once") {
    TempDir dir;
    Primary primary = make_sample_primary(dir.path("primary.db"));
    const std::string replica = dir.path("units.db");
    REQUIRE(primary.publish(replica).ok());
    DirectoryOptions o;
    o.path = replica;
    o.validation = std::make_shared<ValidationCache>(ValidationCache::Mode::Background,
                                                     checked_files_in(dir.path("missing")));
    Directory d(o);
    d.refresh(true);
    CHECK(d.status().serving);
    auto text = o.validation->record_problem_to_report();
    REQUIRE(text.has_value());
    CHECK(text->find("missing/checked-files") != std::string::npos);
    CHECK(!o.validation->record_problem_to_report().has_value());
}
