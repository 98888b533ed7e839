// directory.hpp: a read-only replica of the policy database, as the daemons
// and `unitctl resolve` read it.
//
// A Directory opens the file at `path` read-only, through SQLite only (the
// path is never open()ed or close()d outside SQLite: that would drop
// SQLite's POSIX locks). At most once per check_interval (and at the first
// read after a shared ValidationCache records a verdict) it stat()s the path;
// when the device/inode changed (a replacement by rename) it validates the
// new file before switching: a regular file (stat() says so before anything
// opens it: a FIFO or a device never reaches open()), readable by this
// process, schema version supported, its tables the schema's tables (no
// view, virtual table or extra trigger: schema_check.hpp), PRAGMA
// quick_check, meta readable, no hot -journal beside it, all within
// validation_timeout; then its generation and primary identity
// against the snapshot served (regression, foreign: see below). A file that
// fails is refused: the previous good snapshot keeps answering,
// status().refused says which file and why (a RefusalReason), and the
// refusal holds until the file at the path changes. A file updated in place
// (WAL or a live replicator) is seen by the next read transaction.
//
// Generations never go backwards by accident: while a snapshot is served
// (by this Directory, or by any Directory of its ValidationCache), a
// replacement with the same meta.primary_id and a lower generation is
// refused (Regression) unless its meta.publish_override is "rollback" or
// "takeover"; one with another primary_id (or none, over a snapshot that
// has one) is refused (Foreign) unless publish_override is "takeover". A
// snapshot served without a primary_id (an older unitctl's) is adopted by
// a replacement that has one: only the generations compare. With nothing
// served yet, any valid file is taken.
//
// A replacement noticed at the path but neither served nor refused yet is
// pending (status().pending): negative answers from the snapshot served are
// then not final, since the newer file may hold the address. Before a
// negative answer, the resolver calls replacement_pending(), which stat()s
// the path at once (whatever check_interval says) without switching.
//
// Read transactions: by default each read() begins one and the Reader ends
// it. With snapshot_hold, successive read()s share one transaction for up
// to that long, so a lookup costs no lock, no file check and no page
// re-validation (SQLite re-checks its page cache at every transaction
// start, and its POSIX locks are per inode, shared by all threads). Each
// lookup still sees one committed snapshot, at most snapshot_hold old; the
// owner calls end_expired_read() at least every snapshot_hold, so that an
// idle reader does not keep its shared lock (a rollback-journal writer
// waits for it) or pin a WAL checkpoint. While a rollback-journal writer
// waits for its lock (another connection holds RESERVED), transactions are
// not held, so that the readers let it in.
//
// SQLite reads a WAL found beside a file whatever the file says, so a
// replacement renamed over a replica that was written in WAL mode would be
// read through the old file's WAL (old or mixed pages). A rollback-journal
// snapshot (what publish writes) with a WAL holding frames beside it is
// therefore refused (StaleWal), and retried when that WAL goes away. A
// WAL-mode file renamed over another cannot be told from its own WAL:
// remove the -wal and -shm of the file it replaces first. Likewise a hot
// -journal beside the file (left by a writer that crashed on it, or by the
// file it replaced) must be rolled back before anyone reads, which a
// read-only reader cannot do: a replacement with one is refused
// (HotJournal) and retried when it goes away, and lookups on a snapshot
// served when one appears fail (Errc::Unavailable) with a message that
// says so.
//
// Lookups are bounded: the lookups through one Reader have lookup_timeout
// from read() on (SQLite's progress handler interrupts them past it, with
// Errc::Timeout), so that a file changed in place after its validation
// into one whose SQL runs away cannot hold a thread.
//
// When no good snapshot was ever opened (missing, corrupt, unsupported
// schema), read() fails with Errc::Unavailable, so every lookup becomes a
// temporary failure, never "unknown".
//
// Thread safety: none. One Directory per thread; Directories of one process
// may share a ValidationCache so that a new file is quick_checked once.
// Logs nothing: status() carries switches, refusals and the last problem.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "unit/export.hpp"
#include "unit/records.hpp"
#include "unit/result.hpp"

namespace unit {

inline constexpr int min_schema_version = 1;
inline constexpr int max_schema_version = 1;

namespace detail {
struct Connection;
}
class CheckedFiles;
struct SnapshotInfo;

// Identity of a file on disk, as stat() reports it. ctime changes with the
// file's mode or owner too, so that a file refused as unreadable is tried
// again once its permissions are fixed.
struct FileId {
    std::uint64_t device = 0, inode = 0;
    std::int64_t size = 0, mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileId&) const = default;
};

// The file at `path` as stat() sees it; nullopt (errno in `error`) when stat fails.
UNIT_EXPORT std::optional<FileId> file_id(const std::string& path, int& error) noexcept;

// Why a replacement was refused (counters and logs carry the name):
// not_regular, unreadable, timeout, corrupt, unsupported_schema (a schema
// version this build does not read: upgrade it), stale_wal, regression,
// foreign, hot_journal (a -journal beside the file that a read-only reader
// cannot roll back), schema_mismatch (a supported version whose objects are
// not that schema's: a view or virtual table for a table, a missing column,
// a trigger or view of its own; schema_check.hpp: fix what wrote the file).
enum class RefusalReason {
    NotRegular,
    Unreadable,
    Timeout,
    Corrupt,
    UnsupportedSchema,
    StaleWal,
    Regression,
    Foreign,
    HotJournal,
    SchemaMismatch
};
inline constexpr std::size_t refusal_reason_count = 10;
UNIT_EXPORT std::string_view to_string(RefusalReason reason) noexcept;

// What became of a file: good (no reason), or refused and why.
struct Verdict {
    std::optional<RefusalReason> refusal;
    std::string message;  // refused: why, in words
    bool good() const noexcept { return !refusal; }
    bool operator==(const Verdict&) const = default;
};

// Remembers which files were already validated (and the verdict), so that
// the Directories of one process quick_check a new file once, and the
// newest snapshot any of them served (the baseline of the regression and
// foreign checks for a Directory with nothing served yet). Thread-safe.
//
// In the background mode, a replacement found while a good snapshot is
// being served is validated on the cache's own thread: the Directories keep
// answering from the snapshot they have (quick_check reads the whole file:
// seconds at ten million mailboxes) and switch at their first read after
// the verdict is in. A Directory with nothing to serve yet validates in
// place. In either mode, every Directory sharing the cache looks for a
// replacement at its next read after any verdict is recorded, so that the
// threads of a process switch together.
//
// With a CheckedFiles record (checked_files.hpp), a file whose integrity
// check passed in an earlier process is not checked again (the other checks
// run), and each file checked is added to it: a daemon restarted over an
// unchanged replica answers at once.
//
// A validation has validation_timeout: SQLite's work is interrupted then,
// and one stuck in a system call (an open() or read() on a hung mount) is
// abandoned to finish, or not, on its own: either way the file is refused
// (Timeout). While max_abandoned validations are still stuck, a new file
// is refused at once rather than given one more thread. The destructor
// never waits for a stuck validation.
class UNIT_EXPORT ValidationCache {
public:
    enum class Mode { InPlace, Background };
    static constexpr int max_abandoned = 4;
    explicit ValidationCache(Mode mode = Mode::InPlace, std::shared_ptr<CheckedFiles> checked = nullptr);
    ~ValidationCache();  // interrupts a validation under way; waits for none
    ValidationCache(const ValidationCache&) = delete;
    ValidationCache& operator=(const ValidationCache&) = delete;

    // nullopt: not judged yet (a validation past its timeout is judged now).
    // A good verdict also answers for the same file with another ctime (a
    // chmod or chown since); a refusal answers for that exact FileId only.
    std::optional<Verdict> verdict(const FileId& id);
    void record(const FileId& id, Verdict verdict);
    bool in_background() const noexcept;
    // How many verdicts were recorded so far: a Directory that sees the count
    // change looks for a replacement at its next read.
    std::uint64_t verdicts_recorded() const noexcept;
    // Background mode: validates the file at `path`, if it is still `id`,
    // on the cache's thread, unless that is done or under way already. A
    // failure that may pass (a lock) records nothing: asked again later.
    void validate_later(const FileId& id, const std::string& path, std::chrono::milliseconds busy_timeout,
                        std::chrono::milliseconds timeout);
    // The file being validated on the cache's thread, if any.
    std::optional<FileId> under_way() const;
    // How many files the cache remembers verdicts and reports for, at most:
    // past it the oldest are forgotten (never the newest snapshot served),
    // so that a long-running daemon over a replica replaced every minute
    // keeps a bounded cache. A file forgotten and seen again is validated
    // again.
    static constexpr std::size_t max_files = 64;
    // The newest snapshot a Directory of this cache switched to, and noting one.
    struct Served {
        std::string primary_id;
        std::int64_t generation = 0;
        std::optional<FileId> file;  // kept in the cache whatever max_files says
    };
    std::optional<Served> served() const;
    void note_served(const Served& served);
    // True the first time it is asked about a refusal of `id` for `reason`:
    // the daemons log and count each refused file once, not once per thread.
    bool first_report(const FileId& id, RefusalReason reason);
    // The same for a notice about a served file that is not a refusal
    // (clock_skew_to_report).
    bool first_notice(const FileId& id, std::string_view topic);
    // How many files it remembers now (at most max_files).
    std::size_t files_remembered() const;
    // The record of checked files, if any (null without one).
    CheckedFiles* checked_files() const noexcept;
    // Adds a snapshot whose integrity check just passed to that record.
    void remember_checked(const SnapshotInfo& info);
    // Why the record could not be written, once per new reason: for the
    // daemon's log (a record that cannot be written costs a check at the
    // next start, nothing else).
    std::optional<std::string> record_problem_to_report();

private:
    struct State;
    std::shared_ptr<State> state_;  // shared with a validation thread that may outlive the cache
};

struct DirectoryOptions {
    std::string path;
    std::chrono::milliseconds check_interval{250};
    // How long a lookup waits for a writer's lock. Once a wait has run out,
    // lookups in the next busy_timeout try once and fail at once (Unavailable),
    // so requests queued behind each other do not each wait in turn.
    std::chrono::milliseconds busy_timeout{200};
    std::shared_ptr<ValidationCache> validation;  // optional
    // How long one read transaction may serve successive read()s; 0: one
    // transaction per read(). See the top of this file.
    std::chrono::milliseconds snapshot_hold{0};
    // How long validating a replacement may take before it is refused
    // (RefusalReason::Timeout).
    std::chrono::milliseconds validation_timeout{30'000};
    // How long the lookups through one Reader (one resolution) may run, from
    // read() on; past it SQLite's work is interrupted and the lookup fails
    // with Errc::Timeout. 0: no bound. A point lookup costs microseconds:
    // the bound is for a file whose SQL does unbounded work.
    std::chrono::milliseconds lookup_timeout{1000};
};

struct SnapshotInfo {
    FileId file;
    int schema_version = 0;
    std::int64_t generation = 0;
    std::optional<std::time_t> published_at;  // meta.published_at, when stamped
    std::string primary_id;                   // meta.primary_id; "" when missing
    std::string publish_override;             // meta.publish_override: "", "rollback" or "takeover"
};

// A replacement refused, until the file at the path changes.
struct RefusedFile {
    FileId file;
    RefusalReason reason = RefusalReason::Corrupt;
    std::string message;
};

struct DirectoryStatus {
    std::string path;
    bool serving = false;        // a good snapshot is open
    SnapshotInfo snapshot;       // valid when serving
    std::string problem;         // why the file at path is not served; empty when it is
    std::uint64_t switches = 0;  // good replacements switched to
    std::uint64_t refusals = 0;  // replacements refused
    std::array<std::uint64_t, refusal_reason_count> refusals_by_reason{};  // by RefusalReason
    std::optional<RefusedFile> refused;                                    // the file at path, when it is refused
    std::optional<FileId> pending;  // a replacement noticed, neither served nor refused yet
};

class Directory;

// The refused file of `status` in words, for a daemon's log line
// ("PATH: reason: why (serving generation N)"), when it is news: the first
// time that file is reported for that reason among the Directories sharing
// `cache` (every time without one); nullopt otherwise. The daemons log and
// count each refused file once, not once per thread or pooled connection.
UNIT_EXPORT std::optional<std::string> refusal_to_report(const DirectoryStatus& status, ValidationCache* cache);

// A published_at later than the clock by more than this is bad data (a
// publisher's clock far off, or a forged stamp): the snapshot's age cannot
// be known, so it counts as older than every limit (Directory::age_seconds).
inline constexpr std::int64_t max_clock_skew_seconds = 300;
inline constexpr std::int64_t unknown_age = INT64_MAX;

// The served snapshot of `status` in words when its published_at (or,
// never published, its mtime) is more than max_clock_skew_seconds after
// `now`, for a daemon's log line, once per
// file among the Directories sharing `cache` (every time without one);
// nullopt otherwise.
UNIT_EXPORT std::optional<std::string> clock_skew_to_report(const DirectoryStatus& status, ValidationCache* cache,
                                                            std::time_t now);

// Counts for diagnostics (--dump).
struct DirectorySummary {
    std::int64_t domains = 0, aliases = 0, alias_targets = 0;
    std::int64_t mailboxes_by_state[4] = {0, 0, 0, 0};       // by MailboxState
    std::vector<std::pair<UnitRecord, std::int64_t>> units;  // with their mailbox counts, by name
};

// One read transaction: every lookup through it sees one committed snapshot.
// Lookups: a value, "not found" (nullopt / empty / false), or an error
// (Errc::Unavailable for a lock or I/O error, Errc::Corrupt for bad data,
// Errc::Timeout past lookup_timeout since read(); summary() has no bound).
// An error ends a held transaction at the next read().
class UNIT_EXPORT Reader {
public:
    Reader(Reader&& other) noexcept;
    Reader& operator=(Reader&&) = delete;
    ~Reader();  // ends the transaction

    // meta.generation of this transaction's snapshot (read when it began).
    std::int64_t generation() const noexcept;
    Result<bool> domain_served(std::string_view domain) noexcept;
    Result<std::optional<MailboxRecord>> mailbox(std::string_view address) noexcept;
    Result<std::optional<UnitRecord>> unit(std::string_view name) noexcept;
    Result<std::vector<std::string>> alias_targets(std::string_view address) noexcept;
    // Whole-table counts: for diagnostics, not for the request path.
    Result<DirectorySummary> summary() noexcept;

private:
    friend class Directory;
    Reader(detail::Connection* connection, bool ends_transaction) noexcept
        : connection_(connection), ends_transaction_(ends_transaction) {}
    Error failed(Error e) noexcept;  // marks the transaction for ending
    detail::Connection* connection_;
    bool ends_transaction_;
};

class UNIT_EXPORT Directory {
public:
    explicit Directory(DirectoryOptions options) noexcept;
    Directory(Directory&&) noexcept;
    Directory& operator=(Directory&&) noexcept;
    ~Directory();

    // Looks for a replacement now if check_interval has passed (always when
    // forced); switches to it when it is good.
    void refresh(bool force = false) noexcept;
    // Whether a replacement is pending, looked at now (one stat() of the
    // path, whatever check_interval says): noticed, not served nor refused.
    // Never switches (a Reader may be open) and never opens the file here;
    // in the background mode it starts the new file's validation, otherwise
    // the next read() validates it. False when nothing is served.
    bool replacement_pending() noexcept;
    // refresh(), then begins a read transaction on the current snapshot (or,
    // with snapshot_hold, goes on with the one held since less than that).
    Result<Reader> read() noexcept;
    // Ends a held read transaction begun snapshot_hold or more ago.
    void end_expired_read() noexcept;
    const DirectoryStatus& status() const noexcept;
    // Seconds since the snapshot was published (published_at, or the file's
    // mtime when it was never published); nullopt when not serving;
    // unknown_age (older than every limit: tempfails past max_replica_age,
    // no 5xx past reject_max_age) when that time is more than
    // max_clock_skew_seconds in the future. Within the skew, it may be
    // negative.
    std::optional<std::int64_t> age_seconds(std::time_t now) const noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace unit
