#include "common/privileges.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace unit::common {

void drop_privileges(const std::string& user) {
    if (user.empty()) return;
    struct passwd* pw = getpwnam(user.c_str());
    if (pw == nullptr) throw std::runtime_error(fmt::format("user: no such user \"{}\"", user));
    if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid) return;
    auto fail = [&](const char* what) {
        throw std::runtime_error(fmt::format("user {}: {}: {}", user, what, std::strerror(errno)));
    };
    if (initgroups(pw->pw_name, pw->pw_gid) != 0) fail("initgroups");
    if (setgid(pw->pw_gid) != 0) fail("setgid");
    if (setuid(pw->pw_uid) != 0) fail("setuid");
    if (pw->pw_uid != 0 && setuid(0) == 0) throw std::runtime_error(fmt::format("user {}: root regained", user));
}

}  // namespace unit::common
