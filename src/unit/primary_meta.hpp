// primary_meta.hpp (internal): the Primary's meta table: its identity
// (primary_id), what DatabaseMeta reports, and the UTC timestamps that
// meta.published_at holds (ISO 8601, "2026-01-31T12:00:00Z").
//
// Outcomes: Errc::Corrupt when meta.generation is missing; lookups' errors
// as sqlite.hpp classes them. Thread safety: as the connection. Logs
// nothing.
#pragma once

#include <string>

#include "unit/primary.hpp"
#include "unit/result.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

// "primary_id", added when missing (a random 32-hex-digit identity).
Result<void> ensure_primary_id(sqlite3* db);
Result<DatabaseMeta> read_meta(sqlite3* db);
std::string utc_now();  // ISO 8601 UTC

}  // namespace unit::detail
