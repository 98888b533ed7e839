#include "unit/primary_meta.hpp"

#include <cstdlib>
#include <ctime>
#include <utility>

#include "unit/primary_db.hpp"
#include "unit/statements.hpp"

namespace unit::detail {

Result<void> ensure_primary_id(sqlite3* db) {
    // SQLite's randomness is seeded from the operating system's.
    return run(db, sql::meta::add_primary_id, {});
}

Result<DatabaseMeta> read_meta(sqlite3* db) {
    DatabaseMeta meta;
    auto generation = query_text(db, sql::meta::generation, {});
    if (!generation) return generation.error();
    if (!generation->has_value()) return make_error(Errc::Corrupt, "meta.generation is missing");
    meta.generation = std::atoll((*generation)->c_str());
    for (auto [key, field] : {std::pair{"primary_id", &meta.primary_id}, std::pair{"published_at", &meta.published_at},
                              std::pair{"publish_override", &meta.publish_override}}) {
        auto value = query_text(db, sql::meta::value, {key});
        if (!value) return value.error();
        *field = std::move(value.value());
    }
    return meta;
}

std::string utc_now() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

}  // namespace unit::detail
