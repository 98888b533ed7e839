// checked_files.hpp: the snapshot files whose integrity check passed,
// remembered across restarts, so that a daemon restarted over an unchanged
// replica answers at once instead of reading the whole file again first
// (PRAGMA quick_check reads every page: 1.4 s at ten million mailboxes).
//
// A file is the one checked when all of these are unchanged: its device,
// inode, size, mtime and ctime (stat()), and the primary_id and generation
// in its meta table. A replacement renamed into place has another inode; a
// file written in place has another mtime and ctime, and no program can set
// a ctime. Only the integrity check is skipped for such a file: every other
// check of a replacement (schema version, the schema's tables, no hot
// journal or stale WAL, identity and generation against the snapshot
// served) runs as always.
//
// The record is one small text file (the `cache_directory` of the daemons'
// configuration, file `checked-files`), the newest max_entries files, read
// at the first question and rewritten whole (a temporary file renamed over
// it) at each add(). Deleting it is always safe: it costs one check. A
// record that cannot be read or parsed counts as empty. Both daemons of a
// host may share it: each add() reads the file again and merges. Logs
// nothing. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "unit/directory.hpp"
#include "unit/result.hpp"

namespace unit {

struct CheckedFile {
    FileId file;
    std::string primary_id;  // "" when the snapshot has none
    std::int64_t generation = 0;
    bool operator==(const CheckedFile&) const = default;
};

class CheckedFiles {
public:
    static constexpr std::size_t max_entries = 8;
    static constexpr const char* record_name = "checked-files";

    // `directory`: where the record lives; it is not created here.
    explicit CheckedFiles(std::string directory);

    // Whether `file` passed its integrity check before (in this process or,
    // per the record, in an earlier one).
    bool contains(const CheckedFile& file);
    // Remembers `file` and rewrites the record; an error says why the
    // record could not be written (the file is still remembered here).
    Result<void> add(const CheckedFile& file);
    // The record's path.
    const std::string& path() const noexcept { return path_; }

private:
    void load_once();
    std::string path_;
    std::mutex mutex_;
    bool loaded_ = false;
    std::vector<CheckedFile> entries_;  // oldest first
};

// The record in `directory`; null when `directory` is empty (no record).
std::shared_ptr<CheckedFiles> checked_files_in(const std::string& directory);

// The record's text for `entries`, and the entries of a record's text
// (lines that do not parse are skipped). Exposed for the tests.
std::string checked_files_text(const std::vector<CheckedFile>& entries);
std::vector<CheckedFile> parse_checked_files(const std::string& text);

}  // namespace unit
