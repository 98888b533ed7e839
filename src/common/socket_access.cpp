#include "common/socket_access.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "common/log.hpp"

namespace unit::common {

OwnerOnlyUmask::OwnerOnlyUmask() : saved_(umask(0177)) {}

OwnerOnlyUmask::~OwnerOnlyUmask() { umask(saved_); }

std::optional<gid_t> socket_group_id(const std::string& name) {
    if (name.empty()) return std::nullopt;
    const struct group* g = getgrnam(name.c_str());
    if (g == nullptr) throw std::runtime_error(fmt::format("socket_group: no such group \"{}\"", name));
    return g->gr_gid;
}

void set_socket_access(const std::string& path, unsigned mode, std::optional<gid_t> gid) {
    if (gid && chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0)
        throw std::runtime_error(fmt::format("{}: chown: {}", path, std::strerror(errno)));
    if (chmod(path.c_str(), static_cast<mode_t>(mode)) != 0)
        throw std::runtime_error(fmt::format("{}: chmod: {}", path, std::strerror(errno)));
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && st.st_gid == 0 && (mode & 0002) == 0)
        log(Severity::Warning,
            "unix:{}: group root, mode {:04o}: only root can connect (Postfix needs socket_group = postfix)", path,
            mode);
}

}  // namespace unit::common
