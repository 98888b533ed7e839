// primary_db.hpp (internal): the Primary's read-write connection and the
// statement helpers its modules (primary*.cpp, sync.cpp) run their SQL
// with: text parameters ?1..?N bound in order, transactions that commit
// when their body succeeds.
//
// Outcomes: the error classes of sqlite.hpp (primary.hpp says what they
// mean to a caller); an exception thrown inside a body becomes
// Errc::Unavailable. Thread safety: as the connection. Logs nothing.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "unit/primary.hpp"
#include "unit/result.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

struct PrimaryDb {
    DbHandle db;
    std::string path;
    PrimaryOptions options;
};

inline constexpr int primary_busy_timeout_ms = 5000;

// Opens the database read-write (creating it with `create`), foreign keys on.
Result<DbHandle> open_rw(const std::string& path, bool create);

// Statements of statements.hpp with text parameters ?1..?N.
Result<std::optional<std::string>> query_text(sqlite3* db, SqlText sql, std::initializer_list<std::string_view> params);
Result<void> run(sqlite3* db, SqlText sql, std::initializer_list<std::optional<std::string>> params);
Result<bool> exists(sqlite3* db, SqlText sql, std::initializer_list<std::string_view> params);
Result<std::int64_t> count(sqlite3* db, SqlText sql, std::initializer_list<std::string_view> params);

// Wraps one call in a write transaction: `body` runs inside it; it commits
// when the body succeeds, and rolls back otherwise.
template <class T, class Body>
Result<T> in_transaction(sqlite3* db, Body&& body) noexcept {
    try {
        auto txn = Transaction::begin(db, true);
        if (!txn) return txn.error();
        Result<T> result = body();
        if (!result) return result;
        if (auto r = txn->commit(); !r) return r.error();
        return result;
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

// Runs `body`, an exception out of it as Errc::Unavailable.
template <class T, class Body>
Result<T> guarded(Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

}  // namespace unit::detail
