// floor_server: the protocol floor of the lookup benchmark (DESIGN §8).
// It answers Postfix's policy delegation protocol with "action=DUNNO" and
// the socketmap protocol with "NOTFOUND " without any lookup: one thread
// per connection on Unix sockets, and the same framing work as unitpolicy
// (read until a whole request is buffered, parse it, write the reply).
// Whatever a real server does beyond this is the cost of its lookups.
//
// Usage: floor_server --policy PATH --socketmap PATH
// Runs until SIGTERM or SIGINT (the default action: exit).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace {

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// The policy request ends with an empty line; its attributes are parsed
// (name=value) as a real server would, then ignored.
std::size_t policy_request_end(std::string_view buffer) {
    auto end = buffer.find("\n\n");
    return end == std::string_view::npos ? 0 : end + 2;
}

std::size_t count_attributes(std::string_view request) {
    std::size_t attributes = 0;
    while (!request.empty()) {
        auto eol = request.find('\n');
        std::string_view line = request.substr(0, eol);
        if (line.find('=') != std::string_view::npos) ++attributes;
        if (eol == std::string_view::npos) break;
        request.remove_prefix(eol + 1);
    }
    return attributes;
}

// A netstring "LEN:DATA,"; 0 while incomplete, npos when malformed.
std::size_t netstring_end(std::string_view buffer) {
    std::size_t length = 0, i = 0;
    for (; i < buffer.size() && buffer[i] >= '0' && buffer[i] <= '9'; ++i) {
        length = length * 10 + static_cast<std::size_t>(buffer[i] - '0');
        if (length > 100000) return std::string_view::npos;
    }
    if (i == buffer.size()) return 0;
    if (i == 0 || buffer[i] != ':') return std::string_view::npos;
    std::size_t end = i + 1 + length + 1;
    if (buffer.size() < end) return 0;
    return buffer[end - 1] == ',' ? end : std::string_view::npos;
}

void serve(int fd, bool policy) {
    constexpr std::string_view dunno = "action=DUNNO\n\n";
    constexpr std::string_view notfound = "9:NOTFOUND ,";
    std::string buffer;
    char chunk[4096];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buffer.append(chunk, static_cast<std::size_t>(n));
        bool broken = false;
        for (;;) {
            std::size_t end = policy ? policy_request_end(buffer) : netstring_end(buffer);
            if (end == std::string_view::npos) broken = true;
            if (end == 0 || broken) break;
            if (policy && count_attributes(std::string_view(buffer).substr(0, end)) == 0) broken = true;
            buffer.erase(0, end);
            if (broken || !write_all(fd, policy ? dunno : notfound)) {
                broken = true;
                break;
            }
        }
        if (broken) break;
    }
    ::close(fd);
}

int listen_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (fd < 0 || path.size() >= sizeof address.sun_path) return -1;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 256) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void accept_loop(int listener, bool policy) {
    for (;;) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            std::perror("floor_server: accept");
            return;
        }
        std::thread(serve, fd, policy).detach();
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string policy_path, socketmap_path;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view option = argv[i];
        if (option == "--policy") policy_path = argv[i + 1];
        else if (option == "--socketmap") socketmap_path = argv[i + 1];
        else break;
    }
    if (policy_path.empty() || socketmap_path.empty() || argc != 5) {
        std::fprintf(stderr, "usage: floor_server --policy PATH --socketmap PATH\n");
        return 2;
    }
    int policy = listen_unix(policy_path), socketmap = listen_unix(socketmap_path);
    if (policy < 0 || socketmap < 0) {
        std::perror("floor_server: listen");
        return 1;
    }
    std::thread maps(accept_loop, socketmap, false);
    accept_loop(policy, true);
    maps.join();
    return 1;
}
