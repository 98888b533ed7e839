#include "policyd/program.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace unit::policyd {

namespace {

constexpr std::size_t max_error = 4096;  // bytes of standard error kept for the message

// A pipe whose ends close themselves; close-on-exec, so that the child only
// gets the ends dup2()ed onto its standard descriptors.
struct Pipe {
    int fd[2] = {-1, -1};
    bool open() { return pipe2(fd, O_CLOEXEC) == 0; }
    void close_end(int i) {
        if (fd[i] >= 0) ::close(fd[i]);
        fd[i] = -1;
    }
    ~Pipe() { close_end(0), close_end(1); }
};

Error failed(std::string_view program, std::string why) {
    return make_error(Errc::Unavailable, fmt::format("{}: {}", program, why));
}

// The line of standard error that says why: the first "fatal:" one (Postfix
// programs warn about their configuration first), else the first.
std::string why(const std::string& text) {
    std::size_t at = text.find("fatal:");
    at = at == std::string::npos ? 0 : text.rfind('\n', at);
    at = at == std::string::npos ? 0 : at + (text[at] == '\n');
    auto line = text.substr(at, text.find('\n', at) - at);
    return line.empty() ? std::string("no message") : line;
}

// Reads the child's two pipes until both end or the deadline passes.
// Returns an error text, or "" when both ended in time.
std::string drain(Pipe& out, Pipe& err, const ProgramLimits& limits, std::string& errors,
                  const std::function<void(std::string_view)>& on_line) {
    const auto deadline = std::chrono::steady_clock::now() + limits.timeout;
    std::string line;
    std::array<char, 65536> buffer;
    while (out.fd[0] >= 0 || err.fd[0] >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                                std::chrono::steady_clock::now());
        if (left.count() <= 0) return fmt::format("no answer within {} ms", limits.timeout.count());
        std::array<pollfd, 2> fds = {pollfd{out.fd[0], POLLIN, 0}, pollfd{err.fd[0], POLLIN, 0}};
        if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0) {
            if (errno == EINTR) continue;
            return fmt::format("poll: {}", std::strerror(errno));
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            const ssize_t n = read(fds[i].fd, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                (i == 0 ? out : err).close_end(0);
                continue;
            }
            const std::string_view got(buffer.data(), static_cast<std::size_t>(n));
            if (i == 1) {
                errors.append(got.substr(0, max_error - std::min(max_error, errors.size())));
                continue;
            }
            for (char c : got) {
                if (c != '\n') {
                    line += c;
                    if (line.size() > limits.max_line)
                        return fmt::format("an output line longer than {} bytes", limits.max_line);
                    continue;
                }
                on_line(line);
                line.clear();
            }
        }
    }
    if (!line.empty()) on_line(line);
    return {};
}

}  // namespace

Result<void> run_program(const std::vector<std::string>& argv, const ProgramLimits& limits,
                         const std::function<void(std::string_view line)>& on_line) {
    const std::string& program = argv.at(0);
    Pipe out, err;
    if (!out.open() || !err.open()) return failed(program, fmt::format("pipe: {}", std::strerror(errno)));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // the daemon's sockets and databases stay its own
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return failed(program, std::strerror(spawned));
    out.close_end(1);
    err.close_end(1);

    std::string errors;
    const std::string problem = drain(out, err, limits, errors, on_line);
    if (!problem.empty()) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!problem.empty()) return failed(program, problem);
    if (WIFSIGNALED(status)) return failed(program, fmt::format("killed by signal {}", WTERMSIG(status)));
    if (WEXITSTATUS(status) != 0)
        return failed(program, fmt::format("exit status {}: {}", WEXITSTATUS(status), why(errors)));
    return {};
}

}  // namespace unit::policyd
