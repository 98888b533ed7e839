#include "unit/snapshot_connection.hpp"

#include <fmt/format.h>

#include "unit/snapshot_check.hpp"
#include "unit/statements.hpp"

namespace unit::detail {

int lookup_overdue(void* context) noexcept {
    const auto& c = *static_cast<const detail::Connection*>(context);
    return std::chrono::steady_clock::now() >= c.lookup_deadline ? 1 : 0;
}

Error explained(const Connection& c, Error e) {
    if (e.code == Errc::Timeout)
        e.message = fmt::format("lookup did not finish within lookup_timeout ({} ms)", c.lookup_timeout.count());
    else if (const char* path = sqlite3_db_filename(c.db.get(), "main"); path != nullptr && hot_journal(c.db.get()))
        e.message = hot_journal_message(path);
    return e;
}

Result<void> prepare_statements(Connection& c) {
    struct Entry {
        detail::StmtHandle* slot;
        SqlText sql;
    };
    const Entry entries[] = {
        {&c.begin, sql::transaction::begin},      {&c.commit, sql::transaction::commit},
        {&c.generation, sql::meta::generation},   {&c.domain, sql::domains::exists},
        {&c.mailbox, sql::mailboxes::by_address}, {&c.unit, sql::units::by_name},
        {&c.aliases, sql::aliases::targets_of},
    };
    for (const auto& e : entries) {
        auto stmt = detail::prepare(c.db.get(), e.sql);
        if (!stmt) return stmt.error();
        *e.slot = std::move(stmt.value());
    }
    return {};
}

namespace {

// Whether another connection holds the RESERVED lock: a writer in
// rollback-journal mode, waiting for the readers to leave. SQLite's POSIX
// locks are per process: while any worker holds a read transaction, the
// others get theirs without looking at the writer's PENDING lock, so held
// transactions, overlapping from thread to thread, would keep it out for
// good. Seeing it, each worker goes back to a transaction per lookup.
bool writer_waiting(sqlite3* db) noexcept {
    sqlite3_file* file = nullptr;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK || file == nullptr ||
        file->pMethods == nullptr)
        return false;
    int reserved = 0;
    return file->pMethods->xCheckReservedLock(file, &reserved) == SQLITE_OK && reserved != 0;
}

}  // namespace

// BEGIN is deferred: reading the generation takes the shared lock, and the
// snapshot the transaction sees.
Result<void> begin_read(Connection& c, bool hold) noexcept {
    Query begin(c.begin.get());
    if (auto r = begin.run(); !r) return r.error();
    Query generation(c.generation.get());
    auto row = generation.step();
    Result<void> outcome;
    if (!row) outcome = explained(c, row.error());  // before ROLLBACK resets the error code
    else if (!row.value()) outcome = make_error(Errc::Corrupt, "meta.generation is missing");
    if (!outcome) {
        exec_noexcept(c.db.get(), sql::transaction::rollback);
        return outcome;
    }
    c.read_generation = generation.integer(0);
    c.writer_waiting = hold && writer_waiting(c.db.get());
    c.reading = true;
    c.read_since = std::chrono::steady_clock::now();
    return {};
}

void end_read(Connection& c) noexcept {
    c.lookup_deadline = std::chrono::steady_clock::time_point::max();  // ending it is not a lookup
    Query commit(c.commit.get());
    if (!commit.run()) exec_noexcept(c.db.get(), sql::transaction::rollback);
    c.reading = false;
    c.read_failed = false;
}

}  // namespace unit::detail
