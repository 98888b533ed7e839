#include "replica_files.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

namespace unit::faults {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

void touch(const std::string& path) { std::ofstream(path).put('\n'); }

// Runs SQL on a file directly, as a provider's own system or a broken
// replicator would.
void raw_sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    std::string error = rc == SQLITE_OK ? "" : sqlite3_errmsg(db);
    if (rc == SQLITE_OK && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
        error = sqlite3_errmsg(db);
    sqlite3_close_v2(db);
    if (!error.empty()) fail(fmt::format("{}: {}", path, error));
}

}  // namespace

ReplicaFiles::ReplicaFiles(Primary& primary, std::string replica, std::string work_dir)
    : primary_(primary), replica_(std::move(replica)), staging_(work_dir + "/staged.db") {}

std::int64_t ReplicaFiles::stage_snapshot() {
    auto published = primary_.publish(staging_);
    if (!published) fail(fmt::format("publish: {}", published.error().message));
    return published->generation;
}

void ReplicaFiles::stage_truncated() {
    stage_snapshot();
    auto size = std::filesystem::file_size(staging_);
    std::filesystem::resize_file(staging_, size / 2);
}

void ReplicaFiles::stage_random_bytes() {
    stage_snapshot();
    auto size = std::filesystem::file_size(staging_);
    std::mt19937_64 random(7);
    std::ofstream out(staging_, std::ios::binary | std::ios::trunc);
    for (std::uintmax_t i = 0; i < size; i += 8) {
        std::uint64_t word = random();
        out.write(reinterpret_cast<const char*>(&word), sizeof word);
    }
    if (!out) fail(fmt::format("{}: cannot write", staging_));
}

void ReplicaFiles::stage_unsupported_schema(int version) {
    stage_snapshot();
    raw_sql(staging_, fmt::format("UPDATE meta SET value = '{}' WHERE key = 'schema_version'", version));
}

void ReplicaFiles::stage_endless_view() {
    stage_snapshot();
    raw_sql(staging_,
            "DROP TABLE mailboxes; CREATE VIEW mailboxes (address, unit, state, moving_to) AS"
            " WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)"
            " SELECT 'x' || i || '@example.com', 'unit0001', 'active', NULL FROM n");
}

Clock::time_point ReplicaFiles::install() {
    if (std::rename(staging_.c_str(), replica_.c_str()) != 0)
        fail(fmt::format("rename {} {}: {}", staging_, replica_, std::strerror(errno)));
    return Clock::now();
}

void ReplicaFiles::remove_replica() {
    if (unlink(replica_.c_str()) != 0) fail(fmt::format("unlink {}: {}", replica_, std::strerror(errno)));
}

void ReplicaFiles::remove_wal_files() {
    for (const char* suffix : {"-wal", "-shm"}) {
        std::string path = replica_ + suffix;
        if (unlink(path.c_str()) != 0 && errno != ENOENT)
            fail(fmt::format("unlink {}: {}", path, std::strerror(errno)));
    }
}

int hold_lock(const std::string& db_path, std::chrono::milliseconds hold, const std::string& marker_dir) {
    sqlite3* db = nullptr;
    auto complain = [&](const char* what) {
        std::fprintf(stderr, "hold-lock: %s: %s: %s\n", db_path.c_str(), what, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close_v2(db);
        return 1;
    };
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) return complain("open");
    // Readers come and go all the time: wait for a moment between them.
    sqlite3_busy_timeout(db, 10'000);
    if (sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) != SQLITE_OK) return complain("begin exclusive");
    touch(marker_dir + "/locked");
    std::this_thread::sleep_for(hold);
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return complain("commit");
    touch(marker_dir + "/released");
    sqlite3_close_v2(db);
    return 0;
}

}  // namespace unit::faults
