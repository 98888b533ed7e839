// Directory (directory.hpp): looking at the path, switching to a good
// replacement, refusing a bad one, and beginning the read transactions
// that Readers (reader.cpp) end.
#include "unit/directory.hpp"

#include <fmt/format.h>

#include <cstring>

#include "unit/file_identity.hpp"
#include "unit/snapshot_check.hpp"
#include "unit/snapshot_connection.hpp"
#include "unit/snapshot_lineage.hpp"
#include "unit/snapshot_reports.hpp"

namespace unit {

using detail::about_surroundings;
using detail::age_origin;
using detail::begin_read;
using detail::check_lineage;
using detail::Connection;
using detail::Deadline;
using detail::end_read;
using detail::explained;
using detail::Failure;
using detail::file_beside;
using detail::lookup_check_steps;
using detail::lookup_overdue;
using detail::open_snapshot_file;
using detail::same_file;
using detail::stat_file;
using detail::wal_header_bytes;
using Clock = std::chrono::steady_clock;

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
    const bool beside_it = (candidate.wal && candidate.wal->size != 0) ||
                           (candidate.journal && candidate.journal->size != 0);
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
    if (current)
        served = ValidationCache::Served{current->info.primary_id, current->info.generation, current->info.file};
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

}  // namespace unit
