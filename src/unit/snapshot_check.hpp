// snapshot_check.hpp (internal): opening a snapshot file read-only and
// checking that it may be served, as directory.hpp describes: a regular
// file, readable by this process, no stale WAL and no hot journal beside
// it, a supported schema version with the schema's tables (schema_check.hpp),
// PRAGMA quick_check (unless known good), meta readable; all before a
// deadline, and only for the very file that was stat()ed.
//
// Outcomes: an Opening with the connection, its SnapshotInfo filled and
// its statements prepared; or a Failure: a refusal (a bad file, with its
// RefusalReason) or, without a reason, a failure that may pass (a lock, a
// file replaced meanwhile). Whether the replacement may follow the
// snapshot served is snapshot_lineage.hpp's question, not this one's.
// Thread-safe (one call per thread; a ValidationCache calls it on its own
// thread). Logs nothing.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "unit/directory.hpp"
#include "unit/snapshot_connection.hpp"

namespace unit {

class CheckedFiles;

namespace detail {

// Why a file cannot be served now: a refusal (a bad file) or, without a
// reason, a failure that may pass (a lock, a file replaced meanwhile).
struct Failure {
    std::optional<RefusalReason> refusal;
    std::string message;
};

inline Failure passing(std::string message) { return Failure{std::nullopt, std::move(message)}; }
inline Failure refusal(RefusalReason reason, std::string message) { return Failure{reason, std::move(message)}; }

// Interrupts SQLite's work on a file being validated once its time is up
// (or the cache that asked for it is going away).
struct Deadline {
    using Clock = std::chrono::steady_clock;
    Clock::time_point at;
    const std::atomic<bool>* cancel = nullptr;
    std::chrono::milliseconds timeout{0};
    bool passed() const noexcept {
        return (cancel != nullptr && cancel->load(std::memory_order_relaxed)) || Clock::now() >= at;
    }
};

// An opened and checked snapshot, or why not.
struct Opening {
    std::unique_ptr<Connection> connection;
    Failure failure;                 // when connection is null
    bool integrity_checked = false;  // PRAGMA quick_check ran on it and passed
};

// Opens the snapshot file at `path` and checks it (quick_check too, unless
// the file is known good or in `record`), all before `deadline`. Only a connection to the
// file that was stat()ed as `id` is returned: it may be replaced between
// stat() and open(). The type is checked again just before SQLite opens
// the path: a FIFO swapped in since would block open().
Opening open_snapshot_file(const std::string& path, const FileId& id, std::chrono::milliseconds busy_timeout,
                           bool known_good, CheckedFiles* record, const Deadline& deadline);

// Refusals about the files beside a snapshot, not the snapshot itself: not
// remembered as the file's verdict, and tried again when those files change.
bool about_surroundings(RefusalReason reason) noexcept;

// SQLite says SQLITE_READONLY_ROLLBACK when a -journal beside the file
// looks hot (not empty, no writer holding the file): it must be rolled back
// into the file before anyone reads, which a read-only reader cannot do. A
// journal left by a writer that crashed on this file needs that writer (or
// any read-write open) to recover it; one left by a file this one replaced
// would lay that file's pages over this one's, and must be removed.
bool hot_journal(sqlite3* db) noexcept;
// What to tell of a hot journal beside `path`.
std::string hot_journal_message(const std::string& path);

// A duration as "30 s", or "250 ms" when it is not whole seconds.
std::string seconds_text(std::chrono::milliseconds d);

}  // namespace detail

}  // namespace unit
