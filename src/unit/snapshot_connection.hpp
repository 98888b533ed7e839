// snapshot_connection.hpp (internal): one read-only connection to one
// snapshot file, with its statements prepared once, and the read
// transactions on it that the Directory begins and its Readers end.
//
// begin_read() begins a deferred transaction and reads meta.generation in
// it (which takes the shared lock); end_read() commits it (or rolls it
// back). Errors carry the classes of sqlite.hpp; explained() words those a
// caller of the Directory cannot read from SQLite's message (a lookup past
// lookup_timeout, a hot journal). Thread safety: one thread at a time, as
// the Directory owning it. Logs nothing.
#pragma once

#include <chrono>
#include <cstdint>

#include "unit/directory.hpp"
#include "unit/lock_wait.hpp"
#include "unit/result.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

// One read-only connection to one snapshot file, its statements prepared once.
struct Connection {
    DbHandle db;
    StmtHandle begin, commit, generation, domain, mailbox, unit, aliases;
    SnapshotInfo info;
    BusyWait busy;  // its address is the busy handler's context
    // The bound of the lookups through the current Reader (lookup_timeout
    // after read()); time_point::max() between Readers. The progress
    // handler interrupts SQLite's work past it.
    std::chrono::milliseconds lookup_timeout{0};
    std::chrono::steady_clock::time_point lookup_deadline = std::chrono::steady_clock::time_point::max();
    // The open read transaction, if any.
    bool reading = false;
    bool read_failed = false;     // a lookup in it failed: end it before the next
    bool writer_waiting = false;  // seen when it began: do not hold it
    std::chrono::steady_clock::time_point read_since{};
    std::int64_t read_generation = 0;
};

// SQLite calls lookup_overdue() every lookup_check_steps virtual-machine
// steps of a statement (a progress handler, `context` the Connection): past
// the lookup deadline, the statement ends with SQLITE_INTERRUPT. A point
// lookup takes fewer steps than that: it is never called for one.
inline constexpr int lookup_check_steps = 1000;
int lookup_overdue(void* context) noexcept;

// A lookup interrupted at its bound says which bound, and one refused for a
// hot journal says so; other errors pass.
Error explained(const Connection& c, Error e);

// Prepares the Connection's statements (once the file is known to hold the
// schema's tables).
Result<void> prepare_statements(Connection& c);

// Begins a read transaction; `hold`: it may serve several read()s, unless
// a writer is seen waiting (c.writer_waiting).
Result<void> begin_read(Connection& c, bool hold) noexcept;
void end_read(Connection& c) noexcept;

}  // namespace unit::detail
