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

// PRAGMAs: the settings of a connection, and SQLite's own checks.
namespace settings {

// The primary enforces its foreign keys (a connection's setting, off by default).
inline constexpr SqlText foreign_keys_on = "PRAGMA foreign_keys = ON";

// The primary's journal: WAL, so that readers do not wait for a writer.
inline constexpr SqlText journal_wal = "PRAGMA journal_mode = WAL";

// A published snapshot's journal: none left beside the file (a replica is read-only).
inline constexpr SqlText journal_delete = "PRAGMA journal_mode = DELETE";

// A page cache of 8 MiB: a replica's inner b-tree pages (snapshot checks).
inline constexpr SqlText cache_8mib = "PRAGMA cache_size = -8192";

// A page cache of 16 MiB: an import's writes.
inline constexpr SqlText cache_16mib = "PRAGMA cache_size = -16384";

// A page cache of 256 MiB: a sync's comparison of whole tables.
inline constexpr SqlText cache_256mib = "PRAGMA cache_size = -262144";

// Temporary tables and sorts in memory, for an import.
inline constexpr SqlText temp_store_memory = "PRAGMA temp_store = MEMORY";

// Temporary tables and sorts back where the build puts them, after an import.
inline constexpr SqlText temp_store_default = "PRAGMA temp_store = DEFAULT";

// The problems quick_check finds (100 at most), a row each; "ok" alone when none.
inline constexpr SqlText quick_check = "PRAGMA quick_check";

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

// Gives a primary its random primary_id, once.
inline constexpr SqlText add_primary_id =
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('primary_id', lower(hex(randomblob(16))))";

// Sets meta.published_at to ?1 (a publication's time).
inline constexpr SqlText set_published_at = "INSERT OR REPLACE INTO meta (key, value) VALUES ('published_at', ?1)";

// Sets meta.publish_override to ?1 (why a publication went past the removal limit).
inline constexpr SqlText set_publish_override =
    "INSERT OR REPLACE INTO meta (key, value) VALUES ('publish_override', ?1)";

// Removes meta.publish_override.
inline constexpr SqlText clear_publish_override = "DELETE FROM meta WHERE key = 'publish_override'";
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

// Every domain, in no order.
inline constexpr SqlText names = "SELECT name FROM domains";

// Every domain, by name (a listing, an export).
inline constexpr SqlText names_ordered = "SELECT name FROM domains ORDER BY name";

// Adds domain ?1.
inline constexpr SqlText insert = "INSERT INTO domains (name) VALUES (?1)";

// Removes domain ?1.
inline constexpr SqlText remove = "DELETE FROM domains WHERE name = ?1";
}  // namespace domains

// units (name, transport, nexthop, state). Rows that start with the four columns in this order are read by read_row.
namespace units {

// The unit of a row whose columns from `first` on are name, transport,
// nexthop and state; Errc::Corrupt for a state the schema does not allow.
Result<UnitRecord> read_row(const Query& q, int first = 0);

// Unit ?1 (read_row).
inline constexpr SqlText by_name = "SELECT name, transport, nexthop, state FROM units WHERE name = ?1";

// Every unit, in no order (the columns of read_row).
inline constexpr SqlText all = "SELECT name, transport, nexthop, state FROM units";

// Every unit by name (read_row), and the number of mailboxes on it.
inline constexpr SqlText with_mailbox_counts =
    "SELECT u.name, u.transport, u.nexthop, u.state,"
    " (SELECT count(*) FROM mailboxes m WHERE m.unit = u.name)"
    " FROM units u ORDER BY u.name";

// Every unit's name, transport and nexthop, by name (their values are checked).
inline constexpr SqlText routes = "SELECT name, transport, nexthop FROM units ORDER BY name";

// Every unit by name as the CSV export writes it: name, transport:nexthop, state.
inline constexpr SqlText as_csv = "SELECT name, transport || ':' || nexthop, state FROM units ORDER BY name";

// One row when unit ?1 exists.
inline constexpr SqlText exists = "SELECT 1 FROM units WHERE name = ?1";

// The number of mailboxes on unit ?1 or moving to it.
inline constexpr SqlText mailboxes_on = "SELECT count(*) FROM mailboxes WHERE unit = ?1 OR moving_to = ?1";

// Adds unit ?1 with transport ?2, nexthop ?3, state ?4.
inline constexpr SqlText insert = "INSERT INTO units (name, transport, nexthop, state) VALUES (?1, ?2, ?3, ?4)";

// Sets unit ?1's transport ?2, nexthop ?3 and state ?4.
inline constexpr SqlText update = "UPDATE units SET transport = ?2, nexthop = ?3, state = ?4 WHERE name = ?1";

// Removes unit ?1.
inline constexpr SqlText remove = "DELETE FROM units WHERE name = ?1";
}  // namespace units

// mailboxes (address, unit, state, moving_to). Rows that start with the four columns in this order are read by
// read_row.
namespace mailboxes {

// The mailbox of a row whose columns from `first` on are address, unit,
// state and moving_to; Errc::Corrupt for a state the schema does not allow.
Result<MailboxRecord> read_row(const Query& q, int first = 0);

// Mailbox ?1 (read_row).
inline constexpr SqlText by_address = "SELECT address, unit, state, moving_to FROM mailboxes WHERE address = ?1";

// The mailboxes on unit ?1, every mailbox when ?1 is NULL, by address (read_row).
inline constexpr SqlText of_unit =
    "SELECT address, unit, state, moving_to FROM mailboxes"
    " WHERE ?1 IS NULL OR unit = ?1 ORDER BY address";

// At most ?3 mailboxes on unit ?1, moving or not as ?2 (1 or 0), by address (read_row).
inline constexpr SqlText move_batch =
    "SELECT address, unit, state, moving_to FROM mailboxes"
    " WHERE unit = ?1 AND (state = 'moving') = CAST(?2 AS INTEGER)"
    " ORDER BY address LIMIT CAST(?3 AS INTEGER)";

// Every mailbox by address, moving_to '' when NULL (a sync compares them with its file).
inline constexpr SqlText all = "SELECT address, unit, state, coalesce(moving_to, '') FROM mailboxes ORDER BY address";

// Every mailbox by address as the CSV export writes it: address, unit, state (moving:unit when moving).
inline constexpr SqlText as_csv =
    "SELECT address, unit, CASE WHEN state = 'moving' THEN 'moving:' || moving_to"
    " ELSE state END FROM mailboxes ORDER BY address";

// Every mailbox's address, in order.
inline constexpr SqlText addresses = "SELECT address FROM mailboxes ORDER BY address";

// One row when mailbox ?1 exists.
inline constexpr SqlText exists = "SELECT 1 FROM mailboxes WHERE address = ?1";

// Mailbox ?1's state.
inline constexpr SqlText state_of = "SELECT state FROM mailboxes WHERE address = ?1";

// The number of mailboxes in domain ?1.
inline constexpr SqlText count_in_domain =
    "SELECT count(*) FROM mailboxes WHERE substr(address, -length(?1) - 1) = '@' || ?1";

// The number of mailboxes in each state.
inline constexpr SqlText count_by_state = "SELECT state, count(*) FROM mailboxes GROUP BY state";

// Adds mailbox ?1 on unit ?2, in the default state.
inline constexpr SqlText insert = "INSERT INTO mailboxes (address, unit) VALUES (?1, ?2)";

// Adds mailbox ?1 on unit ?2 with state ?3 and moving_to ?4.
inline constexpr SqlText insert_full =
    "INSERT INTO mailboxes (address, unit, state, moving_to) VALUES (?1, ?2, ?3, ?4)";

// Sets mailbox ?1's unit ?2, state ?3 and moving_to ?4.
inline constexpr SqlText update = "UPDATE mailboxes SET unit = ?2, state = ?3, moving_to = ?4 WHERE address = ?1";

// Sets mailbox ?1's state to ?2.
inline constexpr SqlText set_state = "UPDATE mailboxes SET state = ?2 WHERE address = ?1";

// Marks mailbox ?1 as moving to unit ?2.
inline constexpr SqlText start_move = "UPDATE mailboxes SET state = 'moving', moving_to = ?2 WHERE address = ?1";

// Puts mailbox ?1 on unit ?2 (a move without the moving state).
inline constexpr SqlText set_unit = "UPDATE mailboxes SET unit = ?2 WHERE address = ?1";

// Puts moving mailbox ?1 on its moving_to unit, active again.
inline constexpr SqlText finish_move =
    "UPDATE mailboxes SET unit = moving_to, state = 'active', moving_to = NULL"
    " WHERE address = ?1";

// Leaves mailbox ?1 on its unit, active again, moving nowhere.
inline constexpr SqlText cancel_move = "UPDATE mailboxes SET state = 'active', moving_to = NULL WHERE address = ?1";

// Removes mailbox ?1.
inline constexpr SqlText remove = "DELETE FROM mailboxes WHERE address = ?1";
}  // namespace mailboxes

// aliases (address, target): a row per target.
namespace aliases {

// The targets of alias ?1, in order.
inline constexpr SqlText targets_of = "SELECT target FROM aliases WHERE address = ?1 ORDER BY target";

// One row when alias ?1 has a target.
inline constexpr SqlText exists = "SELECT 1 FROM aliases WHERE address = ?1";

// One row when alias ?1 has target ?2.
inline constexpr SqlText pair_exists = "SELECT 1 FROM aliases WHERE address = ?1 AND target = ?2";

// Every (address, target), in no order.
inline constexpr SqlText pairs = "SELECT address, target FROM aliases";

// Every (address, target), in order.
inline constexpr SqlText pairs_ordered = "SELECT address, target FROM aliases ORDER BY address, target";

// Every alias address once, in order.
inline constexpr SqlText addresses = "SELECT DISTINCT address FROM aliases ORDER BY address";

// Every target once, in order.
inline constexpr SqlText targets = "SELECT DISTINCT target FROM aliases ORDER BY target";

// The number of alias addresses in domain ?1.
inline constexpr SqlText count_in_domain =
    "SELECT count(DISTINCT address) FROM aliases"
    " WHERE substr(address, -length(?1) - 1) = '@' || ?1";

// Adds target ?2 to alias ?1.
inline constexpr SqlText insert = "INSERT INTO aliases (address, target) VALUES (?1, ?2)";

// Removes target ?2 of alias ?1, every target when ?2 is NULL.
inline constexpr SqlText remove = "DELETE FROM aliases WHERE address = ?1 AND (?2 IS NULL OR target = ?2)";

// Removes target ?2 of alias ?1.
inline constexpr SqlText remove_pair = "DELETE FROM aliases WHERE address = ?1 AND target = ?2";
}  // namespace aliases

// A replica's summary (Reader::summary).
namespace summary {

// The number of domains, of alias addresses and of alias targets.
inline constexpr SqlText counts =
    "SELECT (SELECT count(*) FROM domains), (SELECT count(DISTINCT address) FROM aliases),"
    " (SELECT count(*) FROM aliases)";
}  // namespace summary

// Publication.
namespace publish {

// Writes a compacted copy of the database to file ?1.
inline constexpr SqlText vacuum_into = "VACUUM INTO ?1";
}  // namespace publish

// An import's scratch database, attached as import_scratch: the rows it holds back until their turn.
namespace import_scratch {

// Attaches file ?1 as import_scratch.
inline constexpr SqlText attach = "ATTACH DATABASE ?1 AS import_scratch";

// Detaches the scratch database (the import's cleanup).
inline constexpr SqlText detach = "DETACH DATABASE import_scratch";

// No journal and no syncing: the file is thrown away after the import.
inline constexpr SqlText journal_off = "PRAGMA import_scratch.journal_mode = OFF";

// No syncing of the scratch file either.
inline constexpr SqlText synchronous_off = "PRAGMA import_scratch.synchronous = OFF";

// A page cache of 8 MiB for the scratch file.
inline constexpr SqlText cache_8mib = "PRAGMA import_scratch.cache_size = -8192";

// The mailbox rows held back, keyed by address, then line.
inline constexpr SqlText create_mailbox =
    "CREATE TABLE import_scratch.mailbox (line INTEGER NOT NULL, kind TEXT NOT NULL,"
    " address TEXT NOT NULL, value TEXT NOT NULL, state TEXT NOT NULL,"
    " PRIMARY KEY (address, line)) WITHOUT ROWID";

// The alias rows held back, in file order (line is the rowid).
inline constexpr SqlText create_alias =
    "CREATE TABLE import_scratch.alias (line INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
    " address TEXT NOT NULL, value TEXT NOT NULL, state TEXT NOT NULL)";

// Holds back a mailbox row: line, kind, address, value, state.
inline constexpr SqlText insert_mailbox = "INSERT INTO import_scratch.mailbox VALUES (?1, ?2, ?3, ?4, ?5)";

// Holds back an alias row: line, kind, address, value, state.
inline constexpr SqlText insert_alias = "INSERT INTO import_scratch.alias VALUES (?1, ?2, ?3, ?4, ?5)";

// The mailbox rows held back, by address, then line.
inline constexpr SqlText mailboxes =
    "SELECT line, kind, address, value, state FROM import_scratch.mailbox"
    " ORDER BY address, line";

// The alias rows held back, in file order.
inline constexpr SqlText aliases = "SELECT line, kind, address, value, state FROM import_scratch.alias ORDER BY line";
}  // namespace import_scratch

// The checks of Primary::check_report: each row is a problem.
namespace check {

// What integrity_check finds, "ok" left out.
inline constexpr SqlText integrity = "SELECT * FROM pragma_integrity_check WHERE integrity_check <> 'ok'";

// Mailboxes (address, unit) on a unit that does not exist.
inline constexpr SqlText mailbox_on_unknown_unit =
    "SELECT address, unit FROM mailboxes WHERE unit NOT IN (SELECT name FROM units)";

// Mailboxes (address, moving_to) moving to a unit that does not exist.
inline constexpr SqlText moving_to_unknown_unit =
    "SELECT address, moving_to FROM mailboxes WHERE moving_to IS NOT NULL"
    " AND moving_to NOT IN (SELECT name FROM units)";

// Moving mailboxes (address) without moving_to.
inline constexpr SqlText moving_without_target =
    "SELECT address FROM mailboxes WHERE state = 'moving' AND moving_to IS NULL";

// Mailboxes (address, moving_to) with moving_to set but not moving.
inline constexpr SqlText target_without_moving =
    "SELECT address, moving_to FROM mailboxes WHERE state <> 'moving' AND moving_to IS NOT NULL";

// Mailboxes (address, state) in a state the schema does not know.
inline constexpr SqlText bad_mailbox_state =
    "SELECT address, state FROM mailboxes WHERE state NOT IN ('active', 'moving', 'suspended', 'disabled')";

// Units (name, state) in a state the schema does not know.
inline constexpr SqlText bad_unit_state =
    "SELECT name, state FROM units WHERE state NOT IN ('active', 'draining', 'down')";

// A row when meta.generation is missing.
inline constexpr SqlText generation_missing =
    "SELECT 'generation' WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'generation')";

// Domains (name) where postmaster@ is neither a mailbox nor an alias nor caught by a catch-all (a warning).
inline constexpr SqlText domains_without_postmaster =
    "SELECT name FROM domains d WHERE NOT EXISTS (SELECT 1 FROM mailboxes WHERE address = 'postmaster@' || d.name)"
    " AND NOT EXISTS (SELECT 1 FROM aliases WHERE address IN ('postmaster@' || d.name, '@' || d.name))"
    " ORDER BY name";
}  // namespace check

}  // namespace unit::detail::sql
