#include "unit/snapshot_check.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "unit/checked_files.hpp"
#include "unit/file_identity.hpp"
#include "unit/schema_check.hpp"
#include "unit/statements.hpp"

namespace unit {

std::string_view to_string(RefusalReason reason) noexcept {
    switch (reason) {
    case RefusalReason::NotRegular: return "not_regular";
    case RefusalReason::Unreadable: return "unreadable";
    case RefusalReason::Timeout: return "timeout";
    case RefusalReason::Corrupt: return "corrupt";
    case RefusalReason::UnsupportedSchema: return "unsupported_schema";
    case RefusalReason::StaleWal: return "stale_wal";
    case RefusalReason::HotJournal: return "hot_journal";
    case RefusalReason::SchemaMismatch: return "schema_mismatch";
    case RefusalReason::Regression: return "regression";
    case RefusalReason::Foreign: return "foreign";
    }
    return "?";
}

namespace detail {

std::string seconds_text(std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000) : fmt::format("{} ms", d.count());
}

bool about_surroundings(RefusalReason reason) noexcept {
    return reason == RefusalReason::StaleWal || reason == RefusalReason::HotJournal;
}

bool hot_journal(sqlite3* db) noexcept { return sqlite3_extended_errcode(db) == SQLITE_READONLY_ROLLBACK; }

std::string hot_journal_message(const std::string& path) {
    return fmt::format(
        "hot journal: {}-journal needs rolling back, which a read-only reader cannot do: let the "
        "writer of this file recover it, or remove it if it belongs to a file this one replaced",
        path);
}

namespace {

std::optional<std::time_t> parse_timestamp(const std::string& text) noexcept {
    std::tm tm{};
    char zulu = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &zulu) != 7 ||
        zulu != 'Z')
        return std::nullopt;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

// nullopt when the key is absent.
Result<std::optional<std::string>> optional_meta(sqlite3* db, const char* key) {
    auto stmt = detail::prepare(db, sql::meta::value);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    q.bind(1, key);
    auto row = q.step();
    if (!row) return row.error();
    if (!row.value()) return std::optional<std::string>();
    return std::optional<std::string>(q.text(0));
}

Result<std::string> meta_value(sqlite3* db, const char* key) {
    auto value = optional_meta(db, key);
    if (!value) return value.error();
    if (!value.value()) return make_error(Errc::Corrupt, fmt::format("meta.{} is missing", key));
    return std::move(*value.value());
}

Result<void> quick_check(sqlite3* db) {
    auto stmt = detail::prepare(db, sql::settings::quick_check_first);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    auto row = q.step();
    if (!row) return row.error();
    std::string verdict = row.value() ? q.text(0) : "no answer";
    if (verdict != "ok") return make_error(Errc::Corrupt, fmt::format("quick_check: {}", verdict));
    return {};
}

// SQLite reads a WAL found beside a database file whatever the file's
// header says. A snapshot in rollback-journal mode (what publish writes)
// has no WAL of its own: one with frames beside it was left by the file it
// replaced (a replica once written in place in WAL mode, then replaced by
// rename), and reading through it would lay that file's pages over the new
// one's: old or mixed data, which quick_check does not always notice. The
// header is read through SQLite's own descriptor, before any transaction.
std::optional<Failure> check_no_stale_wal(sqlite3* db, const std::string& path) {
    sqlite3_file* file = nullptr;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK || file == nullptr ||
        file->pMethods == nullptr)
        return std::nullopt;
    unsigned char header[20];
    if (file->pMethods->xRead(file, header, sizeof header, 0) != SQLITE_OK) return std::nullopt;  // inspect() says why
    bool rollback_journal = header[18] == 1 && header[19] == 1;  // file format versions: 2 is WAL
    int ignored = 0;
    auto wal = stat_file(path + "-wal", ignored);
    if (!rollback_journal || !wal || wal->id.size <= wal_header_bytes) return std::nullopt;
    return refusal(RefusalReason::StaleWal,
                   fmt::format("stale WAL: {}-wal ({} bytes) belongs to the file this rollback-journal snapshot "
                               "replaced: remove it and {}-shm",
                               path, wal->id.size, path));
}

int interrupt_when_due(void* context) noexcept { return static_cast<const Deadline*>(context)->passed() ? 1 : 0; }

// How inspect() treats the integrity check (PRAGMA quick_check).
struct IntegrityCheck {
    bool known_good = false;          // this process judged the file good: skip it
    CheckedFiles* checked = nullptr;  // skip it for a file recorded there
    bool ran = false;                 // out: it ran and passed
};

// A failed read: a lock or I/O error may pass, anything else is a bad file.
Failure read_failure(const Error& e) {
    if (e.code == Errc::Unavailable || e.code == Errc::Io) return passing(e.message);
    return refusal(RefusalReason::Corrupt, e.message);
}

// Reads and checks what makes a file a usable snapshot.
std::optional<Failure> inspect(Connection& c, IntegrityCheck& integrity) {
    // Nothing is read from a table before it is known to be one: a view of
    // its name would run its own SQL (schema_check.hpp). meta first: it
    // holds the version that says what the other tables must be.
    auto mismatch = [&](int version, std::string_view only) -> std::optional<Failure> {
        auto why = detail::schema_mismatch(c.db.get(), version, only);
        if (!why) return read_failure(why.error());
        if (!why.value()) return std::nullopt;
        return refusal(RefusalReason::SchemaMismatch,
                       fmt::format("not the tables of schema {}: {}", version, *why.value()));
    };
    if (auto bad = mismatch(min_schema_version, "meta")) return bad;
    auto version_text = meta_value(c.db.get(), "schema_version");
    if (!version_text) {
        const auto& e = version_text.error();
        if (e.code == Errc::Unavailable) return passing(e.message);
        return refusal(RefusalReason::Corrupt, fmt::format("not a unitpolicy database: {}", e.message));
    }
    int version = std::atoi(version_text->c_str());
    if (version < min_schema_version || version > max_schema_version)
        return refusal(RefusalReason::UnsupportedSchema,
                       fmt::format("schema version {} is not supported (this build reads {} to {})", *version_text,
                                   min_schema_version, max_schema_version));
    if (auto bad = mismatch(version, {})) return bad;
    // meta is a plain table of the schema now: reading it runs no SQL of
    // the file's, and says which snapshot this is before the check.
    auto generation = meta_value(c.db.get(), "generation");
    if (!generation) return read_failure(generation.error());
    auto primary_id = optional_meta(c.db.get(), "primary_id");
    if (!primary_id) return read_failure(primary_id.error());
    const CheckedFile recorded{c.info.file, primary_id->value_or(""), std::atoll(generation->c_str())};
    if (!integrity.known_good && !(integrity.checked && integrity.checked->contains(recorded))) {
        if (auto r = quick_check(c.db.get()); !r) return read_failure(r.error());
        integrity.ran = true;
    }
    auto override_value = optional_meta(c.db.get(), "publish_override");
    if (!override_value) return read_failure(override_value.error());
    if (auto r = prepare_statements(c); !r) return read_failure(r.error());
    c.info.schema_version = version;
    c.info.generation = std::atoll(generation->c_str());
    c.info.primary_id = primary_id->value_or("");
    c.info.publish_override = override_value->value_or("");
    if (auto published = meta_value(c.db.get(), "published_at")) c.info.published_at = parse_timestamp(*published);
    return std::nullopt;
}

}  // namespace

Opening open_snapshot_file(const std::string& path, const FileId& id, std::chrono::milliseconds busy_timeout,
                           bool known_good, CheckedFiles* record, const Deadline& deadline) {
    auto fail = [](Failure f) { return Opening{nullptr, std::move(f)}; };
    int error = 0;
    auto before = stat_file(path, error);
    if (!before || !same_file(before->id, id)) return fail(passing("replaced while it was being opened"));
    if (!before->regular) return fail(refusal(RefusalReason::NotRegular, "not a regular file"));
    // stat()-like: no descriptor of the path is opened outside SQLite.
    if (faccessat(AT_FDCWD, path.c_str(), R_OK, AT_EACCESS) != 0) {
        if (errno == EACCES)
            return fail(refusal(RefusalReason::Unreadable,
                                fmt::format("cannot be read by this process (uid {}): permission denied", geteuid())));
        return fail(passing(fmt::format("{}: {}", path, std::strerror(errno))));
    }
    auto db = detail::open_database(path, SQLITE_OPEN_READONLY, static_cast<int>(busy_timeout.count()));
    if (!db) {
        if (db.error().code == Errc::Corrupt) return fail(refusal(RefusalReason::Corrupt, db.error().message));
        return fail(passing(db.error().message));
    }
    auto c = std::make_unique<Connection>();
    IntegrityCheck integrity{known_good, record};
    c->db = std::move(db.value());
    c->info.file = id;
    c->busy.timeout = busy_timeout;
    sqlite3_busy_handler(c->db.get(), wait_for_lock, &c->busy);
    sqlite3_progress_handler(c->db.get(), 1000, interrupt_when_due, const_cast<Deadline*>(&deadline));
    auto checked = [&]() -> std::optional<Failure> {
        // Before any statement: PRAGMA cache_size reads the schema, through a
        // stale WAL if one lies beside the file.
        if (auto stale = check_no_stale_wal(c->db.get(), path)) return stale;
        // Room for the inner pages of ten million mailboxes' b-trees (about
        // 4 MB), so that a lookup reads at most its leaf pages from the file.
        if (auto r = detail::exec(c->db.get(), sql::settings::cache_8mib); !r) return read_failure(r.error());
        return inspect(*c, integrity);
    }();
    if (checked && !checked->refusal && hot_journal(c->db.get()))
        checked = refusal(RefusalReason::HotJournal, hot_journal_message(path));
    sqlite3_progress_handler(c->db.get(), 0, nullptr, nullptr);
    // Past the deadline, even a validation that ended is refused: the
    // bound holds for small files too (SQLite looks every 1000 steps).
    if (checked || deadline.passed()) {
        if (!checked && deadline.cancel != nullptr && deadline.cancel->load()) return fail(passing("cancelled"));
        if (deadline.passed())
            return fail(refusal(RefusalReason::Timeout,
                                fmt::format("validation did not finish within validation_timeout ({})",
                                            seconds_text(deadline.timeout))));
        return fail(std::move(*checked));
    }
    auto after = stat_file(path, error);
    if (!after || !same_file(after->id, id)) return fail(passing("replaced while it was being opened"));
    return Opening{std::move(c), {}, integrity.ran};
}

}  // namespace detail

}  // namespace unit
