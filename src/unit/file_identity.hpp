// file_identity.hpp (internal): a snapshot file and the files beside it as
// stat() sees them, for the Directory and its ValidationCache.
//
// Nothing here opens a file: stat() only, so that SQLite's POSIX locks on
// the path are never dropped (directory.hpp). Failures return nullopt with
// errno in `error` where the caller needs it. Thread-safe. Logs nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "unit/directory.hpp"

namespace unit::detail {

// A file found at the path: its identity and whether it is a regular file.
struct Found {
    FileId id;
    bool regular = false;
};

std::optional<Found> stat_file(const std::string& path, int& error) noexcept;

// Whether two identities are the same file (device and inode), changed or not.
inline bool same_file(const FileId& a, const FileId& b) noexcept { return a.device == b.device && a.inode == b.inode; }

// A FileId as an ordered key (the ValidationCache's maps).
inline auto cache_key(const FileId& id) { return std::tuple(id.device, id.inode, id.size, id.mtime_ns, id.ctime_ns); }
using CacheKey = decltype(cache_key(FileId{}));

// A WAL file holds a 32-byte header, then frames.
inline constexpr std::int64_t wal_header_bytes = 32;

// The -wal or -journal beside the path, as far as a refusal for it goes:
// which file it is and whether it is longer than `empty_bytes` (a WAL with
// frames, a journal with anything in it; one that grows stays the same
// refusal). nullopt when there is none.
std::optional<FileId> file_beside(const std::string& path, const char* suffix, std::int64_t empty_bytes) noexcept;

}  // namespace unit::detail
