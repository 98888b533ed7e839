#include "test_support.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon.hpp"

namespace unit::test {

TempDir::TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "unittest.XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    root_ = templ;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
}

std::string env_or_fail(const char* name) {
    const char* value = std::getenv(name);
    REQUIRE_MESSAGE(value != nullptr, name << " is not set: run the tests with meson test");
    return value;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, std::string_view contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    REQUIRE(out.good());
}

namespace {

// Reads stdout and stderr of the child while writing its stdin, so that
// neither side blocks on a full pipe.
void pump(int in_fd, const std::string& input, int out_fd, int err_fd, CommandResult& result) {
    std::size_t written = 0;
    if (input.empty()) {
        close(in_fd);
        in_fd = -1;
    }
    char buffer[65536];
    while (out_fd >= 0 || err_fd >= 0) {
        pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
        REQUIRE(poll(fds, 3, -1) >= 0);
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n <= 0) {
                close(fds[i].fd);
                (i == 0 ? out_fd : err_fd) = -1;
                continue;
            }
            (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
        }
        if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_fd, input.data() + written, input.size() - written);
            if (n > 0) written += static_cast<std::size_t>(n);
            if (n <= 0 || written == input.size()) {
                close(in_fd);
                in_fd = -1;
            }
        }
    }
    if (in_fd >= 0) close(in_fd);
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, const std::string& input) {
    int in[2], out[2], err[2];
    REQUIRE(pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(pipe2(err, O_CLOEXEC) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    CommandResult result;
    result.pid = pid;
    pump(in[1], input, out[0], err[0], result);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

}  // namespace unit::test

#include <sqlite3.h>

#include "unit/primary.hpp"

namespace unit::test {

Primary make_sample_primary(const std::string& path) {
    auto created = Primary::init(path);
    REQUIRE_MESSAGE(created.ok(), created.error().message);
    Primary db = std::move(created.value());
    auto must = [](const Result<void>& r) { REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message)); };
    must(db.add_domain("example.com"));
    must(db.add_domain("example.net"));
    must(db.add_domain("bücher.example"));
    must(db.add_unit(UnitRecord{"u1", "smtp", "[u1.example.com]", UnitState::Active}));
    must(db.add_unit(UnitRecord{"u2", "lmtp", "[10.0.0.2]:24", UnitState::Active}));
    must(db.add_unit(UnitRecord{"u3", "smtp", "[u3.example.com]", UnitState::Active}));
    for (const char* a : {"user@example.com", "john.doe@example.com", "moving@example.com", "sus@example.com",
                          "off@example.com", "anna@bücher.example"})
        must(db.add_mailbox(a, "u1"));
    must(db.add_mailbox("bob@example.com", "u3"));
    must(db.add_mailbox("dave@example.net", "u2"));
    must(db.begin_move("moving@example.com", "u3"));
    must(db.set_mailbox_state("sus@example.com", MailboxState::Suspended));
    must(db.set_mailbox_state("off@example.com", MailboxState::Disabled));
    must(db.change_unit("u2", UnitChange{UnitState::Down, {}, {}}));
    must(db.change_unit("u3", UnitChange{UnitState::Draining, {}, {}}));
    must(db.add_alias("sales@example.com", {"user@example.com", "bob@example.com", "partner@Other.ORG"}));
    must(db.add_alias("team@example.com", {"sales@example.com", "dave@example.net"}));
    must(db.add_alias("user@example.com", {"user@example.com", "copy@elsewhere.org"}));
    must(db.add_alias("@example.net", {"dave@example.net"}));
    return db;
}

SampleReplica::SampleReplica() : primary(make_sample_primary(dir.path("primary.db"))) { publish(); }

void SampleReplica::publish() {
    auto published = primary.publish(replica);
    REQUIRE_MESSAGE(published.ok(), published.error().message);
    reopen();
}

void SampleReplica::reopen() {
    directory.emplace(DirectoryOptions{replica, std::chrono::milliseconds(0), std::chrono::milliseconds(200), {}});
}

void raw_sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    char* error = nullptr;
    std::string all = "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON; " + sql;
    int rc = sqlite3_exec(db, all.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}

Daemon::Daemon(const std::string& program, const std::vector<std::string>& args, std::string log, rlimit files) {
    std::vector<std::string> argv{program};
    argv.insert(argv.end(), args.begin(), args.end());
    toolkit::LaunchOptions options;
    options.truncate_log = true;
    if (files.rlim_max > 0) options.open_files = files;
    std::string why;
    auto started = toolkit::Daemon::start(argv, log, options, why);
    REQUIRE_MESSAGE(started, why);
    daemon_ = std::make_unique<toolkit::Daemon>(std::move(*started));
}

Daemon::~Daemon() = default;  // the launcher stops it

// A minute: a clean stop takes seconds (unitmilter's up to about five);
// one that takes longer fails the test instead of hanging it.
int Daemon::stop() { return toolkit::exit_code(daemon_->stop(SIGTERM, std::chrono::minutes(1))); }

pid_t Daemon::pid() const { return daemon_->pid(); }

void Daemon::wait_until_started() {
    std::string why;
    bool started = daemon_->wait_for_log("starting:", std::chrono::seconds(10), why);
    REQUIRE_MESSAGE(started, why << ": " << daemon_->log());
}

}  // namespace unit::test
