// statements.hpp (internal): every SQL statement of libunit, named, each
// with what it reads or writes, grouped by the table or the task it serves;
// beside them the row readers that turn a row of units or mailboxes into a
// record (sql::units::read_row, sql::mailboxes::read_row).
//
// A statement is an SqlText (sql_text.hpp) made from its literal here: a
// call site names the statement it runs, and the SQL of the library reads,
// and is reviewed, in this one file. Values are bound parameters ?1..?N,
// which the comments name. The schema is not here: the migrations of
// policy/migrations make it, embedded at build time (schema.hpp).
#pragma once

#include "unit/records.hpp"
#include "unit/result.hpp"
#include "unit/sql_text.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail::sql {

// Transactions (sqlite.hpp's Transaction, a snapshot connection's read).
namespace transaction {

// A deferred transaction: readers.
inline constexpr SqlText begin = "BEGIN";

// A transaction that takes the write lock now: writers.
inline constexpr SqlText begin_immediate = "BEGIN IMMEDIATE";

// Ends a transaction, keeping its writes.
inline constexpr SqlText commit = "COMMIT";

// Ends a transaction, undoing its writes (cleanup: exec_noexcept).
inline constexpr SqlText rollback = "ROLLBACK";
}  // namespace transaction

// Settings of a connection.
namespace settings {

// A page cache of 8 MiB: a replica's inner b-tree pages (snapshot checks).
inline constexpr SqlText cache_8mib = "PRAGMA cache_size = -8192";

// quick_check's first problem only, "ok" when none.
inline constexpr SqlText quick_check_first = "PRAGMA quick_check(1)";
}  // namespace settings

// meta (key, value).
namespace meta {

// meta.generation: the snapshot's generation.
inline constexpr SqlText generation = "SELECT value FROM meta WHERE key = 'generation'";

// meta.?1's value; no row when the key is absent.
inline constexpr SqlText value = "SELECT value FROM meta WHERE key = ?1";

// meta.schema_version.
inline constexpr SqlText schema_version = "SELECT value FROM meta WHERE key = 'schema_version'";
}  // namespace meta

// The schema itself (the migrations that make it are in schema.hpp).
namespace schema {

// One row when the meta table exists (a database that has a schema).
inline constexpr SqlText has_meta = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'";

// Every object of the schema but SQLite's own: type, name, table, whether it is a virtual table.
inline constexpr SqlText objects =
    "SELECT type, lower(name), lower(tbl_name), coalesce(sql, '') LIKE 'create virtual table%'"
    " FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";

// The columns of table ?1: name, position in the primary key, whether hidden.
inline constexpr SqlText columns = "SELECT lower(name), pk, hidden FROM pragma_table_xinfo(?1)";
}  // namespace schema

// domains (name).
namespace domains {

// One row when domain ?1 is served.
inline constexpr SqlText exists = "SELECT 1 FROM domains WHERE name = ?1";
}  // namespace domains

// units (name, transport, nexthop, state). Rows that start with the four columns in this order are read by read_row.
namespace units {

// The unit of a row whose columns from `first` on are name, transport,
// nexthop and state; Errc::Corrupt for a state the schema does not allow.
Result<UnitRecord> read_row(const Query& q, int first = 0);

// Unit ?1 (read_row).
inline constexpr SqlText by_name = "SELECT name, transport, nexthop, state FROM units WHERE name = ?1";

// Every unit by name (read_row), and the number of mailboxes on it.
inline constexpr SqlText with_mailbox_counts =
    "SELECT u.name, u.transport, u.nexthop, u.state,"
    " (SELECT count(*) FROM mailboxes m WHERE m.unit = u.name)"
    " FROM units u ORDER BY u.name";
}  // namespace units

// mailboxes (address, unit, state, moving_to). Rows that start with the four columns in this order are read by
// read_row.
namespace mailboxes {

// The mailbox of a row whose columns from `first` on are address, unit,
// state and moving_to; Errc::Corrupt for a state the schema does not allow.
Result<MailboxRecord> read_row(const Query& q, int first = 0);

// Mailbox ?1 (read_row).
inline constexpr SqlText by_address = "SELECT address, unit, state, moving_to FROM mailboxes WHERE address = ?1";

// One row when mailbox ?1 exists.
inline constexpr SqlText exists = "SELECT 1 FROM mailboxes WHERE address = ?1";

// The number of mailboxes in each state.
inline constexpr SqlText count_by_state = "SELECT state, count(*) FROM mailboxes GROUP BY state";
}  // namespace mailboxes

// aliases (address, target): a row per target.
namespace aliases {

// The targets of alias ?1, in order.
inline constexpr SqlText targets_of = "SELECT target FROM aliases WHERE address = ?1 ORDER BY target";

// One row when alias ?1 has a target.
inline constexpr SqlText exists = "SELECT 1 FROM aliases WHERE address = ?1";

// Every (address, target), in no order.
inline constexpr SqlText pairs = "SELECT address, target FROM aliases";
}  // namespace aliases

// A replica's summary (Reader::summary).
namespace summary {

// The number of domains, of alias addresses and of alias targets.
inline constexpr SqlText counts =
    "SELECT (SELECT count(*) FROM domains), (SELECT count(DISTINCT address) FROM aliases),"
    " (SELECT count(*) FROM aliases)";
}  // namespace summary

}  // namespace unit::detail::sql
