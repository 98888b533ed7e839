#include "unit/schema_migration.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "unit/primary_db.hpp"
#include "unit/statements.hpp"

namespace unit::detail {

Result<int> read_schema_version(sqlite3* db) {
    auto table = exists(db, sql::schema::has_meta, {});
    if (!table) return table.error();
    if (!table.value()) return 0;
    auto value = query_text(db, sql::meta::schema_version, {});
    if (!value) return value.error();
    return value->has_value() ? std::atoi((*value)->c_str()) : 0;
}

Result<void> apply_migration(sqlite3* db, const Migration& m) {
    auto txn = Transaction::begin(db, true);
    if (!txn) return txn.error();
    if (!exec_noexcept(db, m.sql)) return db_error(db, fmt::format("migration {}", m.name));
    auto version = read_schema_version(db);
    if (!version) return version.error();
    if (version.value() != m.version)
        return make_error(Errc::Corrupt, fmt::format("migration {} did not set schema_version {}", m.name, m.version));
    return txn->commit();
}

}  // namespace unit::detail
