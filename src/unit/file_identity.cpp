#include "unit/file_identity.hpp"

#include <sys/stat.h>

#include <cerrno>

namespace unit {

namespace detail {

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

std::optional<FileId> file_beside(const std::string& path, const char* suffix, std::int64_t empty_bytes) noexcept {
    int ignored = 0;
    auto found = stat_file(path + suffix, ignored);
    if (!found) return std::nullopt;
    return FileId{found->id.device, found->id.inode, found->id.size > empty_bytes ? 1 : 0, 0, 0};
}

}  // namespace detail

std::optional<FileId> file_id(const std::string& path, int& error) noexcept {
    auto found = detail::stat_file(path, error);
    if (!found) return std::nullopt;
    return found->id;
}

}  // namespace unit
