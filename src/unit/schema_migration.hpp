// schema_migration.hpp (internal): which schema version a database holds,
// and bringing it one migration (schema.hpp) further, in one write
// transaction that sets meta.schema_version to the migration's.
//
// Outcomes: the version (0 for a file without a meta table); a failed
// migration rolls back, with the error classes of sqlite.hpp, or
// Errc::Corrupt when it did not set its version. Thread safety: as the
// connection. Logs nothing.
#pragma once

#include "unit/result.hpp"
#include "unit/schema.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

Result<int> read_schema_version(sqlite3* db);  // 0 when the file has no meta table
Result<void> apply_migration(sqlite3* db, const Migration& m);

}  // namespace unit::detail
