#include "daemon_view.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace unit::faults {

namespace {

std::string read_all(int fd) {
    std::string text;
    char buffer[4096];
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return text;
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

// {"name":123,...}: the numbers by name; anything else is skipped.
std::map<std::string, std::int64_t> parse_flat_json(std::string_view text) {
    std::map<std::string, std::int64_t> values;
    std::size_t at = 0;
    while ((at = text.find('"', at)) != std::string_view::npos) {
        auto end = text.find('"', at + 1);
        if (end == std::string_view::npos || end + 1 >= text.size() || text[end + 1] != ':') break;
        std::string name(text.substr(at + 1, end - at - 1));
        std::int64_t value = 0;
        auto [ptr, ec] = std::from_chars(text.data() + end + 2, text.data() + text.size(), value);
        if (ec == std::errc()) values[name] = value;
        at = static_cast<std::size_t>(ptr - text.data());
        if (at <= end) at = end + 1;
    }
    return values;
}

}  // namespace

std::map<std::string, std::int64_t> counters(const std::string& control_socket) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {};
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", control_socket.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        close(fd);
        return {};
    }
    std::string text = read_all(fd);
    close(fd);
    return parse_flat_json(text);
}

RunResult run(const std::vector<std::string>& argv) {
    std::vector<std::string> args = argv;
    std::vector<char*> pointers;
    for (auto& a : args) pointers.push_back(a.data());
    pointers.push_back(nullptr);
    int pipe_fds[2];
    if (args.empty() || pipe2(pipe_fds, O_CLOEXEC) != 0) return {};
    pid_t pid = fork();
    if (pid < 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return {};
    }
    if (pid == 0) {  // only async-signal-safe calls until exec
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0) dup2(null, STDIN_FILENO);
        dup2(pipe_fds[1], STDOUT_FILENO);
        dup2(pipe_fds[1], STDERR_FILENO);
        execv(pointers[0], pointers.data());
        _exit(127);
    }
    close(pipe_fds[1]);
    RunResult result;
    result.output = read_all(pipe_fds[0]);
    close(pipe_fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace unit::faults
