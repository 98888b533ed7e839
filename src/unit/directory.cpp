#include "unit/directory.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "unit/sqlite.hpp"

namespace unit {

namespace detail {

// How a connection waits for a writer's lock: like sqlite3_busy_timeout,
// except that once a wait has run out, the lookups that follow within the
// next `timeout` try the lock once and fail at once. One daemon thread
// serves many client connections: waiting the full timeout for each of
// them in turn would multiply the delay by the requests queued behind.
struct BusyWait {
    std::chrono::milliseconds timeout{0};
    std::chrono::steady_clock::time_point started{};   // this wait
    std::chrono::steady_clock::time_point gave_up{};   // when the last wait ran out
};

// One read-only connection to one snapshot file, its statements prepared once.
struct Connection {
    DbHandle db;
    StmtHandle begin, commit, generation, domain, mailbox, unit, aliases;
    SnapshotInfo info;
    BusyWait busy;  // its address is the busy handler's context
    // The open read transaction, if any.
    bool reading = false;
    bool read_failed = false;    // a lookup in it failed: end it before the next
    bool writer_waiting = false; // seen when it began: do not hold it
    std::chrono::steady_clock::time_point read_since{};
    std::int64_t read_generation = 0;
};

}  // namespace detail

using detail::Connection;
using detail::Query;

// ---------------------------------------------------------------- busy handler

namespace {

// SQLite's busy handler: `count` is how many times it was called for this
// lock. Returns non-zero to try again. The pauses are those of
// sqlite3_busy_timeout.
int wait_for_lock(void* context, int count) noexcept {
    using namespace std::chrono;
    constexpr int pauses_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    auto& wait = *static_cast<detail::BusyWait*>(context);
    auto now = steady_clock::now();
    if (count == 0) {
        if (now - wait.gave_up < wait.timeout) return 0;  // locked a moment ago: do not queue behind it again
        wait.started = now;
    }
    auto left = wait.timeout - duration_cast<milliseconds>(now - wait.started);
    if (left <= milliseconds(0)) {
        wait.gave_up = now;
        return 0;
    }
    auto pause = milliseconds(pauses_ms[std::min<std::size_t>(static_cast<std::size_t>(count), std::size(pauses_ms) - 1)]);
    std::this_thread::sleep_for(std::min(pause, left));
    return 1;
}

}  // namespace

// ---------------------------------------------------------------- ValidationCache

struct ValidationCache::State {
    Mode mode = Mode::InPlace;
    mutable std::mutex mutex;
    std::map<std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::int64_t>, std::string> verdicts;
    bool validating = false;  // the validator thread is at work
    std::atomic<std::uint64_t> recorded{0};  // verdicts that were news
    std::thread validator;

    // Under the mutex. Counts a verdict only when it is news, so that
    // readers switching to a file already judged do not make the others
    // look again.
    void store(const FileId& id, std::string verdict);
};

namespace {
auto cache_key(const FileId& id) { return std::tuple(id.device, id.inode, id.size, id.mtime_ns); }
}  // namespace

void ValidationCache::State::store(const FileId& id, std::string verdict) {
    auto [it, inserted] = verdicts.try_emplace(cache_key(id), verdict);
    if (!inserted) {
        if (it->second == verdict) return;
        it->second = std::move(verdict);
    }
    recorded.fetch_add(1, std::memory_order_release);
}

ValidationCache::ValidationCache(Mode mode) : state_(std::make_unique<State>()) { state_->mode = mode; }

ValidationCache::~ValidationCache() {
    if (state_->validator.joinable()) state_->validator.join();
}

bool ValidationCache::in_background() const noexcept { return state_->mode == Mode::Background; }

std::uint64_t ValidationCache::verdicts_recorded() const noexcept {
    return state_->recorded.load(std::memory_order_acquire);
}

std::optional<std::string> ValidationCache::verdict(const FileId& id) const {
    std::lock_guard lock(state_->mutex);
    auto it = state_->verdicts.find(cache_key(id));
    if (it == state_->verdicts.end()) return std::nullopt;
    return it->second;
}

void ValidationCache::record(const FileId& id, std::string verdict) {
    std::lock_guard lock(state_->mutex);
    state_->store(id, std::move(verdict));
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

// A WAL file holds a 32-byte header, then frames.
constexpr std::int64_t wal_header_bytes = 32;

// The -wal beside the path, as far as a refusal for it goes: which file it
// is and whether it holds frames (a WAL that grows stays the same refusal).
std::optional<FileId> wal_beside(const std::string& path) noexcept {
    int ignored = 0;
    auto wal = stat_file(path + "-wal", ignored);
    if (!wal) return std::nullopt;
    return FileId{wal->device, wal->inode, wal->size > wal_header_bytes ? 1 : 0, 0};
}

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

// SQLite reads a WAL found beside a database file whatever the file's
// header says. A snapshot in rollback-journal mode (what publish writes)
// has no WAL of its own: one with frames beside it was left by the file it
// replaced (a replica once written in place in WAL mode, then replaced by
// rename), and reading through it would lay that file's pages over the new
// one's: old or mixed data, which quick_check does not always notice. The
// header is read through SQLite's own descriptor, before any transaction.
Result<void> check_no_stale_wal(sqlite3* db, const std::string& path) {
    sqlite3_file* file = nullptr;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK || file == nullptr ||
        file->pMethods == nullptr)
        return {};
    unsigned char header[20];
    if (file->pMethods->xRead(file, header, sizeof header, 0) != SQLITE_OK) return {};  // inspect() says why
    bool rollback_journal = header[18] == 1 && header[19] == 1;  // file format versions: 2 is WAL
    int ignored = 0;
    auto wal = stat_file(path + "-wal", ignored);
    if (!rollback_journal || !wal || wal->size <= wal_header_bytes) return {};
    return make_error(Errc::Conflict,
                      fmt::format("stale WAL: {}-wal ({} bytes) belongs to the file this rollback-journal snapshot "
                                  "replaced: remove it and {}-shm",
                                  path, wal->size, path));
}

Result<void> prepare_statements(Connection& c);
Result<void> inspect(Connection& c, bool run_quick_check);

// Opens the snapshot file at `path` and checks it (quick_check too, unless
// the file is known good). Only a connection to the file that was stat()ed
// as `id` is returned: it may be replaced between stat() and open().
Result<std::unique_ptr<Connection>> open_snapshot_file(const std::string& path, const FileId& id,
                                                       std::chrono::milliseconds busy_timeout, bool known_good) {
    auto db = detail::open_database(path, SQLITE_OPEN_READONLY, static_cast<int>(busy_timeout.count()));
    if (!db) return db.error();
    auto c = std::make_unique<Connection>();
    c->db = std::move(db.value());
    c->info.file = id;
    c->busy.timeout = busy_timeout;
    sqlite3_busy_handler(c->db.get(), wait_for_lock, &c->busy);
    // Before any statement: PRAGMA cache_size reads the schema, through a
    // stale WAL if one lies beside the file.
    if (auto r = check_no_stale_wal(c->db.get(), path); !r) return r.error();
    // Room for the inner pages of ten million mailboxes' b-trees (about
    // 4 MB), so that a lookup reads at most its leaf pages from the file.
    if (auto r = detail::exec(c->db.get(), "PRAGMA cache_size = -8192"); !r) return r.error();
    if (auto r = inspect(*c, !known_good); !r) return r.error();
    int error = 0;
    auto after = stat_file(path, error);
    if (!after || !same_file(*after, id)) return make_error(Errc::Unavailable, "replaced while it was being opened");
    return c;
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

// A file found at the path, with the WAL beside it: a refusal holds until
// either changes (removing a stale WAL makes the same file worth a retry).
struct Candidate {
    FileId file;
    std::optional<FileId> wal;
    bool operator==(const Candidate&) const = default;
};

struct Directory::State {
    DirectoryOptions options;
    DirectoryStatus status;
    std::unique_ptr<Connection> current;
    std::optional<Candidate> refused;  // the last candidate refused, not retried until it changes
    std::chrono::steady_clock::time_point next_check{};
    // The cache's verdict count at the last check. A verdict recorded since
    // (this or another thread validated a replacement) makes the next read
    // check at once, so all the Directories of a process switch at their
    // first read after it, not each at its own next check.
    std::uint64_t verdicts_seen = 0;

    Result<std::unique_ptr<Connection>> open_candidate(const FileId& id);
    void try_switch(const Candidate& candidate);
    void note_missing(int error);
    bool new_verdicts() const noexcept {
        return options.validation && options.validation->verdicts_recorded() != verdicts_seen;
    }
};

Result<std::unique_ptr<Connection>> Directory::State::open_candidate(const FileId& id) {
    std::optional<std::string> cached;
    if (options.validation) cached = options.validation->verdict(id);
    if (cached && !cached->empty()) return make_error(Errc::Corrupt, *cached);
    return open_snapshot_file(options.path, id, options.busy_timeout, cached.has_value());
}

namespace {

// A verdict that holds for the file whatever its surroundings: a bad file,
// not a lock (may pass) or a stale WAL beside it (about the surroundings).
bool is_refusal(const Error& e) noexcept { return e.code != Errc::Unavailable && e.code != Errc::Conflict; }

}  // namespace

void ValidationCache::validate_later(const FileId& id, const std::string& path, std::chrono::milliseconds busy_timeout) {
    std::lock_guard lock(state_->mutex);
    if (state_->validating || state_->verdicts.count(cache_key(id)) != 0) return;
    if (state_->validator.joinable()) state_->validator.join();  // done: it cleared `validating`
    // The thread reports under the mutex held here: `validating` is set
    // before it can clear it, and only once the thread exists.
    state_->validator = std::thread([this, id, path, busy_timeout] {
        auto opened = open_snapshot_file(path, id, busy_timeout, false);
        std::lock_guard done(state_->mutex);
        if (opened) state_->store(id, "");
        else if (is_refusal(opened.error())) state_->store(id, opened.error().message);
        state_->validating = false;
    });
    state_->validating = true;
}

void Directory::State::try_switch(const Candidate& found) {
    const FileId& id = found.file;
    // Keep answering from the current snapshot while the new file is
    // validated elsewhere, unless a WAL with frames lies beside it (then the
    // refusal for it must be seen here).
    const bool wal_beside_it = found.wal && found.wal->size != 0;
    if (current && options.validation && options.validation->in_background() && !wal_beside_it &&
        !options.validation->verdict(id)) {
        options.validation->validate_later(id, options.path, options.busy_timeout);
        return;
    }
    auto candidate = open_candidate(id);
    if (!candidate) {
        const Error& e = candidate.error();
        status.problem = fmt::format("{}: {}", options.path, e.message);
        if (e.code != Errc::Unavailable) {
            refused = found;
            ++status.refusals;
            if (options.validation && is_refusal(e)) options.validation->record(id, e.message);
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
    if (!force && now < s.next_check && !s.new_verdicts()) return;
    s.next_check = now + s.options.check_interval;
    if (s.options.validation) s.verdicts_seen = s.options.validation->verdicts_recorded();
    try {
        int error = 0;
        auto id = stat_file(s.options.path, error);
        if (!id) return s.note_missing(error);
        if (s.current && same_file(*id, s.current->info.file)) {
            s.status.problem.clear();  // updated in place, or back after a refused replacement
            return;
        }
        Candidate candidate{*id, wal_beside(s.options.path)};
        if (s.refused && *s.refused == candidate) return;
        s.try_switch(candidate);
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

namespace {

void end_read(Connection& c) noexcept {
    Query commit(c.commit.get());
    if (!commit.run()) sqlite3_exec(c.db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    c.reading = false;
    c.read_failed = false;
}

// Whether another connection holds the RESERVED lock: a writer in
// rollback-journal mode, waiting for the readers to leave. SQLite's POSIX
// locks are per process: while any worker holds a read transaction, the
// others get theirs without looking at the writer's PENDING lock, so held
// transactions, overlapping from thread to thread, would keep it out for
// good. Seeing it, each worker goes back to a transaction per lookup.
bool writer_waiting(sqlite3* db) noexcept {
    sqlite3_file* file = nullptr;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK || file == nullptr ||
        file->pMethods == nullptr)
        return false;
    int reserved = 0;
    return file->pMethods->xCheckReservedLock(file, &reserved) == SQLITE_OK && reserved != 0;
}

// BEGIN is deferred: reading the generation takes the shared lock, and the
// snapshot the transaction sees.
Result<void> begin_read(Connection& c, bool hold) noexcept {
    Query begin(c.begin.get());
    if (auto r = begin.run(); !r) return r.error();
    Query generation(c.generation.get());
    auto row = generation.step();
    Result<void> outcome;
    if (!row) outcome = row.error();
    else if (!row.value()) outcome = make_error(Errc::Corrupt, "meta.generation is missing");
    if (!outcome) {
        sqlite3_exec(c.db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        return outcome;
    }
    c.read_generation = generation.integer(0);
    c.writer_waiting = hold && writer_waiting(c.db.get());
    c.reading = true;
    c.read_since = std::chrono::steady_clock::now();
    return {};
}

}  // namespace

Result<Reader> Directory::read() noexcept {
    refresh();
    Connection* c = state_->current.get();
    if (c == nullptr) return make_error(Errc::Unavailable, state_->status.problem);
    const auto hold = state_->options.snapshot_hold;
    if (c->reading && (c->read_failed || std::chrono::steady_clock::now() - c->read_since >= hold)) end_read(*c);
    if (!c->reading) {
        if (auto r = begin_read(*c, hold.count() > 0); !r) return r.error();
    }
    return Reader(c, hold.count() == 0 || c->writer_waiting);
}

void Directory::end_expired_read() noexcept {
    Connection* c = state_->current.get();
    if (c != nullptr && c->reading && std::chrono::steady_clock::now() - c->read_since >= state_->options.snapshot_hold)
        end_read(*c);
}

// ---------------------------------------------------------------- Reader

Reader::Reader(Reader&& other) noexcept : connection_(other.connection_), ends_transaction_(other.ends_transaction_) {
    other.connection_ = nullptr;
}

Reader::~Reader() {
    if (connection_ != nullptr && ends_transaction_) end_read(*connection_);
}

Error Reader::failed(Error e) noexcept {
    connection_->read_failed = true;
    return e;
}

std::int64_t Reader::generation() const noexcept { return connection_->read_generation; }

Result<bool> Reader::domain_served(std::string_view domain) noexcept {
    Query q(connection_->domain.get());
    q.bind(1, domain);
    auto row = q.step();
    if (!row) return failed(row.error());
    return row;
}

Result<std::optional<MailboxRecord>> Reader::mailbox(std::string_view address) noexcept {
    try {
        Query q(connection_->mailbox.get());
        q.bind(1, address);
        auto row = q.step();
        if (!row) return failed(row.error());
        if (!row.value()) return std::optional<MailboxRecord>();
        auto mailbox = detail::read_mailbox(q);
        if (!mailbox) return mailbox.error();
        return std::optional<MailboxRecord>(std::move(mailbox.value()));
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
    }
}

Result<std::optional<UnitRecord>> Reader::unit(std::string_view name) noexcept {
    try {
        Query q(connection_->unit.get());
        q.bind(1, name);
        auto row = q.step();
        if (!row) return failed(row.error());
        if (!row.value()) return std::optional<UnitRecord>();
        auto unit = detail::read_unit(q);
        if (!unit) return unit.error();
        return std::optional<UnitRecord>(std::move(unit.value()));
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
    }
}

Result<std::vector<std::string>> Reader::alias_targets(std::string_view address) noexcept {
    try {
        Query q(connection_->aliases.get());
        q.bind(1, address);
        std::vector<std::string> targets;
        auto r = detail::for_each_row(q, [&](Query& row) { targets.push_back(row.text(0)); });
        if (!r) return failed(r.error());
        return targets;
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
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
        if (!r) return failed(r.error());
        return summary;
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
    }
}

}  // namespace unit
