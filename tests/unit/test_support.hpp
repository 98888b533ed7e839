// test_support.hpp: what the unit tests share: a temporary directory that
// removes itself, and running a program with its exit code and output.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

}  // namespace unit::test
