// sqlite.hpp (internal): RAII for SQLite handles and the few helpers every
// libunit module needs to run statements. This is the only place, with the
// modules that run the statements of statements.hpp, that talks to
// sqlite3_*, and the only one that hands SQL text to SQLite: as an SqlText,
// a literal (sql_text.hpp).
//
// Outcomes: Result with Errc::Unavailable for SQLITE_BUSY/LOCKED/CANTOPEN/
// IOERR/READONLY (try again later), Errc::Corrupt for SQLITE_CORRUPT/
// NOTADB/SCHEMA, Errc::Conflict for constraint violations, Errc::Timeout
// for SQLITE_INTERRUPT (a progress handler's bound), Errc::Invalid otherwise.
// Thread safety: as the connection (one thread at a time).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "unit/result.hpp"
#include "unit/sql_text.hpp"

namespace unit::detail {

struct DbCloser {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Maps an SQLite result code to our error classes.
Errc classify(int sqlite_code) noexcept;
// "what: sqlite message" with the class of the connection's last error.
Error db_error(sqlite3* db, std::string_view what);

Result<DbHandle> open_database(const std::string& path, int flags, int busy_timeout_ms);
// SQL text is an SqlText: literals only (sql_text.hpp).
Result<StmtHandle> prepare(sqlite3* db, SqlText sql);
Result<void> exec(sqlite3* db, SqlText sql);
// exec() for cleanup (a ROLLBACK, a DETACH): no error is built, nothing
// thrown; false when it failed.
bool exec_noexcept(sqlite3* db, SqlText sql) noexcept;

// A prepared statement in use: binds, steps, reads columns, and resets
// itself (keeping the preparation) when it goes out of scope.
class Query {
public:
    explicit Query(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    ~Query() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    // SQLITE_STATIC: SQLite reads `text` when the statement steps, not now,
    // so it must outlive the Query; binding a temporary string is refused
    // at compile time (it would be gone by then).
    Query& bind(int index, std::string_view text) noexcept {
        sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
        return *this;
    }
    Query& bind(int index, const char* text) noexcept { return bind(index, std::string_view(text)); }
    Query& bind(int index, std::string&& text) = delete;
    Query& bind_null(int index) noexcept {
        sqlite3_bind_null(stmt_, index);
        return *this;
    }
    Query& bind_optional(int index, const std::optional<std::string>& text) noexcept {
        return text ? bind(index, *text) : bind_null(index);
    }
    Query& bind_optional(int index, std::optional<std::string>&& text) = delete;

    // true: a row is ready; false: done; error otherwise.
    Result<bool> step() noexcept;
    // Steps to completion, for statements without rows.
    Result<void> run() noexcept;

    std::string text(int column) const;
    std::int64_t integer(int column) const noexcept { return sqlite3_column_int64(stmt_, column); }

private:
    sqlite3_stmt* stmt_;
};

// Steps `q` to its end, calling take(q) for each row. take returns void or
// Result<void>; an error from it or from SQLite ends the walk.
template <class Take>
Result<void> for_each_row(Query& q, Take&& take) {
    for (;;) {
        auto row = q.step();
        if (!row) return row.error();
        if (!row.value()) return {};
        if constexpr (std::is_void_v<std::invoke_result_t<Take&, Query&>>) {
            take(q);
        } else if (auto r = take(q); !r) {
            return r;
        }
    }
}

// The same for a statement prepared for this one walk (no parameters).
template <class Take>
Result<void> for_each_row(sqlite3* db, SqlText sql, Take&& take) {
    auto stmt = prepare(db, sql);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    return for_each_row(q, take);
}

// BEGIN on construction (IMMEDIATE for writers), ROLLBACK on destruction
// unless commit() succeeded.
class Transaction {
public:
    static Result<Transaction> begin(sqlite3* db, bool write);
    Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    Result<void> commit();

private:
    explicit Transaction(sqlite3* db) noexcept : db_(db) {}
    sqlite3* db_;
};

}  // namespace unit::detail
