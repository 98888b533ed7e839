#include "unit/directory.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "unit/checked_files.hpp"
#include "unit/schema_check.hpp"
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
    // The bound of the lookups through the current Reader (lookup_timeout
    // after read()); time_point::max() between Readers. The progress
    // handler interrupts SQLite's work past it.
    std::chrono::milliseconds lookup_timeout{0};
    std::chrono::steady_clock::time_point lookup_deadline = std::chrono::steady_clock::time_point::max();
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

// SQLite calls this every lookup_check_steps virtual-machine steps of a
// statement: past the deadline, the statement ends with SQLITE_INTERRUPT.
// A point lookup takes fewer steps than that: it is never called for one.
constexpr int lookup_check_steps = 1000;

int lookup_overdue(void* context) noexcept {
    const auto& c = *static_cast<const detail::Connection*>(context);
    return std::chrono::steady_clock::now() >= c.lookup_deadline ? 1 : 0;
}

}  // namespace

// ---------------------------------------------------------------- file identity

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

namespace {

using Clock = std::chrono::steady_clock;

// A file found at the path: its identity and whether it is a regular file.
struct Found {
    FileId id;
    bool regular = false;
};

std::optional<Found> stat_file(const std::string& path, int& error) noexcept {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        error = errno;
        return std::nullopt;
    }
    auto ns = [](const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; };
    return Found{FileId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                        static_cast<std::int64_t>(st.st_size), ns(st.st_mtim), ns(st.st_ctim)},
                 S_ISREG(st.st_mode)};
}

bool same_file(const FileId& a, const FileId& b) noexcept { return a.device == b.device && a.inode == b.inode; }

auto cache_key(const FileId& id) { return std::tuple(id.device, id.inode, id.size, id.mtime_ns, id.ctime_ns); }
using CacheKey = decltype(cache_key(FileId{}));

std::string seconds_text(std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000) : fmt::format("{} ms", d.count());
}

}  // namespace

std::optional<FileId> file_id(const std::string& path, int& error) noexcept {
    auto found = stat_file(path, error);
    if (!found) return std::nullopt;
    return found->id;
}

// ---------------------------------------------------------------- snapshot opening

namespace {

// A WAL file holds a 32-byte header, then frames.
constexpr std::int64_t wal_header_bytes = 32;

// The -wal or -journal beside the path, as far as a refusal for it goes:
// which file it is and whether it is longer than `empty_bytes` (a WAL with
// frames, a journal with anything in it; one that grows stays the same
// refusal).
std::optional<FileId> file_beside(const std::string& path, const char* suffix, std::int64_t empty_bytes) noexcept {
    int ignored = 0;
    auto found = stat_file(path + suffix, ignored);
    if (!found) return std::nullopt;
    return FileId{found->id.device, found->id.inode, found->id.size > empty_bytes ? 1 : 0, 0, 0};
}

// Refusals about the files beside a snapshot, not the snapshot itself: not
// remembered as the file's verdict, and tried again when those files change.
bool about_surroundings(RefusalReason reason) noexcept {
    return reason == RefusalReason::StaleWal || reason == RefusalReason::HotJournal;
}

// SQLite says SQLITE_READONLY_ROLLBACK when a -journal beside the file
// looks hot (not empty, no writer holding the file): it must be rolled back
// into the file before anyone reads, which a read-only reader cannot do. A
// journal left by a writer that crashed on this file needs that writer (or
// any read-write open) to recover it; one left by a file this one replaced
// would lay that file's pages over this one's, and must be removed.
bool hot_journal(sqlite3* db) noexcept { return sqlite3_extended_errcode(db) == SQLITE_READONLY_ROLLBACK; }

std::string hot_journal_message(const std::string& path) {
    return fmt::format("hot journal: {}-journal needs rolling back, which a read-only reader cannot do: let the "
                       "writer of this file recover it, or remove it if it belongs to a file this one replaced",
                       path);
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

// nullopt when the key is absent.
Result<std::optional<std::string>> optional_meta(sqlite3* db, const char* key) {
    auto stmt = detail::prepare(db, "SELECT value FROM meta WHERE key = ?1");
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
    auto stmt = detail::prepare(db, "PRAGMA quick_check(1)");
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    auto row = q.step();
    if (!row) return row.error();
    std::string verdict = row.value() ? q.text(0) : "no answer";
    if (verdict != "ok") return make_error(Errc::Corrupt, fmt::format("quick_check: {}", verdict));
    return {};
}

// Why a file cannot be served now: a refusal (a bad file) or, without a
// reason, a failure that may pass (a lock, a file replaced meanwhile).
struct Failure {
    std::optional<RefusalReason> refusal;
    std::string message;
};

Failure passing(std::string message) { return Failure{std::nullopt, std::move(message)}; }
Failure refusal(RefusalReason reason, std::string message) { return Failure{reason, std::move(message)}; }

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

// Interrupts SQLite's work on a file being validated once its time is up
// (or the cache that asked for it is going away).
struct Deadline {
    Clock::time_point at;
    const std::atomic<bool>* cancel = nullptr;
    std::chrono::milliseconds timeout{0};
    bool passed() const noexcept {
        return (cancel != nullptr && cancel->load(std::memory_order_relaxed)) || Clock::now() >= at;
    }
};

// A lookup interrupted at its bound says which bound, and one refused for a
// hot journal says so; other errors pass.
Error explained(const Connection& c, Error e) {
    if (e.code == Errc::Timeout)
        e.message = fmt::format("lookup did not finish within lookup_timeout ({} ms)", c.lookup_timeout.count());
    else if (const char* path = sqlite3_db_filename(c.db.get(), "main"); path != nullptr && hot_journal(c.db.get()))
        e.message = hot_journal_message(path);
    return e;
}

int interrupt_when_due(void* context) noexcept { return static_cast<const Deadline*>(context)->passed() ? 1 : 0; }

Result<void> prepare_statements(Connection& c);
// How inspect() treats the integrity check (PRAGMA quick_check).
struct IntegrityCheck {
    bool known_good = false;           // this process judged the file good: skip it
    CheckedFiles* checked = nullptr;   // skip it for a file recorded there
    bool ran = false;                  // out: it ran and passed
};
std::optional<Failure> inspect(Connection& c, IntegrityCheck& integrity);

// A failed read: a lock or I/O error may pass, anything else is a bad file.
Failure read_failure(const Error& e) {
    if (e.code == Errc::Unavailable || e.code == Errc::Io) return passing(e.message);
    return refusal(RefusalReason::Corrupt, e.message);
}

// An opened and checked snapshot, or why not.
struct Opening {
    std::unique_ptr<Connection> connection;
    Failure failure;  // when connection is null
    bool integrity_checked = false;  // PRAGMA quick_check ran on it and passed
};

// Opens the snapshot file at `path` and checks it (quick_check too, unless
// the file is known good or in `record`), all before `deadline`. Only a connection to the
// file that was stat()ed as `id` is returned: it may be replaced between
// stat() and open(). The type is checked again just before SQLite opens
// the path: a FIFO swapped in since would block open().
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
        if (auto r = detail::exec(c->db.get(), "PRAGMA cache_size = -8192"); !r) return read_failure(r.error());
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

// Whether `next` may replace `served` (see the top of directory.hpp):
// nullopt when it may, otherwise the refusal.
std::optional<Failure> check_lineage(const ValidationCache::Served& served, const SnapshotInfo& next) {
    if (next.publish_override == "takeover") return std::nullopt;
    auto name = [](const std::string& id) { return id.empty() ? std::string("(none)") : id; };
    // A snapshot served without an identity (published before primaries had
    // one) is adopted by the first replacement that carries one: only the
    // generations are compared, so that upgrading needs no --takeover.
    if (!served.primary_id.empty() && next.primary_id != served.primary_id)
        return refusal(RefusalReason::Foreign,
                       fmt::format("generation {} of primary {} would replace generation {} of primary {}: another "
                                   "primary (publish it with --takeover if that is meant)",
                                   next.generation, name(next.primary_id), served.generation, name(served.primary_id)));
    if (next.generation < served.generation && next.publish_override != "rollback")
        return refusal(RefusalReason::Regression,
                       fmt::format("generation {} is lower than generation {} served (primary {}): a regression "
                                   "(publish it with --rollback if that is meant)",
                                   next.generation, served.generation, name(served.primary_id)));
    return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------- ValidationCache

// One validation on the cache's thread. `abandoned` and `finished` are
// read and written under the cache's mutex.
struct ValidationJob {
    FileId id;
    Deadline deadline;
    std::atomic<bool> cancel{false};
    bool abandoned = false, finished = false;
};

struct ValidationCache::State {
    Mode mode = Mode::InPlace;
    mutable std::mutex mutex;
    std::condition_variable finished;
    // Each entry with the sequence number of its insertion: the smallest go
    // first when there are more than max_files (prune()).
    std::map<CacheKey, std::pair<Verdict, std::uint64_t>> verdicts;
    std::uint64_t sequence = 0;
    std::atomic<std::uint64_t> recorded{0};  // verdicts that were news
    std::shared_ptr<ValidationJob> job;      // the validation under way
    std::thread validator;                   // its thread, or a finished one not joined yet
    int abandoned = 0;                       // validations past their timeout, still stuck
    std::optional<Served> served;
    std::map<std::pair<CacheKey, std::string>, std::uint64_t> reported;  // refusals and notices, with sequence
    std::shared_ptr<CheckedFiles> checked;    // the record of checked files, if any
    std::string record_problem;               // why it could not be written last
    // A new record_problem not reported yet. Atomic: the daemons ask at
    // every request, and should not take the mutex for it.
    std::atomic<bool> record_problem_news{false};

    // Not under the mutex (it writes a file): adds `info` to the record.
    void remember_checked(const SnapshotInfo& info) {
        if (!checked) return;
        auto written = checked->add(CheckedFile{info.file, info.primary_id, info.generation});
        std::lock_guard lock(mutex);
        std::string problem = written ? std::string() : written.error().message;
        if (problem != record_problem) record_problem_news.store(!problem.empty(), std::memory_order_release);
        record_problem = std::move(problem);
    }

    // Under the mutex: forgets the oldest entries past max_files, never the
    // file served.
    template <class Map, class KeyOf, class SequenceOf>
    void prune(Map& map, KeyOf key_of, SequenceOf sequence_of) {
        while (map.size() > max_files) {
            auto oldest = map.end();
            for (auto it = map.begin(); it != map.end(); ++it) {
                if (served && served->file && key_of(it->first) == cache_key(*served->file)) continue;
                if (oldest == map.end() || sequence_of(it->second) < sequence_of(oldest->second)) oldest = it;
            }
            if (oldest == map.end()) return;
            map.erase(oldest);
        }
    }
    bool first_report(const FileId& id, std::string topic) {
        if (!reported.try_emplace({cache_key(id), std::move(topic)}, ++sequence).second) return false;
        prune(reported, [](const auto& key) { return key.first; }, [](std::uint64_t seq) { return seq; });
        return true;
    }

    // Under the mutex. Counts a verdict only when it is news, so that
    // readers switching to a file already judged do not make the others
    // look again.
    void store(const FileId& id, Verdict verdict);
    // Under the mutex: a validation past its deadline refuses its file and
    // is left to end on its own (it may be stuck in a system call).
    void expire();
};

void ValidationCache::State::store(const FileId& id, Verdict verdict) {
    auto [it, inserted] = verdicts.try_emplace(cache_key(id), verdict, ++sequence);
    if (!inserted) {
        if (it->second.first == verdict) return;
        it->second.first = std::move(verdict);
    }
    prune(verdicts, [](const CacheKey& key) { return key; }, [](const auto& entry) { return entry.second; });
    recorded.fetch_add(1, std::memory_order_release);
}

void ValidationCache::State::expire() {
    if (!job || Clock::now() < job->deadline.at) return;
    store(job->id, Verdict{RefusalReason::Timeout, fmt::format("validation did not finish within validation_timeout ({})",
                                                               seconds_text(job->deadline.timeout))});
    job->cancel = true;  // SQLite's work stops at once; a system call, when it returns
    job->abandoned = true;
    ++abandoned;
    validator.detach();
    job.reset();
}

ValidationCache::ValidationCache(Mode mode, std::shared_ptr<CheckedFiles> checked)
    : state_(std::make_shared<State>()) {
    state_->mode = mode;
    state_->checked = std::move(checked);
}

ValidationCache::~ValidationCache() {
    std::unique_lock lock(state_->mutex);
    if (auto job = state_->job) {
        job->cancel = true;
        // Interrupted SQLite work ends within milliseconds; a thread stuck in
        // a system call is left behind (it holds the state it needs).
        if (!state_->finished.wait_for(lock, std::chrono::milliseconds(50), [&] { return job->finished; })) {
            job->abandoned = true;
            state_->validator.detach();
            return;
        }
    }
    lock.unlock();
    if (state_->validator.joinable()) state_->validator.join();
}

bool ValidationCache::in_background() const noexcept { return state_->mode == Mode::Background; }

std::uint64_t ValidationCache::verdicts_recorded() const noexcept {
    return state_->recorded.load(std::memory_order_acquire);
}

std::optional<Verdict> ValidationCache::verdict(const FileId& id) {
    std::lock_guard lock(state_->mutex);
    state_->expire();
    auto it = state_->verdicts.find(cache_key(id));
    if (it != state_->verdicts.end()) return it->second.first;
    // A good verdict stands when only the ctime changed since (a chmod or
    // chown after the rename): otherwise a Directory that looks after the
    // change would have the file validated again and answer from the old
    // snapshot meanwhile, while those that looked before serve the new
    // one. The file is still opened, so a change that makes it unreadable
    // is still refused; a refusal keeps the ctime, so fixing the
    // permissions retries it.
    for (const auto& [key, entry] : state_->verdicts) {
        const auto& [device, inode, size, mtime_ns, ctime_ns] = key;
        if (entry.first.good() && device == id.device && inode == id.inode && size == id.size &&
            mtime_ns == id.mtime_ns)
            return entry.first;
    }
    return std::nullopt;
}

void ValidationCache::record(const FileId& id, Verdict verdict) {
    std::lock_guard lock(state_->mutex);
    state_->store(id, std::move(verdict));
}

std::optional<FileId> ValidationCache::under_way() const {
    std::lock_guard lock(state_->mutex);
    if (!state_->job) return std::nullopt;
    return state_->job->id;
}

std::optional<ValidationCache::Served> ValidationCache::served() const {
    std::lock_guard lock(state_->mutex);
    return state_->served;
}

void ValidationCache::note_served(const Served& served) {
    std::lock_guard lock(state_->mutex);
    state_->served = served;
}

bool ValidationCache::first_report(const FileId& id, RefusalReason reason) {
    std::lock_guard lock(state_->mutex);
    return state_->first_report(id, std::string(to_string(reason)));
}

bool ValidationCache::first_notice(const FileId& id, std::string_view topic) {
    std::lock_guard lock(state_->mutex);
    return state_->first_report(id, "notice " + std::string(topic));
}

std::size_t ValidationCache::files_remembered() const {
    std::lock_guard lock(state_->mutex);
    return std::max(state_->verdicts.size(), state_->reported.size());
}

CheckedFiles* ValidationCache::checked_files() const noexcept { return state_->checked.get(); }

void ValidationCache::remember_checked(const SnapshotInfo& info) { state_->remember_checked(info); }

std::optional<std::string> ValidationCache::record_problem_to_report() {
    if (!state_->record_problem_news.load(std::memory_order_acquire)) return std::nullopt;
    std::lock_guard lock(state_->mutex);
    if (!state_->record_problem_news.exchange(false)) return std::nullopt;
    return fmt::format("cannot record the replica as checked ({}): a restart will check it again",
                       state_->record_problem);
}

std::optional<std::string> refusal_to_report(const DirectoryStatus& status, ValidationCache* cache) {
    const auto& refused = status.refused;
    if (!refused || (cache != nullptr && !cache->first_report(refused->file, refused->reason))) return std::nullopt;
    std::string text = fmt::format("{}: {}: {}", status.path, to_string(refused->reason), refused->message);
    if (status.serving) text += fmt::format(" (serving generation {})", status.snapshot.generation);
    return text;
}

namespace {

// What a snapshot's age counts from: published_at, or the file's mtime when
// it was never published.
std::time_t age_origin(const SnapshotInfo& info) noexcept {
    return info.published_at ? *info.published_at : static_cast<std::time_t>(info.file.mtime_ns / 1'000'000'000);
}

}  // namespace

std::optional<std::string> clock_skew_to_report(const DirectoryStatus& status, ValidationCache* cache, std::time_t now) {
    const auto& snapshot = status.snapshot;
    if (!status.serving || age_origin(snapshot) - now <= max_clock_skew_seconds) return std::nullopt;
    if (cache != nullptr && !cache->first_notice(snapshot.file, "clock_skew")) return std::nullopt;
    return fmt::format("{}: generation {} was published {} s in the future ({}, more than the {} s of clock skew "
                       "allowed): its age is unknown, so it counts as older than reject_max_age and max_replica_age",
                       status.path, snapshot.generation, age_origin(snapshot) - now,
                       snapshot.published_at ? "published_at" : "its modification time", max_clock_skew_seconds);
}

void ValidationCache::validate_later(const FileId& id, const std::string& path, std::chrono::milliseconds busy_timeout,
                                     std::chrono::milliseconds timeout) {
    std::lock_guard lock(state_->mutex);
    State& s = *state_;
    s.expire();
    if (s.job || s.verdicts.count(cache_key(id)) != 0) return;
    if (s.abandoned >= max_abandoned) {
        s.store(id, Verdict{RefusalReason::Timeout,
                            fmt::format("not validated: {} earlier validations are still stuck past validation_timeout",
                                        s.abandoned)});
        return;
    }
    if (s.validator.joinable()) s.validator.join();  // done: it has finished
    auto job = std::make_shared<ValidationJob>();
    job->id = id;
    job->deadline = Deadline{Clock::now() + timeout, &job->cancel, timeout};
    // The thread reports under the mutex held here: the job is in place
    // before it can finish.
    s.validator = std::thread([state = state_, job, path, busy_timeout] {
        auto opened = open_snapshot_file(path, job->id, busy_timeout, false, state->checked.get(), job->deadline);
        if (opened.connection && opened.integrity_checked && !job->cancel) state->remember_checked(opened.connection->info);
        std::lock_guard done(state->mutex);
        if (job->abandoned) {  // timed out: its verdict is in already
            --state->abandoned;
            return;
        }
        if (!job->cancel) {
            if (opened.connection) state->store(job->id, Verdict{});
            else if (opened.failure.refusal && !about_surroundings(*opened.failure.refusal))
                state->store(job->id, Verdict{opened.failure.refusal, opened.failure.message});
        }
        job->finished = true;
        state->job.reset();
        state->finished.notify_all();
    });
    s.job = std::move(job);
}

// ---------------------------------------------------------------- Directory

// A file found at the path, with the WAL and journal beside it: a refusal
// holds until one of them changes (removing a stale WAL or a hot journal
// makes the same file worth a retry).
struct Candidate {
    FileId file;
    bool regular = false;
    std::optional<FileId> wal, journal;
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

    enum class Next { Wait, Open };
    std::optional<Candidate> look();
    Next examine(const Candidate& candidate);
    void open_and_switch(const Candidate& candidate);
    void refuse(const Candidate& candidate, RefusalReason reason, const std::string& message);
    void set_pending(const Candidate& candidate) { status.pending = candidate.file; }
    void clear_pending() noexcept { status.pending.reset(); }
    void note_missing(int error);
    bool new_verdicts() const noexcept {
        return options.validation && options.validation->verdicts_recorded() != verdicts_seen;
    }
};

// The file at the path when it is neither the one served nor the one
// refused last: a candidate to examine. Notes a missing file.
std::optional<Candidate> Directory::State::look() {
    int error = 0;
    auto found = stat_file(options.path, error);
    if (!found) {
        clear_pending();
        note_missing(error);
        return std::nullopt;
    }
    if (current && same_file(found->id, current->info.file)) {
        clear_pending();
        status.refused.reset();
        status.problem.clear();  // updated in place, or back after a refused replacement
        return std::nullopt;
    }
    Candidate candidate{found->id, found->regular, file_beside(options.path, "-wal", wal_header_bytes),
                        file_beside(options.path, "-journal", 0)};
    if (refused && *refused == candidate) return std::nullopt;
    return candidate;
}

// Refuses what can be refused without opening the file, and tells whether
// the caller may open it now: otherwise it is pending (validated on the
// cache's thread) or refused.
Directory::State::Next Directory::State::examine(const Candidate& candidate) {
    if (!candidate.regular) {
        refuse(candidate, RefusalReason::NotRegular, "not a regular file");
        return Next::Wait;
    }
    if (!options.validation) return Next::Open;
    auto verdict = options.validation->verdict(candidate.file);
    if (verdict && !verdict->good()) {
        refuse(candidate, *verdict->refusal, verdict->message);
        return Next::Wait;
    }
    // Keep answering from the current snapshot while the new file is
    // validated elsewhere, unless a WAL with frames or a journal lies beside
    // it (then the refusal for it, not remembered by the cache, must be seen
    // here).
    const bool beside_it = (candidate.wal && candidate.wal->size != 0) || (candidate.journal && candidate.journal->size != 0);
    if (!verdict && current && options.validation->in_background() && !beside_it) {
        set_pending(candidate);
        options.validation->validate_later(candidate.file, options.path, options.busy_timeout,
                                           options.validation_timeout);
        return Next::Wait;
    }
    return Next::Open;
}

void Directory::State::open_and_switch(const Candidate& found) {
    const FileId& id = found.file;
    std::optional<Verdict> cached;
    if (options.validation) cached = options.validation->verdict(id);
    const bool known_good = cached && cached->good();
    const Deadline deadline{Clock::now() + options.validation_timeout, nullptr, options.validation_timeout};
    CheckedFiles* checked = options.validation ? options.validation->checked_files() : nullptr;
    auto opened = open_snapshot_file(options.path, id, options.busy_timeout, known_good, checked, deadline);
    if (!opened.connection) {
        const Failure& f = opened.failure;
        if (!f.refusal) {  // may pass: tried again at the next check
            status.problem = fmt::format("{}: {}", options.path, f.message);
            set_pending(found);
            return;
        }
        // A stale WAL or a hot journal is about the file's surroundings, not the file.
        if (options.validation && !about_surroundings(*f.refusal))
            options.validation->record(id, Verdict{f.refusal, f.message});
        refuse(found, *f.refusal, f.message);
        return;
    }
    if (options.validation && !known_good) options.validation->record(id, Verdict{});
    if (options.validation && opened.integrity_checked) options.validation->remember_checked(opened.connection->info);
    const SnapshotInfo& next = opened.connection->info;
    std::optional<ValidationCache::Served> served;
    if (current) served = ValidationCache::Served{current->info.primary_id, current->info.generation, current->info.file};
    else if (options.validation) served = options.validation->served();
    if (served) {
        if (auto lineage = check_lineage(*served, next)) {
            refuse(found, *lineage->refusal, lineage->message);
            return;
        }
    }
    if (current) ++status.switches;
    current = std::move(opened.connection);
    if (options.lookup_timeout.count() > 0) {
        current->lookup_timeout = options.lookup_timeout;
        sqlite3_progress_handler(current->db.get(), lookup_check_steps, lookup_overdue, current.get());
    }
    if (options.validation)
        options.validation->note_served({current->info.primary_id, current->info.generation, current->info.file});
    refused.reset();
    clear_pending();
    status.refused.reset();
    status.serving = true;
    status.snapshot = current->info;
    status.problem.clear();
}

void Directory::State::refuse(const Candidate& candidate, RefusalReason reason, const std::string& message) {
    refused = candidate;
    clear_pending();
    status.problem = fmt::format("{}: {}", options.path, message);
    ++status.refusals;
    ++status.refusals_by_reason[static_cast<std::size_t>(reason)];
    status.refused = RefusedFile{candidate.file, reason, message};
}

void Directory::State::note_missing(int error) {
    status.refused.reset();
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
        auto candidate = s.look();
        if (candidate && s.examine(*candidate) == State::Next::Open) s.open_and_switch(*candidate);
    } catch (const std::exception& e) {  // allocation failure: keep what we have
        s.status.problem = fmt::format("{}: {}", s.options.path, e.what());
    }
}

bool Directory::replacement_pending() noexcept {
    State& s = *state_;
    if (!s.current) return false;
    try {
        auto candidate = s.look();
        if (!candidate) return false;
        if (s.status.pending == candidate->file) return true;
        // Newly noticed: refused at once when that needs no open(); otherwise
        // pending, validated on the cache's thread or at the next read here.
        if (s.examine(*candidate) == State::Next::Open) {
            s.set_pending(*candidate);
            s.next_check = std::chrono::steady_clock::now();
        }
        return s.status.pending.has_value();
    } catch (const std::exception&) {  // allocation failure: in doubt
        return true;
    }
}

const DirectoryStatus& Directory::status() const noexcept { return state_->status; }

std::optional<std::int64_t> Directory::age_seconds(std::time_t now) const noexcept {
    if (!state_->current) return std::nullopt;
    const SnapshotInfo& info = state_->current->info;
    std::time_t since = age_origin(info);
    if (since - now > max_clock_skew_seconds) return unknown_age;  // bad data: never younger than every limit
    return static_cast<std::int64_t>(now - since);
}

namespace {

void end_read(Connection& c) noexcept {
    c.lookup_deadline = Clock::time_point::max();  // ending it is not a lookup
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
    if (!row) outcome = explained(c, row.error());  // before ROLLBACK resets the error code
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
    if (c->lookup_timeout.count() > 0) c->lookup_deadline = Clock::now() + c->lookup_timeout;
    if (!c->reading) {
        if (auto r = begin_read(*c, hold.count() > 0); !r) {
            c->lookup_deadline = Clock::time_point::max();
            return explained(*c, r.error());
        }
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
    if (connection_ == nullptr) return;
    if (ends_transaction_) end_read(*connection_);
    else connection_->lookup_deadline = Clock::time_point::max();
}

Error Reader::failed(Error e) noexcept {
    connection_->read_failed = true;
    return explained(*connection_, std::move(e));
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
    // Whole-table counts take seconds at ten million rows: diagnostics are
    // not bound by lookup_timeout.
    connection_->lookup_deadline = Clock::time_point::max();
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
