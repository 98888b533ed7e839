// privileges.hpp: giving up root after the sockets are bound.
//
// drop_privileges(user) sets the supplementary groups, the group and the
// user of `user` (getpwnam), and checks that root cannot be regained. An
// empty user, or a process already running as that user, changes nothing.
// Throws std::runtime_error with a one-line reason. Call before starting
// threads.
#pragma once

#include <string>

namespace unit::common {

void drop_privileges(const std::string& user);

}  // namespace unit::common
