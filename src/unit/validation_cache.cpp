// ValidationCache (directory.hpp): the verdicts on snapshot files shared by
// the Directories of a process, and the validations it runs on its own
// thread in the background mode.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "unit/checked_files.hpp"
#include "unit/directory.hpp"
#include "unit/file_identity.hpp"
#include "unit/snapshot_check.hpp"

namespace unit {

using detail::cache_key;
using detail::CacheKey;
using detail::Deadline;
using detail::seconds_text;
using Clock = std::chrono::steady_clock;

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
    std::shared_ptr<CheckedFiles> checked;                               // the record of checked files, if any
    std::string record_problem;                                          // why it could not be written last
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
        prune(
            reported, [](const auto& key) { return key.first; }, [](std::uint64_t seq) { return seq; });
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
    prune(
        verdicts, [](const CacheKey& key) { return key; }, [](const auto& entry) { return entry.second; });
    recorded.fetch_add(1, std::memory_order_release);
}

void ValidationCache::State::expire() {
    if (!job || Clock::now() < job->deadline.at) return;
    store(job->id,
          Verdict{RefusalReason::Timeout, fmt::format("validation did not finish within validation_timeout ({})",
                                                      seconds_text(job->deadline.timeout))});
    job->cancel = true;  // SQLite's work stops at once; a system call, when it returns
    job->abandoned = true;
    ++abandoned;
    validator.detach();
    job.reset();
}

ValidationCache::ValidationCache(Mode mode, std::shared_ptr<CheckedFiles> checked) : state_(std::make_shared<State>()) {
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
        auto opened = detail::open_snapshot_file(path, job->id, busy_timeout, false, state->checked.get(),
                                                 job->deadline);
        if (opened.connection && opened.integrity_checked && !job->cancel)
            state->remember_checked(opened.connection->info);
        std::lock_guard done(state->mutex);
        if (job->abandoned) {  // timed out: its verdict is in already
            --state->abandoned;
            return;
        }
        if (!job->cancel) {
            if (opened.connection) state->store(job->id, Verdict{});
            else if (opened.failure.refusal && !detail::about_surroundings(*opened.failure.refusal))
                state->store(job->id, Verdict{opened.failure.refusal, opened.failure.message});
        }
        job->finished = true;
        state->job.reset();
        state->finished.notify_all();
    });
    s.job = std::move(job);
}

}  // namespace unit
