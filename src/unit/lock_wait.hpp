// lock_wait.hpp (internal): how a snapshot connection waits for a writer's
// lock, as SQLite's busy handler.
//
// Like sqlite3_busy_timeout (the same pauses), except that once a wait has
// run out, the lookups that follow within the next `timeout` try the lock
// once and fail at once. One daemon thread serves many client connections:
// waiting the full timeout for each of them in turn would multiply the
// delay by the requests queued behind.
//
// Thread safety: a BusyWait belongs to one connection (one thread at a
// time). Logs nothing.
#pragma once

#include <chrono>

namespace unit::detail {

struct BusyWait {
    std::chrono::milliseconds timeout{0};
    std::chrono::steady_clock::time_point started{};  // this wait
    std::chrono::steady_clock::time_point gave_up{};  // when the last wait ran out
};

// SQLite's busy handler (sqlite3_busy_handler), `context` a BusyWait:
// `count` is how many times it was called for this lock. Returns non-zero
// to try again, after a pause.
int wait_for_lock(void* context, int count) noexcept;

}  // namespace unit::detail
