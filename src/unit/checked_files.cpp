#include "unit/checked_files.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace unit {

namespace {

constexpr const char* record_heading = "# unitpolicy: replica files whose integrity check passed (safe to delete)";

// An identity we can write as one field: a word of printable ASCII.
bool writable_id(const std::string& id) {
    return std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c < 0x7f; }) && id != "-";
}

std::string read_record(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    return text.str();
}

Result<void> write_record(const std::string& path, const std::string& text) {
    const std::string temporary = fmt::format("{}.{}.tmp", path, getpid());
    auto failed = [&](const char* what) {
        Error e = make_error(Errc::Io, fmt::format("{} {}: {}", what, temporary, std::strerror(errno)));
        unlink(temporary.c_str());
        return e;
    };
    // A new file, never one planted at that name (a link to another file).
    unlink(temporary.c_str());
    const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(Errc::Io, fmt::format("cannot create {}: {}", temporary, std::strerror(errno)));
    const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int saved = errno;
    if (close(fd) != 0 || !written) {
        if (!written) errno = saved;
        return failed("cannot write");
    }
    if (rename(temporary.c_str(), path.c_str()) != 0) return failed("cannot rename");
    return {};
}

}  // namespace

std::string checked_files_text(const std::vector<CheckedFile>& entries) {
    std::string text = fmt::format("{}\n", record_heading);
    for (const auto& e : entries)
        text += fmt::format("{} {} {} {} {} {} {}\n", e.file.device, e.file.inode, e.file.size, e.file.mtime_ns,
                            e.file.ctime_ns, e.generation, e.primary_id.empty() ? "-" : e.primary_id);
    return text;
}

std::vector<CheckedFile> parse_checked_files(const std::string& text) {
    std::vector<CheckedFile> entries;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line.front() == '#') continue;
        std::istringstream fields(line);
        CheckedFile e;
        std::string rest;
        if (!(fields >> e.file.device >> e.file.inode >> e.file.size >> e.file.mtime_ns >> e.file.ctime_ns >>
              e.generation >> e.primary_id) ||
            (fields >> rest))
            continue;
        if (e.primary_id == "-") e.primary_id.clear();
        entries.push_back(std::move(e));
    }
    return entries;
}

std::shared_ptr<CheckedFiles> checked_files_in(const std::string& directory) {
    if (directory.empty()) return nullptr;
    return std::make_shared<CheckedFiles>(directory);
}

CheckedFiles::CheckedFiles(std::string directory) : path_(std::move(directory) + "/" + record_name) {}

void CheckedFiles::load_once() {
    if (loaded_) return;
    entries_ = parse_checked_files(read_record(path_));
    loaded_ = true;
}

bool CheckedFiles::contains(const CheckedFile& file) {
    std::lock_guard lock(mutex_);
    load_once();
    return std::find(entries_.begin(), entries_.end(), file) != entries_.end();
}

Result<void> CheckedFiles::add(const CheckedFile& file) {
    if (!file.primary_id.empty() && !writable_id(file.primary_id)) return {};  // checked again next time
    std::lock_guard lock(mutex_);
    load_once();
    // Merge with what another process (the other daemon) wrote meanwhile:
    // the record in its order, after what only this process still knows.
    auto on_disk = parse_checked_files(read_record(path_));
    std::erase_if(entries_,
                  [&](const CheckedFile& e) { return std::find(on_disk.begin(), on_disk.end(), e) != on_disk.end(); });
    entries_.insert(entries_.end(), on_disk.begin(), on_disk.end());
    std::erase(entries_, file);
    entries_.push_back(file);
    if (entries_.size() > max_entries)
        entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(entries_.size() - max_entries));
    return write_record(path_, checked_files_text(entries_));
}

}  // namespace unit
