// Primary::publish: a snapshot for the replicas, and the guards that keep a
// wrong one from reaching them (a foreign or older primary, a mass removal,
// an OUT that is not a snapshot, a planted symlink).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "unit/primary.hpp"
#include "unit/primary_support.hpp"
#include "unit/statements.hpp"

namespace unit {

using namespace detail;  // the helpers of primary_support.hpp

namespace {

namespace fs = std::filesystem;

std::string_view file_type(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

// The primary and the files SQLite keeps beside it: by name (a -wal that
// does not exist at the moment is still the primary's) or as the same file.
Result<void> refuse_primary_files(const std::string& out, const std::string& primary) {
    std::error_code out_error;
    const auto out_name = fs::weakly_canonical(out, out_error);
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        const std::string file = primary + suffix;
        std::error_code name_error, file_error;
        const bool same_name = !out_error && fs::weakly_canonical(file, name_error) == out_name && !name_error;
        const bool same_file = fs::equivalent(out, file, file_error) && !file_error;
        if (same_name || same_file)
            return make_error(Errc::Invalid,
                              fmt::format("{} is the primary database{}{}", out, *suffix ? "'s " : " itself", suffix));
    }
    return {};
}

// What `out` holds now: nothing (nullopt), or a snapshot's meta. An OUT
// that is not a unitpolicy snapshot is refused unless forced (nullopt then:
// nothing to compare with).
Result<std::optional<DatabaseMeta>> previous_snapshot(const std::string& out, bool force) {
    auto meta = read_database_meta(out);
    if (!meta) {
        if (meta.error().code == Errc::NotFound) return std::optional<DatabaseMeta>();
        if (meta.error().code == Errc::Invalid)
            return make_error(Errc::Invalid,
                              fmt::format("{}, not a regular file: refusing to replace it", meta.error().message));
        if (!force)
            return make_error(Errc::Conflict,
                              fmt::format("{} exists and is not a unitpolicy snapshot ({}): refusing to "
                                          "replace it (--force replaces it anyway)",
                                          out, meta.error().message));
        return std::optional<DatabaseMeta>();
    }
    if (!meta->published_at) {
        if (!force)
            return make_error(Errc::Conflict, fmt::format("{} exists and is not a unitpolicy snapshot (no "
                                                          "meta.published_at: a primary?): refusing to replace it "
                                                          "(--force replaces it anyway)",
                                                          out));
        return std::optional<DatabaseMeta>();
    }
    return std::optional<DatabaseMeta>(std::move(meta.value()));
}

// Identity and generation against the snapshot being replaced.
Result<void> check_lineage(const std::string& out, const DatabaseMeta& previous, const DatabaseMeta& fresh,
                           PublishOverride override_generation) {
    // A snapshot without primary_id (published before identities) is taken
    // for this primary's, as the daemons take it: only generations compare.
    const bool same_primary = !previous.primary_id || previous.primary_id == fresh.primary_id;
    if (!same_primary && override_generation != PublishOverride::Takeover)
        return make_error(Errc::Conflict,
                          fmt::format("{} holds a snapshot of another primary (primary_id {}, generation {}; this "
                                      "primary is {}, generation {}): refusing to replace it (--takeover publishes it "
                                      "deliberately, e.g. after rebuilding the primary)",
                                      out, previous.primary_id.value_or("(none)"), previous.generation,
                                      fresh.primary_id.value_or("?"), fresh.generation));
    if (same_primary && fresh.generation < previous.generation && override_generation == PublishOverride::None)
        return make_error(Errc::Conflict,
                          fmt::format("{} holds generation {} of this primary, newer than generation {}: refusing "
                                      "to go back (--rollback publishes it deliberately)",
                                      out, previous.generation, fresh.generation));
    return {};
}

struct Removal {
    std::int64_t previous = 0;  // mailboxes in the previous snapshot
    std::int64_t removed = 0;   // of them, not in the new one
    std::vector<std::string> first;
};

// Walks both mailbox tables in key order, side by side: one pass each.
Result<Removal> removed_mailboxes(const std::string& previous_path, const std::string& fresh_path) {
    auto previous = open_database(previous_path, SQLITE_OPEN_READONLY, primary_busy_timeout_ms);
    if (!previous) return previous.error();
    auto fresh = open_database(fresh_path, SQLITE_OPEN_READONLY, primary_busy_timeout_ms);
    if (!fresh) return fresh.error();
    auto old_stmt = prepare(previous->get(), sql::mailboxes::addresses);
    if (!old_stmt) return old_stmt.error();
    auto new_stmt = prepare(fresh->get(), sql::mailboxes::addresses);
    if (!new_stmt) return new_stmt.error();
    Query old_rows(old_stmt->get()), new_rows(new_stmt->get());
    Removal removal;
    auto new_row = new_rows.step();
    auto old_row = old_rows.step();
    while (old_row && old_row.value()) {
        ++removal.previous;
        const std::string address = old_rows.text(0);
        while (new_row && new_row.value() && new_rows.text(0) < address) new_row = new_rows.step();
        if (!new_row) return new_row.error();
        if (!new_row.value() || new_rows.text(0) != address) {
            if (++removal.removed <= 5) removal.first.push_back(address);
        }
        old_row = old_rows.step();
    }
    if (!old_row) return old_row.error();
    return removal;
}

// OUT's directory (it may well be a symbolic link to one), so that the rename is on disk.
Result<void> fsync_directory(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::Io, fmt::format("{}: open: {}", path, std::strerror(errno)));
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    if (rc != 0) return make_error(Errc::Io, fmt::format("{}: fsync: {}", path, std::strerror(saved)));
    return {};
}

// The snapshot's permissions, whatever the umask, and its data on disk.
Result<void> seal(const std::string& path, unsigned mode) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return make_error(Errc::Io, fmt::format("{}: open: {}", path, std::strerror(errno)));
    const char* failed = ::fchmod(fd, static_cast<mode_t>(mode)) != 0 ? "fchmod" : ::fsync(fd) != 0 ? "fsync" : nullptr;
    int saved = errno;
    ::close(fd);
    if (failed) return make_error(Errc::Io, fmt::format("{}: {}: {}", path, failed, std::strerror(saved)));
    return {};
}

// Turns the fresh copy into a replica: rollback journal (readers need no
// -shm/-wal files), stamped, checked. Returns its meta.
Result<DatabaseMeta> finish_snapshot(const std::string& tmp, const std::string& published_at,
                                     PublishOverride override_generation) {
    auto db = open_rw(tmp, false);
    if (!db) return db.error();
    if (auto r = exec(db->get(), sql::settings::journal_delete); !r) return r.error();
    if (auto r = run(db->get(), sql::meta::set_published_at, {published_at}); !r) return r.error();
    std::optional<std::string> override_text;
    if (override_generation == PublishOverride::Rollback) override_text = "rollback";
    if (override_generation == PublishOverride::Takeover) override_text = "takeover";
    auto r = override_text ? run(db->get(), sql::meta::set_publish_override, {override_text})
                           : run(db->get(), sql::meta::clear_publish_override, {});
    if (!r) return r.error();
    auto check = query_text(db->get(), sql::settings::quick_check, {});
    if (!check) return check.error();
    if (!check->has_value() || **check != "ok")
        return make_error(Errc::Corrupt, fmt::format("{}: quick_check failed: {}", tmp, check->value_or("no answer")));
    return read_meta(db->get());
}

// Gives the new snapshot a modification time at least a whole second after
// the one it replaces. rsync's quick check compares size and integer-second
// mtime: two publishes within one second often have the same size, and
// `rsync -t` would skip the second one and leave every replica a generation
// behind. A missing `out` (first publish) leaves the time as written.
Result<void> stamp_after_previous(const std::string& tmp, const std::string& out) {
    struct stat previous {
    }, fresh{};
    if (::stat(out.c_str(), &previous) != 0) return {};
    if (::stat(tmp.c_str(), &fresh) != 0)
        return make_error(Errc::Io, fmt::format("{}: stat: {}", tmp, std::strerror(errno)));
    if (fresh.st_mtim.tv_sec > previous.st_mtim.tv_sec) return {};
    const struct timespec times[2] = {{0, UTIME_OMIT}, {previous.st_mtim.tv_sec + 1, 0}};
    if (::utimensat(AT_FDCWD, tmp.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        return make_error(Errc::Io, fmt::format("{}: utimensat: {}", tmp, std::strerror(errno)));
    return {};
}

// A directory only this process may write in, beside `out`, removed with
// whatever it holds when the publish ends.
class PrivateDir {
public:
    static Result<PrivateDir> create(const fs::path& dir, const std::string& name) {
        std::string pattern = (dir / fmt::format(".{}.XXXXXX", name)).string();
        if (::mkdtemp(pattern.data()) == nullptr)
            return make_error(Errc::Io, fmt::format("{}: mkdtemp: {}", pattern, std::strerror(errno)));
        return PrivateDir(std::move(pattern));
    }
    PrivateDir(PrivateDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
    PrivateDir& operator=(PrivateDir&&) = delete;
    ~PrivateDir() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

private:
    explicit PrivateDir(std::string path) : path_(std::move(path)) {}
    std::string path_;
};

}  // namespace

Result<DatabaseMeta> read_database_meta(const std::string& path) noexcept {
    return guarded<DatabaseMeta>([&]() -> Result<DatabaseMeta> {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            auto code = errno == ENOENT ? Errc::NotFound : Errc::Io;
            return make_error(code, fmt::format("{}: {}", path, std::strerror(errno)));
        }
        if (!S_ISREG(st.st_mode)) return make_error(Errc::Invalid, fmt::format("{}: {}", path, file_type(st.st_mode)));
        auto db = open_database(path, SQLITE_OPEN_READONLY, primary_busy_timeout_ms);
        if (!db) return db.error();
        auto version = read_schema_version(db->get());
        if (!version) return version.error();
        if (version.value() == 0) return make_error(Errc::Corrupt, fmt::format("{}: not a unitpolicy database", path));
        return read_meta(db->get());
    });
}

Result<PublishInfo> Primary::publish(const std::string& out, const PublishOptions& options) noexcept {
    return guarded<PublishInfo>([&]() -> Result<PublishInfo> {
        auto fail = [&](const Error& e) { return make_error(e.code, fmt::format("publish {}: {}", out, e.message)); };
        if (auto r = refuse_primary_files(out, db_->path); !r) return fail(r.error());
        auto previous = previous_snapshot(out, options.force);
        if (!previous) return fail(previous.error());
        // A primary made by the provider's own system may lack its identity.
        sqlite3* db = db_->db.get();
        if (auto r = in_transaction<void>(db, [&] { return ensure_primary_id(db); }); !r) return fail(r.error());

        fs::path target(out);
        fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
        auto private_dir = PrivateDir::create(dir, target.filename().string());
        if (!private_dir) return fail(private_dir.error());
        const std::string tmp = private_dir->path() + "/snapshot.db";
        // VACUUM INTO reads one committed snapshot of the primary: consistent
        // even while unitctl or the provider's system keeps writing.
        if (auto r = run(db, sql::publish::vacuum_into, {tmp}); !r) return fail(r.error());
        std::string published_at = utc_now();
        auto fresh = finish_snapshot(tmp, published_at, options.override_generation);
        if (!fresh) return fail(fresh.error());

        std::int64_t removed = 0;
        if (previous.value()) {
            if (auto r = check_lineage(out, **previous, fresh.value(), options.override_generation); !r)
                return fail(r.error());
            auto removal = removed_mailboxes(out, tmp);
            if (!removal) return fail(removal.error());
            removed = removal->removed;
            const auto limit = removal_limit(options.max_removed, removal->previous);
            if (removed > limit && !options.force) {
                return fail(make_error(
                    Errc::Conflict,
                    fmt::format("the snapshot removes {} of the {} mailboxes of the previous one, more than {} ({}): "
                                "refusing it (--max-removed raises the limit, --force publishes it anyway)",
                                removed, removal->previous, limit, first_addresses(removal->first, removed))));
            }
        }
        if (auto r = seal(tmp, options.mode); !r) return fail(r.error());
        if (auto r = stamp_after_previous(tmp, out); !r) return fail(r.error());
        if (::rename(tmp.c_str(), out.c_str()) != 0)
            return fail(make_error(Errc::Io, fmt::format("rename: {}", std::strerror(errno))));
        if (auto r = fsync_directory(dir.string()); !r) return fail(r.error());
        return PublishInfo{out, fresh->generation, published_at, removed};
    });
}

}  // namespace unit
