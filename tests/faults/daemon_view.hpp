// daemon_view.hpp: what the fault program reads about the daemon besides
// its answers and its counters (tests/toolkit/socket.hpp): the text of
// `unitpolicy --dump`, its log, and other programs' exit status and output.
//
// run() executes argv[0] (a path) with stdin from /dev/null, stdout and
// stderr captured together. Nothing here throws but std::bad_alloc. Logs
// nothing.
#pragma once

#include <string>
#include <vector>

namespace unit::faults {

struct RunResult {
    int status = -1;  // exit code; 128 + signal when killed; -1 when it could not run
    std::string output;
};
RunResult run(const std::vector<std::string>& argv);

std::string read_text(const std::string& path);

}  // namespace unit::faults
