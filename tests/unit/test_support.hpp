// test_support.hpp: what the unit tests share: a temporary directory that
// removes itself, running a program with its exit code and output, and a
// daemon run in the background.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace unit::toolkit {
class Daemon;
}

namespace unit::test {

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& root() const { return root_; }
    std::string path(std::string_view name) const { return root_ + '/' + std::string(name); }

private:
    std::string root_;
};

struct CommandResult {
    int pid = 0;
    int exit_code = -1;
    std::string out;
    std::string err;
};

// Runs argv[0] (a path) with the arguments, feeding `input` to its stdin.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = {});

// Environment variable set by meson test (UNIT_SOURCE_ROOT, UNITCTL).
std::string env_or_fail(const char* name);

// Whole file contents; empty when unreadable.
std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view contents);

// What a daemon's load_settings(argc, argv) makes of the command line
// PROGRAM ARGS... (program options and configuration file).
template <class LoadSettings>
auto load_command_line(LoadSettings load_settings, const std::string& program, std::vector<std::string> args) {
    args.insert(args.begin(), program);
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return load_settings(static_cast<int>(argv.size()), argv.data());
}

// A daemon run by the test (`program` is a path), its stdout and stderr in
// `log` (truncated first), with the open-file limit `files` when given;
// stopped with SIGTERM at the end. Started by the toolkit's launcher
// (tests/toolkit/daemon.hpp), without waiting: the test waits for what it
// needs.
class Daemon {
public:
    Daemon(const std::string& program, const std::vector<std::string>& args, std::string log, rlimit files = {0, 0});
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    ~Daemon();

    int stop();  // its exit code, or 128 + the signal that ended it
    pid_t pid() const;
    // Both daemons log "starting:" once their sockets are ready and their
    // privileges dropped. Waits 10 s for it.
    void wait_until_started();

private:
    std::unique_ptr<toolkit::Daemon> daemon_;
};

}  // namespace unit::test

#include <optional>

#include "unit/directory.hpp"
#include "unit/primary.hpp"

namespace unit::test {

// A small primary database at `path`:
//   domains example.com, example.net, xn--bcher-kva.example (bücher.example)
//   units u1 smtp:[u1.example.com] active, u2 lmtp:[10.0.0.2]:24 down,
//         u3 smtp:[u3.example.com] draining
//   mailboxes user@example.com (u1), john.doe@example.com (u1),
//             bob@example.com (u3), moving@example.com (u1 -> u3),
//             sus@example.com (u1, suspended), off@example.com (u1, disabled),
//             dave@example.net (u2), anna@xn--bcher-kva.example (u1)
//   aliases sales@example.com -> user@, bob@, partner@Other.ORG
//           team@example.com -> sales@example.com, dave@example.net
//           user@example.com -> user@example.com, copy@elsewhere.org (keeps a copy)
//           @example.net -> dave@example.net
Primary make_sample_primary(const std::string& path);

// That sample made at DIR/primary.db and published to DIR/units.db, with a
// Directory over the replica that looks for a replacement at every read.
struct SampleReplica {
    TempDir dir;
    std::string replica = dir.path("units.db");
    Primary primary;
    std::optional<Directory> directory;

    SampleReplica();
    // Publishes the primary again, and opens the new replica.
    void publish();
    // Opens the replica as it is now (after raw_sql on it), without publishing.
    void reopen();
};

// Runs SQL on a database file directly, as a provider's own system or a
// broken replicator would (CHECK constraints and foreign keys off).
void raw_sql(const std::string& path, const std::string& sql);

}  // namespace unit::test
