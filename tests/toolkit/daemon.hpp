// daemon.hpp: the one launcher of the daemons under test, for every test
// program (unit tests, faults, attacks, benchmarks).
//
// Contract:
// - Daemon::start() forks and execs argv[0] (a path) with stdin from
//   /dev/null and stdout and stderr into log_path (appended to, or
//   truncated first), with the open-file limit given, if any. It then
//   waits until every path in wait_for exists (its sockets): nullopt with
//   `why` set when the program exits first or the wait times out (it is
//   stopped then). With nothing to wait for it returns at once.
// - wait_for_log() waits until `text` is in the log: false with `why` set
//   when the daemon exits first (it is reaped) or `timeout` passes.
// - stop() sends the signal and reaps the daemon within `grace`, else
//   kills it (SIGKILL); it returns the status as waitpid() gives it
//   (exit_code() reads it), -1 when there was no daemon. The destructor
//   stops it with SIGTERM and 5 s of grace. (unitmilter may take longer:
//   libmilter ends its listener on its own schedule.)
// - Move-only. Nothing here logs or throws but std::bad_alloc.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace unit::toolkit {

struct LaunchOptions {
    std::vector<std::string> wait_for;          // paths that must exist before start() returns
    std::chrono::milliseconds timeout{10'000};  // for them
    bool truncate_log = false;                  // else the output is appended
    std::optional<rlimit> open_files;           // RLIMIT_NOFILE of the daemon
};

class Daemon {
public:
    static std::optional<Daemon> start(const std::vector<std::string>& argv, const std::string& log_path,
                                       const LaunchOptions& options, std::string& why);
    // The same, waiting for `wait_for` at most `timeout`, the log appended to.
    static std::optional<Daemon> start(const std::vector<std::string>& argv, const std::vector<std::string>& wait_for,
                                       const std::string& log_path, std::chrono::milliseconds timeout,
                                       std::string& why);
    Daemon(Daemon&& other) noexcept;
    Daemon& operator=(Daemon&& other) noexcept;
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    ~Daemon();

    int pid() const noexcept { return pid_; }
    bool alive() const noexcept;
    void signal(int signo) const noexcept;
    // Sends signo and reaps the process; its exit status as waitpid() gives it.
    int stop(int signo = 15, std::chrono::milliseconds grace = std::chrono::seconds(5));

    const std::string& log_path() const noexcept { return log_path_; }
    std::string log() const;  // what it wrote so far
    bool wait_for_log(std::string_view text, std::chrono::milliseconds timeout, std::string& why);

private:
    Daemon(int pid, std::string program, std::string log_path) noexcept
        : pid_(pid), program_(std::move(program)), log_path_(std::move(log_path)) {}
    int pid_ = -1;
    std::string program_;
    std::string log_path_;
};

// A waitpid() status as a shell gives it: the exit code, or 128 + the signal.
int exit_code(int status) noexcept;
// "exited with status 1", "killed by signal Killed".
std::string describe_status(int status);

}  // namespace unit::toolkit
