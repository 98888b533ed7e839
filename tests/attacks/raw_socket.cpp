// RawSocket: blocking and non-blocking writes, reads that watch for the
// peer closing, and the three ways of leaving (close, half-close, reset).
#include "raw_socket.hpp"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "socket.hpp"

namespace unit::attacks {

namespace {

using Clock = std::chrono::steady_clock;

int milliseconds_left(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(left);
}

bool peer_gone(int error) { return error == EPIPE || error == ECONNRESET || error == ENOTCONN; }

}  // namespace

RawSocket RawSocket::connect(const std::string& path) {
    std::string why;
    int fd = toolkit::connect_unix(path, why);
    return fd < 0 ? RawSocket() : RawSocket(fd);
}

RawSocket::RawSocket(RawSocket&& other) noexcept : fd_(other.fd_), received_(std::move(other.received_)) {
    other.fd_ = -1;
}

RawSocket& RawSocket::operator=(RawSocket&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = other.fd_;
        received_ = std::move(other.received_);
        other.fd_ = -1;
    }
    return *this;
}

RawSocket::~RawSocket() { close(); }

bool RawSocket::send_all(std::string_view bytes, std::size_t& sent) {
    if (fd_ < 0) return false;
    while (!bytes.empty()) {
        ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool RawSocket::send_all(std::string_view bytes) {
    std::size_t ignored = 0;
    return send_all(bytes, ignored);
}

bool RawSocket::send_nowait(std::string_view bytes) {
    if (fd_ < 0) return false;
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return n >= 0 || !peer_gone(errno);
}

int RawSocket::read_once(std::chrono::milliseconds timeout) {
    if (fd_ < 0) return 0;
    pollfd p{fd_, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready <= 0) return -1;
    char chunk[16384];
    ssize_t n = recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n > 0) {
        received_.append(chunk, static_cast<std::size_t>(n));
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
    return 0;  // end of stream, or reset
}

bool RawSocket::wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        int r = read_once(std::chrono::milliseconds(milliseconds_left(deadline)));
        if (r == 0) return true;
        if (r < 0 && Clock::now() >= deadline) return false;
    }
}

bool RawSocket::read_until(std::string_view marker, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (received_.find(marker) == std::string::npos) {
        int r = read_once(std::chrono::milliseconds(milliseconds_left(deadline)));
        if (r == 0) return received_.find(marker) != std::string::npos;
        if (r < 0 && Clock::now() >= deadline) return false;
    }
    return true;
}

bool RawSocket::readable(std::chrono::milliseconds timeout) const {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

bool RawSocket::peer_closed() const {
    if (fd_ < 0) return true;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 0) != 1) return false;
    if (p.revents & (POLLHUP | POLLERR)) return true;
    char byte;
    ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && peer_gone(errno));
}

void RawSocket::set_send_timeout(std::chrono::milliseconds timeout) {
    if (fd_ < 0) return;
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void RawSocket::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void RawSocket::abort() { close(); }

void RawSocket::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::size_t raise_open_file_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    return static_cast<std::size_t>(limit.rlim_cur);
}

}  // namespace unit::attacks
