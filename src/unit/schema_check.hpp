// schema_check.hpp (internal): whether a file's tables are the schema's
// tables, before a reader runs its statements on them.
//
// quick_check proves a file is well-formed, not that its `mailboxes` is a
// table: a view of the same name (say, over a recursive CTE) passes it, and
// every lookup would then run the view's SQL. So a snapshot must hold every
// object the schema of its version defines (the embedded migrations,
// applied to an in-memory database: no second copy of the schema here) as
// the same type: each table a plain table (not a view, not a virtual
// table) with the schema's columns, the same primary key, none of them
// generated; each index and trigger on the same table. Of the objects the
// schema does not define, views and triggers are refused (a view runs SQL
// at read time, and neither belongs in a published snapshot); extra
// tables, indexes and columns are allowed (a provider's own).
//
// Reads sqlite_schema and pragma_table_xinfo only: cheap at any size.
// Thread safety: as the connection. Logs nothing.
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>
#include <string_view>

#include "unit/result.hpp"

namespace unit::detail {

// nullopt when `db` holds the objects of schema `version` as described
// above; otherwise why not, in words ("mailboxes is a view, not a table").
// With `only`, the schema's object of that name alone is looked at, and
// only if present (still no extra view or trigger is allowed): `meta`,
// before the version stored in it is read; a file without one is no
// database of ours, which reading it says. Errors: as sqlite.hpp (a lock, an I/O error).
Result<std::optional<std::string>> schema_mismatch(sqlite3* db, int version, std::string_view only = {});

}  // namespace unit::detail
