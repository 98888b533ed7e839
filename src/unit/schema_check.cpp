#include "unit/schema_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "unit/primary_support.hpp"
#include "unit/schema.hpp"
#include "unit/sqlite.hpp"
#include "unit/statements.hpp"

namespace unit::detail {

namespace {

struct Column {
    std::string name;
    std::int64_t pk = 0;      // position in the primary key, 0: not in it
    std::int64_t hidden = 0;  // 2 or 3: a generated column
};

// One entry of sqlite_schema (names lowercased: SQL names are not case-sensitive).
struct Object {
    std::string type, name, table;
    bool virtual_table = false;
    std::vector<Column> columns;  // plain tables only
};

Result<std::vector<Object>> read_objects(sqlite3* db) {
    std::vector<Object> objects;
    auto listed = for_each_row(db, sql::schema::objects, [&](Query& q) {
        objects.push_back(Object{q.text(0), q.text(1), q.text(2), q.integer(3) != 0, {}});
    });
    if (!listed) return listed.error();
    auto stmt = prepare(db, sql::schema::columns);
    if (!stmt) return stmt.error();
    for (auto& o : objects) {
        if (o.type != "table" || o.virtual_table) continue;
        Query q(stmt->get());
        q.bind(1, o.name);
        auto r = for_each_row(q, [&](Query& row) {
            o.columns.push_back(Column{row.text(0), row.integer(1), row.integer(2)});
        });
        if (!r) return r.error();
    }
    return objects;
}

// The objects of schema `version`, from the embedded migrations.
Result<std::vector<Object>> schema_objects(int version) {
    auto db = open_database(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY, 0);
    if (!db) return db.error();
    for (const auto& m : migrations()) {
        if (m.version > version) break;
        if (auto r = apply_migration(db->get(), m); !r) return r.error();
    }
    return read_objects(db->get());
}

// A name from the file, for a message: printable ASCII, at most 64 bytes.
std::string shown(std::string_view name) {
    std::string out;
    for (unsigned char c : name.substr(0, 64)) out += c < 0x20 || c >= 0x7f ? '?' : static_cast<char>(c);
    return out;
}

std::optional<std::string> compare(const Object& want, const Object& have) {
    if (have.type != want.type) return fmt::format("{} is a {}, not a {}", want.name, have.type, want.type);
    if (have.table != want.table)
        return fmt::format("{} {} is on table {}, not {}", want.type, want.name, shown(have.table), want.table);
    if (want.type != "table") return std::nullopt;
    if (have.virtual_table) return fmt::format("{} is a virtual table, not a table", want.name);
    for (const auto& column : want.columns) {
        auto it = std::find_if(have.columns.begin(), have.columns.end(),
                               [&](const Column& c) { return c.name == column.name; });
        if (it == have.columns.end()) return fmt::format("table {} has no column {}", want.name, column.name);
        if (it->hidden != 0) return fmt::format("column {}.{} is generated", want.name, column.name);
        if (it->pk != column.pk) return fmt::format("table {} has another primary key than the schema's", want.name);
    }
    if (std::any_of(have.columns.begin(), have.columns.end(), [](const Column& c) { return c.pk != 0; }) &&
        std::none_of(want.columns.begin(), want.columns.end(), [](const Column& c) { return c.pk != 0; }))
        return fmt::format("table {} has another primary key than the schema's", want.name);
    return std::nullopt;
}

}  // namespace

Result<std::optional<std::string>> schema_mismatch(sqlite3* db, int version, std::string_view only) {
    using Why = std::optional<std::string>;
    auto wanted = schema_objects(version);
    if (!wanted) return make_error(Errc::Invalid, fmt::format("schema {}: {}", version, wanted.error().message));
    auto found = read_objects(db);
    if (!found) return found.error();
    auto find = [](const std::vector<Object>& objects, const std::string& name) {
        return std::find_if(objects.begin(), objects.end(), [&](const Object& o) { return o.name == name; });
    };
    for (const auto& want : wanted.value()) {
        if (!only.empty() && want.name != only) continue;
        auto have = find(found.value(), want.name);
        if (have == found->end()) {
            if (!only.empty()) continue;  // reading it fails: not a database of ours at all
            return Why(fmt::format("no {} {}", want.type, want.name));
        }
        if (auto why = compare(want, *have)) return why;
    }
    for (const auto& have : found.value()) {
        if ((have.type == "view" || have.type == "trigger") && find(wanted.value(), have.name) == wanted->end())
            return Why(fmt::format("{} {} is not part of schema {}", have.type, shown(have.name), version));
    }
    return Why();
}

}  // namespace unit::detail
