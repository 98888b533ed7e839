// snapshot_reports.hpp (internal): what the daemons log about a Directory's
// files, once per file among the Directories sharing a ValidationCache:
// refusal_to_report() and clock_skew_to_report() (declared in
// directory.hpp, defined in snapshot_reports.cpp), and the time a
// snapshot's age counts from, which Directory::age_seconds() shares with
// the clock skew report. Thread-safe as the ValidationCache. Logs nothing
// itself: the caller logs the text.
#pragma once

#include <ctime>

#include "unit/directory.hpp"

namespace unit::detail {

// What a snapshot's age counts from: published_at, or the file's mtime when
// it was never published.
std::time_t age_origin(const SnapshotInfo& info) noexcept;

}  // namespace unit::detail
