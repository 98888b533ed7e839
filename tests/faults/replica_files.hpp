// replica_files.hpp: the files a fault phase puts where the daemon reads its
// replica, and the lock another process holds on it.
//
// Every replacement is prepared beside the replica (same file system) and
// then renamed onto it, as rsync and `unitctl publish` do; install() returns
// the moment of the rename. The bad files start as a real snapshot of the
// primary: truncated to half its size, overwritten with random bytes, with
// meta.schema_version set to a version no build reads, or with `mailboxes`
// turned into a view that never ends.
//
// The lock holder is this same program run as
//   fault_matrix --hold-lock DB MILLISECONDS MARKER_DIR
// it takes an EXCLUSIVE lock on DB (BEGIN EXCLUSIVE), creates
// MARKER_DIR/locked, holds the lock MILLISECONDS, commits, creates
// MARKER_DIR/released and exits 0 (1 with a line on stderr on failure).
//
// Functions throw std::runtime_error with a one-line reason. Not
// thread-safe (the phases run one at a time). Logs nothing.
#pragma once

#include <chrono>
#include <string>

#include "unit/primary.hpp"

namespace unit::faults {

using Clock = std::chrono::steady_clock;

class ReplicaFiles {
public:
    ReplicaFiles(Primary& primary, std::string replica, std::string work_dir);

    const std::string& replica() const noexcept { return replica_; }

    // A fresh snapshot of the primary at a staging path; its generation.
    std::int64_t stage_snapshot();
    void stage_truncated();
    void stage_random_bytes();
    void stage_unsupported_schema(int version);
    // A snapshot whose mailboxes is a view over an endless recursive CTE.
    void stage_endless_view();
    // Renames the staged file onto the replica.
    Clock::time_point install();
    void remove_replica();
    // Removes REPLICA-wal and REPLICA-shm, as an administrator would.
    void remove_wal_files();

private:
    Primary& primary_;
    std::string replica_, staging_;
};

// The body of --hold-lock: returns the exit status.
int hold_lock(const std::string& db, std::chrono::milliseconds hold, const std::string& marker_dir);

}  // namespace unit::faults
