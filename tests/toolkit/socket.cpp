// connect_unix() and the control socket's counters.
#include "socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace unit::toolkit {

namespace {

using Clock = std::chrono::steady_clock;

void set_timeout(int fd, int option, std::chrono::milliseconds timeout) noexcept {
    if (timeout <= std::chrono::milliseconds::zero()) return;
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

int milliseconds_left(Clock::time_point deadline) noexcept {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(left) + 1;
}

}  // namespace

int connect_unix(const std::string& path, std::string& why, std::chrono::milliseconds send_timeout,
                 std::chrono::milliseconds receive_timeout) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        why = path + ": socket path too long";
        return -1;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        why = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    set_timeout(fd, SO_SNDTIMEO, send_timeout);
    set_timeout(fd, SO_RCVTIMEO, receive_timeout);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        why = path + ": connect: " + std::strerror(errno);
        close(fd);
        return -1;
    }
    return fd;
}

std::optional<std::string> read_control(const std::string& path, std::chrono::milliseconds timeout) {
    std::string why;
    int fd = connect_unix(path, why);
    if (fd < 0) return std::nullopt;
    auto deadline = Clock::now() + timeout;
    std::string text;
    char chunk[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int ready = poll(&p, 1, milliseconds_left(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        ssize_t n = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {  // the end of the answer (or a reset: what came is all there is)
            close(fd);
            return text;
        }
        text.append(chunk, static_cast<std::size_t>(n));
    }
    close(fd);
    return std::nullopt;
}

Counters parse_counters(std::string_view json) {
    Counters counters;
    // {"name":123,"other":4,...}: every value is an unsigned integer.
    for (std::size_t at = json.find('"'); at != std::string_view::npos; at = json.find('"', at)) {
        std::size_t end = json.find('"', at + 1);
        if (end == std::string_view::npos || end + 2 > json.size() || json[end + 1] != ':') break;
        std::uint64_t value = 0;
        auto [next, ec] = std::from_chars(json.data() + end + 2, json.data() + json.size(), value);
        if (ec != std::errc()) break;
        counters[std::string(json.substr(at + 1, end - at - 1))] = value;
        at = static_cast<std::size_t>(next - json.data());
    }
    return counters;
}

Counters read_counters(const std::string& path, std::chrono::milliseconds timeout) {
    auto json = read_control(path, timeout);
    return json ? parse_counters(*json) : Counters{};
}

}  // namespace unit::toolkit
