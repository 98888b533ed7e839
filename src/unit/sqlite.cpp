#include "unit/sqlite.hpp"

#include <fmt/format.h>

#include "unit/statements.hpp"

namespace unit::detail {

Errc classify(int sqlite_code) noexcept {
    switch (sqlite_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL: return Errc::Unavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_SCHEMA:
    case SQLITE_FORMAT: return Errc::Corrupt;
    case SQLITE_CONSTRAINT: return Errc::Conflict;
    case SQLITE_INTERRUPT:  // a progress handler's bound (directory.cpp)
        return Errc::Timeout;
    default: return Errc::Invalid;
    }
}

Error db_error(sqlite3* db, std::string_view what) {
    int code = sqlite3_extended_errcode(db);
    return make_error(classify(code), fmt::format("{}: {}", what, sqlite3_errmsg(db)));
}

namespace {

// Before SQLite initialises (the first open): no memory statistics. They
// cost a process-wide mutex on every allocation, which the daemons' worker
// threads would contend for; nothing here reads them. Fails harmlessly when
// the program initialised SQLite itself.
void configure_sqlite_once() noexcept {
    static const bool configured = [] {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        return true;
    }();
    (void)configured;
}

}  // namespace

Result<DbHandle> open_database(const std::string& path, int flags, int busy_timeout_ms) {
    configure_sqlite_once();
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    DbHandle db(raw);
    if (rc != SQLITE_OK) {
        std::string message = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
        return make_error(classify(rc), fmt::format("{}: cannot open: {}", path, message));
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, busy_timeout_ms);
    return db;
}

Result<StmtHandle> prepare(sqlite3* db, SqlText sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StmtHandle stmt(raw);
    if (rc != SQLITE_OK) return db_error(db, "prepare");
    return stmt;
}

Result<void> exec(sqlite3* db, SqlText sql) {
    if (!exec_noexcept(db, sql)) return db_error(db, "database");
    return {};
}

bool exec_noexcept(sqlite3* db, SqlText sql) noexcept {
    return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
}

Result<bool> Query::step() noexcept {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return db_error(sqlite3_db_handle(stmt_), "database");
}

Result<void> Query::run() noexcept {
    for (;;) {
        auto row = step();
        if (!row) return row.error();
        if (!row.value()) return {};
    }
}

std::string Query::text(int column) const {
    auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    if (data == nullptr) return {};
    return std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

Result<Transaction> Transaction::begin(sqlite3* db, bool write) {
    if (auto r = write ? exec(db, sql::transaction::begin_immediate) : exec(db, sql::transaction::begin); !r)
        return r.error();
    return Transaction(db);
}

Transaction::~Transaction() {
    if (db_ != nullptr && !sqlite3_get_autocommit(db_)) exec_noexcept(db_, sql::transaction::rollback);
}

Result<void> Transaction::commit() {
    if (auto r = exec(db_, sql::transaction::commit); !r) return r;
    db_ = nullptr;
    return {};
}

}  // namespace unit::detail
