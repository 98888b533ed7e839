// The database contract: migrations, schema.sql and the generation triggers.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <set>
#include <string>

#include "test_support.hpp"
#include "unit/directory.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::test;

namespace {

// (type, name, sql) of every schema object, whitespace folded.
std::set<std::string> schema_objects(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL", -1, &stmt,
                               nullptr) == SQLITE_OK);
    std::set<std::string> objects;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        std::string text;
        for (int i = 0; i < 3; ++i)
            text += std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i))) + "|";
        std::string folded;
        for (char c : text) {
            if (std::isspace(static_cast<unsigned char>(c))) {
                if (!folded.empty() && folded.back() != ' ') folded += ' ';
            } else {
                folded += c;
            }
        }
        objects.insert(folded);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return objects;
}

std::int64_t generation_of(const std::string& path) {
    auto db = Primary::open(path);
    REQUIRE(db.ok());
    auto g = db->generation();
    REQUIRE(g.ok());
    return g.value();
}

}  // namespace

TEST_CASE("migrations add up to policy/schema.sql") {
    TempDir dir;
    auto migrated = Primary::init(dir.path("migrated.db"));
    REQUIRE(migrated.ok());
    std::string sql = read_file(env_or_fail("UNIT_SOURCE_ROOT") + "/policy/schema.sql");
    REQUIRE(!sql.empty());
    write_file(dir.path("plain.db"), "");
    raw_sql(dir.path("plain.db"), sql);
    CHECK(schema_objects(dir.path("migrated.db")) == schema_objects(dir.path("plain.db")));
    CHECK(migrated->schema_version().value() == max_schema_version);
}

TEST_CASE("a database made from schema.sql is one unitctl accepts") {
    TempDir dir;
    write_file(dir.path("plain.db"), "");
    raw_sql(dir.path("plain.db"), read_file(env_or_fail("UNIT_SOURCE_ROOT") + "/policy/schema.sql"));
    auto db = Primary::open(dir.path("plain.db"));
    REQUIRE_MESSAGE(db.ok(), db.error().message);
    CHECK(db->add_domain("example.com").ok());
}

TEST_CASE("init is idempotent and keeps the data") {
    TempDir dir;
    {
        auto db = Primary::init(dir.path("p.db"));
        REQUIRE(db.ok());
        REQUIRE(db->add_domain("example.com").ok());
    }
    auto again = Primary::init(dir.path("p.db"));
    REQUIRE(again.ok());
    CHECK(again->domains().value() == std::vector<std::string>{"example.com"});
}

TEST_CASE("every write bumps the generation, also direct SQL by another system") {
    TempDir dir;
    std::string path = dir.path("p.db");
    make_sample_primary(path);
    struct Write {
        const char* what;
        const char* sql;
    };
    const Write writes[] = {
        {"domain insert", "INSERT INTO domains VALUES ('new.example')"},
        {"domain update", "UPDATE domains SET name = 'newer.example' WHERE name = 'new.example'"},
        {"domain delete", "DELETE FROM domains WHERE name = 'newer.example'"},
        {"unit insert", "INSERT INTO units VALUES ('u9', 'smtp', '[u9]', 'active')"},
        {"unit update", "UPDATE units SET state = 'down' WHERE name = 'u9'"},
        {"unit delete", "DELETE FROM units WHERE name = 'u9'"},
        {"mailbox insert", "INSERT INTO mailboxes (address, unit) VALUES ('zed@example.com', 'u1')"},
        {"mailbox update", "UPDATE mailboxes SET state = 'suspended' WHERE address = 'zed@example.com'"},
        {"mailbox delete", "DELETE FROM mailboxes WHERE address = 'zed@example.com'"},
        {"alias insert", "INSERT INTO aliases VALUES ('x@example.com', 'user@example.com')"},
        {"alias update", "UPDATE aliases SET target = 'bob@example.com' WHERE address = 'x@example.com'"},
        {"alias delete", "DELETE FROM aliases WHERE address = 'x@example.com'"},
    };
    for (const auto& w : writes) {
        CAPTURE(w.what);
        auto before = generation_of(path);
        raw_sql(path, w.sql);
        CHECK(generation_of(path) > before);
    }
}

TEST_CASE("a file of another schema version or none is refused by the writer") {
    TempDir dir;
    make_sample_primary(dir.path("p.db"));
    raw_sql(dir.path("p.db"), "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    auto newer = Primary::open(dir.path("p.db"));
    REQUIRE(!newer.ok());
    CHECK(newer.error().code == Errc::Corrupt);
    CHECK(newer.error().message.find("schema version 99") != std::string::npos);
    CHECK(!Primary::init(dir.path("p.db")).ok());

    write_file(dir.path("junk.db"), std::string(4096, 'x'));
    auto junk = Primary::open(dir.path("junk.db"));
    REQUIRE(!junk.ok());
    CHECK(junk.error().code == Errc::Corrupt);

    auto missing = Primary::open(dir.path("missing.db"));
    REQUIRE(!missing.ok());
    CHECK(missing.error().code == Errc::NotFound);
}
