// Process: a daemon under test (fork/exec, wait for its sockets, stop it);
// ProcessSample: its CPU time and resident memory from /proc.
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

#include "load.hpp"

namespace unit::load {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto poll_interval = std::chrono::milliseconds(10);
constexpr auto stop_grace = std::chrono::seconds(5);

bool exists(const std::string& path) noexcept {
    struct stat st {};
    return stat(path.c_str(), &st) == 0;
}

// Between fork() and exec() only async-signal-safe calls: everything the
// child needs is prepared before the fork.
[[noreturn]] void exec_child(char* const argv[], const char* log_path) noexcept {
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log < 0 || null < 0) _exit(126);
    dup2(null, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(argv[0], argv);
    _exit(127);
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    return "stopped";
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

std::optional<Process> Process::start(const std::vector<std::string>& argv, const std::vector<std::string>& wait_for,
                                      const std::string& log_path, std::chrono::milliseconds timeout,
                                      std::string& why) {
    if (argv.empty()) {
        why = "no program to start";
        return std::nullopt;
    }
    std::vector<std::string> args = argv;
    std::vector<char*> pointers;
    for (auto& a : args) pointers.push_back(a.data());
    pointers.push_back(nullptr);

    int pid = fork();
    if (pid < 0) {
        why = std::string("fork: ") + std::strerror(errno);
        return std::nullopt;
    }
    if (pid == 0) exec_child(pointers.data(), log_path.c_str());

    Process process(pid);
    auto deadline = Clock::now() + timeout;
    for (;;) {
        bool ready = true;
        for (const auto& path : wait_for) ready = ready && exists(path);
        if (ready) return process;
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            process.pid_ = -1;
            why = argv[0] + ": " + describe_status(status) + " before it was ready (see " + log_path + ")";
            return std::nullopt;
        }
        if (Clock::now() >= deadline) {
            why = argv[0] + ": not ready after " + std::to_string(timeout.count()) + " ms (see " + log_path + ")";
            return std::nullopt;  // the destructor stops it
        }
        std::this_thread::sleep_for(poll_interval);
    }
}

Process::Process(Process&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) stop();
        pid_ = other.pid_;
        other.pid_ = -1;
    }
    return *this;
}

Process::~Process() {
    if (pid_ > 0) stop();
}

bool Process::alive() const noexcept {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    // WNOWAIT: look without reaping, so stop() still gets the status.
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
    return info.si_pid == 0;
}

void Process::signal(int signo) const noexcept {
    if (pid_ > 0) kill(pid_, signo);
}

int Process::stop(int signo) {
    if (pid_ <= 0) return -1;
    kill(pid_, signo);
    auto status = reap_within(pid_, stop_grace);
    if (!status) {
        kill(pid_, SIGKILL);
        status = reap_within(pid_, stop_grace);
    }
    pid_ = -1;
    return status.value_or(-1);
}

// ------------------------------------------------------------ ProcessSample

std::optional<ProcessSample> ProcessSample::read(int pid) {
    std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
    std::string stat_line;
    if (!std::getline(stat_file, stat_line)) return std::nullopt;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    auto close_paren = stat_line.rfind(')');
    if (close_paren == std::string::npos) return std::nullopt;
    std::istringstream fields(stat_line.substr(close_paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // Fields 3..13 precede utime (14) and stime (15).
    for (int i = 3; i <= 13 && fields >> field; ++i) {}
    if (!(fields >> utime >> stime)) return std::nullopt;

    ProcessSample sample;
    sample.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    std::ifstream status_file("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status_file, line);) {
        if (line.rfind("VmRSS:", 0) != 0) continue;
        sample.rss_bytes = std::stoull(line.substr(6)) * 1024;
        return sample;
    }
    return std::nullopt;
}

}  // namespace unit::load
