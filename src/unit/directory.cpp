#include "unit/directory.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "unit/sqlite.hpp"

namespace unit {

namespace detail {

// One read-only connection to one snapshot file, its statements prepared once.
struct Connection {
    DbHandle db;
    StmtHandle begin, commit, generation, domain, mailbox, unit, aliases;
    SnapshotInfo info;
};

}  // namespace detail

using detail::Connection;
using detail::Query;

// ---------------------------------------------------------------- ValidationCache

struct ValidationCache::State {
    mutable std::mutex mutex;
    std::map<std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::int64_t>, std::string> verdicts;
};

namespace {
auto cache_key(const FileId& id) { return std::tuple(id.device, id.inode, id.size, id.mtime_ns); }
}  // namespace

ValidationCache::ValidationCache() : state_(std::make_unique<State>()) {}
ValidationCache::~ValidationCache() = default;

std::optional<std::string> ValidationCache::verdict(const FileId& id) const {
    std::lock_guard lock(state_->mutex);
    auto it = state_->verdicts.find(cache_key(id));
    if (it == state_->verdicts.end()) return std::nullopt;
    return it->second;
}

void ValidationCache::record(const FileId& id, std::string verdict) {
    std::lock_guard lock(state_->mutex);
    state_->verdicts[cache_key(id)] = std::move(verdict);
}

// ---------------------------------------------------------------- snapshot opening

namespace {

std::optional<FileId> stat_file(const std::string& path, int& error) noexcept {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        error = errno;
        return std::nullopt;
    }
    return FileId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                  static_cast<std::int64_t>(st.st_size),
                  static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

bool same_file(const FileId& a, const FileId& b) noexcept { return a.device == b.device && a.inode == b.inode; }

std::optional<std::time_t> parse_timestamp(const std::string& text) noexcept {
    std::tm tm{};
    char zulu = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &zulu) != 7 || zulu != 'Z')
        return std::nullopt;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

// A problem with a candidate file: `refuse` means the file itself is bad
// (remember it, do not try it again until it changes); otherwise the failure
// may pass (a lock, a file replaced while we looked) and we retry later.
struct OpenFailure {
    std::string reason;
    bool refuse;
};

Result<std::string> meta_value(sqlite3* db, const char* key) {
    auto stmt = detail::prepare(db, "SELECT value FROM meta WHERE key = ?1");
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    q.bind(1, key);
    auto row = q.step();
    if (!row) return row.error();
    if (!row.value()) return make_error(Errc::Corrupt, fmt::format("meta.{} is missing", key));
    return q.text(0);
}

Result<void> quick_check(sqlite3* db) {
    auto stmt = detail::prepare(db, "PRAGMA quick_check(1)");
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    auto row = q.step();
    if (!row) return row.error();
    std::string verdict = row.value() ? q.text(0) : "no answer";
    if (verdict != "ok") return make_error(Errc::Corrupt, fmt::format("quick_check: {}", verdict));
    return {};
}

Result<void> prepare_statements(Connection& c) {
    struct Entry {
        detail::StmtHandle* slot;
        const char* sql;
    };
    const Entry entries[] = {
        {&c.begin, "BEGIN"},
        {&c.commit, "COMMIT"},
        {&c.generation, "SELECT value FROM meta WHERE key = 'generation'"},
        {&c.domain, "SELECT 1 FROM domains WHERE name = ?1"},
        {&c.mailbox, "SELECT address, unit, state, moving_to FROM mailboxes WHERE address = ?1"},
        {&c.unit, "SELECT name, transport, nexthop, state FROM units WHERE name = ?1"},
        {&c.aliases, "SELECT target FROM aliases WHERE address = ?1 ORDER BY target"},
    };
    for (const auto& e : entries) {
        auto stmt = detail::prepare(c.db.get(), e.sql);
        if (!stmt) return stmt.error();
        *e.slot = std::move(stmt.value());
    }
    return {};
}

// Reads and checks what makes a file a usable snapshot; the result tells a
// bad file (Corrupt/Invalid: refuse it) from a passing failure (Unavailable).
Result<void> inspect(Connection& c, bool run_quick_check) {
    auto version_text = meta_value(c.db.get(), "schema_version");
    if (!version_text) {
        const auto& e = version_text.error();
        if (e.code == Errc::Unavailable) return e;
        return make_error(Errc::Corrupt, fmt::format("not a unitpolicy database: {}", e.message));
    }
    int version = std::atoi(version_text->c_str());
    if (version < min_schema_version || version > max_schema_version)
        return make_error(Errc::Corrupt, fmt::format("schema version {} is not supported (this build reads {} to {})",
                                                     *version_text, min_schema_version, max_schema_version));
    if (run_quick_check) {
        if (auto r = quick_check(c.db.get()); !r) return r;
    }
    auto generation = meta_value(c.db.get(), "generation");
    if (!generation) return generation.error();
    if (auto r = prepare_statements(c); !r) return r;
    c.info.schema_version = version;
    c.info.generation = std::atoll(generation->c_str());
    if (auto published = meta_value(c.db.get(), "published_at")) c.info.published_at = parse_timestamp(*published);
    return {};
}

}  // namespace

// ---------------------------------------------------------------- Directory

struct Directory::State {
    DirectoryOptions options;
    DirectoryStatus status;
    std::unique_ptr<Connection> current;
    std::optional<FileId> refused;  // the last file refused, not retried until it changes
    std::chrono::steady_clock::time_point next_check{};

    Result<std::unique_ptr<Connection>> open_candidate(const FileId& id);
    void try_switch(const FileId& id);
    void note_missing(int error);
};

Result<std::unique_ptr<Connection>> Directory::State::open_candidate(const FileId& id) {
    std::optional<std::string> cached;
    if (options.validation) cached = options.validation->verdict(id);
    if (cached && !cached->empty()) return make_error(Errc::Corrupt, *cached);

    auto db = detail::open_database(options.path, SQLITE_OPEN_READONLY,
                                    static_cast<int>(options.busy_timeout.count()));
    if (!db) return db.error();
    auto c = std::make_unique<Connection>();
    c->db = std::move(db.value());
    c->info.file = id;
    if (auto r = inspect(*c, !cached.has_value()); !r) return r.error();

    // The file may have been replaced between stat() and open(): only a
    // connection to the file we validated may serve.
    int error = 0;
    auto after = stat_file(options.path, error);
    if (!after || !same_file(*after, id))
        return make_error(Errc::Unavailable, "replaced while it was being opened");
    return c;
}

void Directory::State::try_switch(const FileId& id) {
    auto candidate = open_candidate(id);
    if (!candidate) {
        const Error& e = candidate.error();
        status.problem = fmt::format("{}: {}", options.path, e.message);
        if (e.code != Errc::Unavailable) {
            refused = id;
            ++status.refusals;
            if (options.validation) options.validation->record(id, e.message);
        }
        return;
    }
    if (options.validation) options.validation->record(id, "");
    if (current) ++status.switches;
    current = std::move(candidate.value());
    refused.reset();
    status.serving = true;
    status.snapshot = current->info;
    status.problem.clear();
}

void Directory::State::note_missing(int error) {
    status.problem = fmt::format("{}: {}", options.path, std::strerror(error));
    if (current) status.problem += fmt::format(" (serving generation {})", current->info.generation);
}

Directory::Directory(DirectoryOptions options) noexcept : state_(std::make_unique<State>()) {
    state_->options = std::move(options);
    state_->status.path = state_->options.path;
    state_->status.problem = fmt::format("{}: not opened yet", state_->options.path);
    refresh(true);
}

Directory::Directory(Directory&&) noexcept = default;
Directory& Directory::operator=(Directory&&) noexcept = default;
Directory::~Directory() = default;

void Directory::refresh(bool force) noexcept {
    State& s = *state_;
    auto now = std::chrono::steady_clock::now();
    if (!force && now < s.next_check) return;
    s.next_check = now + s.options.check_interval;
    try {
        int error = 0;
        auto id = stat_file(s.options.path, error);
        if (!id) return s.note_missing(error);
        if (s.current && same_file(*id, s.current->info.file)) {
            s.status.problem.clear();  // updated in place, or back after a refused replacement
            return;
        }
        if (s.refused && *s.refused == *id) return;
        s.try_switch(*id);
    } catch (const std::exception& e) {  // allocation failure: keep what we have
        s.status.problem = fmt::format("{}: {}", s.options.path, e.what());
    }
}

const DirectoryStatus& Directory::status() const noexcept { return state_->status; }

std::optional<std::int64_t> Directory::age_seconds(std::time_t now) const noexcept {
    if (!state_->current) return std::nullopt;
    const SnapshotInfo& info = state_->current->info;
    std::time_t since = info.published_at ? *info.published_at
                                          : static_cast<std::time_t>(info.file.mtime_ns / 1'000'000'000);
    return static_cast<std::int64_t>(now - since);
}

Result<Reader> Directory::read() noexcept {
    refresh();
    Connection* c = state_->current.get();
    if (c == nullptr) return make_error(Errc::Unavailable, state_->status.problem);
    Query begin(c->begin.get());
    if (auto r = begin.run(); !r) return r.error();
    return Reader(c);
}

// ---------------------------------------------------------------- Reader

Reader::Reader(Reader&& other) noexcept : connection_(other.connection_) { other.connection_ = nullptr; }

Reader::~Reader() {
    if (connection_ == nullptr) return;
    Query commit(connection_->commit.get());
    if (!commit.run()) sqlite3_exec(connection_->db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

Result<std::int64_t> Reader::generation() noexcept {
    Query q(connection_->generation.get());
    auto row = q.step();
    if (!row) return row.error();
    if (!row.value()) return make_error(Errc::Corrupt, "meta.generation is missing");
    return q.integer(0);
}

Result<bool> Reader::domain_served(std::string_view domain) noexcept {
    Query q(connection_->domain.get());
    q.bind(1, domain);
    return q.step();
}

Result<std::optional<MailboxRecord>> Reader::mailbox(std::string_view address) noexcept {
    try {
        Query q(connection_->mailbox.get());
        q.bind(1, address);
        auto row = q.step();
        if (!row) return row.error();
        if (!row.value()) return std::optional<MailboxRecord>();
        auto mailbox = detail::read_mailbox(q);
        if (!mailbox) return mailbox.error();
        return std::optional<MailboxRecord>(std::move(mailbox.value()));
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

Result<std::optional<UnitRecord>> Reader::unit(std::string_view name) noexcept {
    try {
        Query q(connection_->unit.get());
        q.bind(1, name);
        auto row = q.step();
        if (!row) return row.error();
        if (!row.value()) return std::optional<UnitRecord>();
        auto unit = detail::read_unit(q);
        if (!unit) return unit.error();
        return std::optional<UnitRecord>(std::move(unit.value()));
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

Result<std::vector<std::string>> Reader::alias_targets(std::string_view address) noexcept {
    try {
        Query q(connection_->aliases.get());
        q.bind(1, address);
        std::vector<std::string> targets;
        auto r = detail::for_each_row(q, [&](Query& row) { targets.push_back(row.text(0)); });
        if (!r) return r.error();
        return targets;
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

Result<DirectorySummary> Reader::summary() noexcept {
    try {
        sqlite3* db = connection_->db.get();
        DirectorySummary summary;
        auto r = detail::for_each_row(db,
                                      "SELECT (SELECT count(*) FROM domains), (SELECT count(DISTINCT address) FROM aliases),"
                                      " (SELECT count(*) FROM aliases)",
                                      [&](Query& q) {
                                          summary.domains = q.integer(0);
                                          summary.aliases = q.integer(1);
                                          summary.alias_targets = q.integer(2);
                                      });
        if (r) r = detail::for_each_row(db, "SELECT state, count(*) FROM mailboxes GROUP BY state", [&](Query& q) -> Result<void> {
            auto state = parse_mailbox_state(q.text(0));
            if (!state) return make_error(Errc::Corrupt, fmt::format("mailboxes: bad state \"{}\"", q.text(0)));
            summary.mailboxes_by_state[static_cast<int>(*state)] = q.integer(1);
            return {};
        });
        if (r) r = detail::for_each_row(db,
                                        "SELECT u.name, u.transport, u.nexthop, u.state,"
                                        " (SELECT count(*) FROM mailboxes m WHERE m.unit = u.name) FROM units u ORDER BY u.name",
                                        [&](Query& q) -> Result<void> {
                                            auto unit = detail::read_unit(q);
                                            if (!unit) return unit.error();
                                            summary.units.emplace_back(std::move(unit.value()), q.integer(4));
                                            return {};
                                        });
        if (!r) return r.error();
        return summary;
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

}  // namespace unit
