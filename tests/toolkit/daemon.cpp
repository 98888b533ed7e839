// Daemon: fork/exec with the output in a log, wait for its sockets or a
// log line, stop it.
#include "daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace unit::toolkit {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto poll_interval = std::chrono::milliseconds(10);
constexpr auto kill_grace = std::chrono::seconds(5);

bool exists(const std::string& path) noexcept {
    struct stat st {};
    return stat(path.c_str(), &st) == 0;
}

// Between fork() and exec() only async-signal-safe calls: everything the
// child needs is prepared before the fork.
[[noreturn]] void exec_child(char* const argv[], const char* log_path, int log_flags,
                             const rlimit* open_files) noexcept {
    if (open_files != nullptr && setrlimit(RLIMIT_NOFILE, open_files) != 0) _exit(126);
    int log = open(log_path, O_WRONLY | O_CREAT | O_CLOEXEC | log_flags, 0644);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log < 0 || null < 0) _exit(126);
    dup2(null, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(argv[0], argv);
    _exit(127);
}

// Waits for the process to end, at most `grace`; its status, or nullopt.
std::optional<int> reap_within(int pid, std::chrono::milliseconds grace) noexcept {
    auto deadline = Clock::now() + grace;
    for (;;) {
        int status = 0;
        int r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return -1;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(poll_interval);
    }
}

}  // namespace

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    return "stopped";
}

int exit_code(int status) noexcept { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

std::optional<Daemon> Daemon::start(const std::vector<std::string>& argv, const std::vector<std::string>& wait_for,
                                    const std::string& log_path, std::chrono::milliseconds timeout, std::string& why) {
    LaunchOptions options;
    options.wait_for = wait_for;
    options.timeout = timeout;
    return start(argv, log_path, options, why);
}

std::optional<Daemon> Daemon::start(const std::vector<std::string>& argv, const std::string& log_path,
                                    const LaunchOptions& options, std::string& why) {
    if (argv.empty()) {
        why = "no program to start";
        return std::nullopt;
    }
    std::vector<std::string> args = argv;
    std::vector<char*> pointers;
    for (auto& a : args) pointers.push_back(a.data());
    pointers.push_back(nullptr);
    const rlimit* open_files = options.open_files ? &*options.open_files : nullptr;
    int log_flags = options.truncate_log ? O_TRUNC : O_APPEND;

    int pid = fork();
    if (pid < 0) {
        why = std::string("fork: ") + std::strerror(errno);
        return std::nullopt;
    }
    if (pid == 0) exec_child(pointers.data(), log_path.c_str(), log_flags, open_files);

    Daemon daemon(pid, argv[0], log_path);
    auto deadline = Clock::now() + options.timeout;
    for (;;) {
        bool ready = true;
        for (const auto& path : options.wait_for) ready = ready && exists(path);
        if (ready) return daemon;
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            daemon.pid_ = -1;
            why = argv[0] + ": " + describe_status(status) + " before it was ready (see " + log_path + ")";
            return std::nullopt;
        }
        if (Clock::now() >= deadline) {
            why = argv[0] + ": not ready after " + std::to_string(options.timeout.count()) + " ms (see " + log_path +
                  ")";
            return std::nullopt;  // the destructor stops it
        }
        std::this_thread::sleep_for(poll_interval);
    }
}

Daemon::Daemon(Daemon&& other) noexcept
    : pid_(other.pid_), program_(std::move(other.program_)), log_path_(std::move(other.log_path_)) {
    other.pid_ = -1;
}

Daemon& Daemon::operator=(Daemon&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) stop();
        pid_ = other.pid_;
        program_ = std::move(other.program_);
        log_path_ = std::move(other.log_path_);
        other.pid_ = -1;
    }
    return *this;
}

Daemon::~Daemon() {
    if (pid_ > 0) stop();
}

bool Daemon::alive() const noexcept {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    // WNOWAIT: look without reaping, so stop() still gets the status.
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
    return info.si_pid == 0;
}

void Daemon::signal(int signo) const noexcept {
    if (pid_ > 0) kill(pid_, signo);
}

int Daemon::stop(int signo, std::chrono::milliseconds grace) {
    if (pid_ <= 0) return -1;
    kill(pid_, signo);
    auto status = reap_within(pid_, grace);
    if (!status) {
        kill(pid_, SIGKILL);
        status = reap_within(pid_, kill_grace);
    }
    pid_ = -1;
    return status.value_or(-1);
}

std::string Daemon::log() const {
    std::ifstream in(log_path_, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

bool Daemon::wait_for_log(std::string_view text, std::chrono::milliseconds timeout, std::string& why) {
    auto deadline = Clock::now() + timeout;
    while (log().find(text) == std::string::npos) {
        if (!alive()) {
            // Reaped here: a daemon that is gone has nothing left to stop.
            int status = pid_ > 0 ? stop() : -1;
            why = program_ + ": " + (status == -1 ? std::string("not running") : describe_status(status)) +
                  " before it logged \"" + std::string(text) + "\"";
            return false;
        }
        if (Clock::now() >= deadline) {
            why = program_ + ": no \"" + std::string(text) + "\" in its log after " + std::to_string(timeout.count()) +
                  " ms";
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

}  // namespace unit::toolkit
