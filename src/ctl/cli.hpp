// cli.hpp: unitctl's command line (Boost.Program_options).
//
// Shape: global options, the command words, then the command's operands and
// its own options in any order; a "--" ends the options (for an operand that
// starts with '-'). Global options are accepted anywhere. parse_command_line()
// loads --config (the command line wins over it) and checks the operands
// against the command's declaration (command.hpp); every problem throws
// UsageError with a one-line message. Logs nothing, writes nothing.
#pragma once

#include <boost/program_options.hpp>

#include <iosfwd>
#include <string>
#include <vector>

#include "ctl/command.hpp"
#include "ctl/settings.hpp"

namespace unit::ctl {

struct Request {
    enum class Action { Run, Help, Version };
    Action action = Action::Run;
    const Command* command = nullptr;  // set for Run; for Help, the command asked about
    Settings settings;
    std::vector<std::string> operands;
    boost::program_options::variables_map options;
    bool progress = true;  // false with --no-progress
};

Request parse_command_line(int argc, const char* const argv[]);

// --help: the whole synopsis, or one command's.
void print_help(std::ostream& out, const Command* command);

}  // namespace unit::ctl
