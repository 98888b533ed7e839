#include "unit/primary_db.hpp"

#include <cstdlib>

#include "unit/statements.hpp"

namespace unit::detail {

Result<DbHandle> open_rw(const std::string& path, bool create) {
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    auto db = open_database(path, flags, primary_busy_timeout_ms);
    if (!db) return db.error();
    if (auto r = exec(db->get(), sql::settings::foreign_keys_on); !r) return r.error();
    return db;
}

// Runs `sql` with text parameters ?1..?N and returns the first column of
// the first row, or nullopt when there is no row.
Result<std::optional<std::string>> query_text(sqlite3* db, SqlText sql,
                                              std::initializer_list<std::string_view> params) {
    auto stmt = prepare(db, sql);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    int i = 0;
    for (auto p : params) q.bind(++i, p);
    auto row = q.step();
    if (!row) return row.error();
    if (!row.value()) return std::optional<std::string>();
    return std::optional<std::string>(q.text(0));
}

Result<void> run(sqlite3* db, SqlText sql, std::initializer_list<std::optional<std::string>> params) {
    auto stmt = prepare(db, sql);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    int i = 0;
    for (const auto& p : params) q.bind_optional(++i, p);
    return q.run();
}

Result<bool> exists(sqlite3* db, SqlText sql, std::initializer_list<std::string_view> params) {
    auto row = query_text(db, sql, params);
    if (!row) return row.error();
    return row->has_value();
}

Result<std::int64_t> count(sqlite3* db, SqlText sql, std::initializer_list<std::string_view> params) {
    auto row = query_text(db, sql, params);
    if (!row) return row.error();
    return row->has_value() ? std::atoll((*row)->c_str()) : 0;
}

}  // namespace unit::detail
