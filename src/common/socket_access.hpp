// socket_access.hpp: who may connect to a daemon's unix socket.
//
// Both daemons create their unix sockets while still root, then give them
// socket_group and socket_mode before dropping privileges. Between bind()
// and chmod() the socket must already be closed to others: a client that
// connects in that window stays connected whatever the mode set later. So
// the socket is created under OwnerOnlyUmask (0177), then given its group,
// then its mode.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace unit::common {

// While it lives, the process's umask is 0177: a socket bound meanwhile is
// srw------- (its owner only). Not thread-safe: use before threads start.
class OwnerOnlyUmask {
public:
    OwnerOnlyUmask();
    ~OwnerOnlyUmask();
    OwnerOnlyUmask(const OwnerOnlyUmask&) = delete;
    OwnerOnlyUmask& operator=(const OwnerOnlyUmask&) = delete;

private:
    mode_t saved_;
};

// The group id of socket_group `name`; nullopt when `name` is empty. Throws
// std::runtime_error ("socket_group: no such group ...") for an unknown
// group: look it up before creating the socket so that a bad name leaves
// no socket behind.
std::optional<gid_t> socket_group_id(const std::string& name);

// Gives the socket at `path` the group `gid` (when set), then `mode`.
// Throws std::runtime_error naming the path and the failed call. Logs one
// warning when the socket ends up of group root without access for others:
// Postfix's processes, which run as user postfix, could not connect.
void set_socket_access(const std::string& path, unsigned mode, std::optional<gid_t> gid);

}  // namespace unit::common
