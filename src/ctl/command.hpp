// command.hpp: the contract between unitctl's dispatcher (cli.cpp) and its
// command handlers, one family per cmd_<family>.cpp.
//
// A Command declares its words ("unit add"), its operands ("NAME",
// "ADDRESS TARGET...", "ADDRESS [TARGET]") and its own options. The
// dispatcher parses the command line against that declaration, so a handler
// starts with the right number of operands and options that parsed, and:
//   - returns on success, having written its result to inv.out (stdout)
//     only after every libunit call it needed succeeded;
//   - throws Failure (exit 1) for a failed operation, with the libunit Error
//     message verbatim, or for a negative verdict (check found problems,
//     resolve could not answer), after printing that verdict on inv.out;
//   - throws UsageError (exit 2) for an option value that the declaration
//     cannot check (a bad --state, a bad duration).
// main() catches once and writes the only stderr line, "unitctl: MESSAGE".
// Handlers never write to stderr themselves: a long command (import, sync)
// reports its progress through inv.progress (progress.hpp), which draws on
// stderr only when it is a terminal and --no-progress is not given; the
// handler clears it before its own output, and main() at the end. Nothing here contains SQL: every read and
// write goes through libunit (primary.hpp, directory.hpp, resolver.hpp).
#pragma once

#include <boost/program_options.hpp>

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/progress.hpp"
#include "ctl/settings.hpp"
#include "unit/primary.hpp"
#include "unit/result.hpp"

namespace unit::ctl {

// Bad usage: exit status 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A failed operation: exit status 1.
class Failure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What a handler gets: the settings (global options and --config), the
// command's operands and its own parsed options, and the streams to use.
struct Invocation {
    Settings settings;
    std::vector<std::string> operands;
    boost::program_options::variables_map options;
    std::ostream& out;
    std::istream& in;
    // What a write changed, for the audit line the dispatcher sends to syslog
    // once the command has succeeded: set by the commands that change many
    // objects (import, sync, move: counts, and each object with -v); empty for
    // the others, whose words and operands say it.
    // Several lines: the counts first, then one line per object with -v.
    std::string changed;
    // The progress line of a long command ("import: 250,000 rows read").
    ProgressLine& progress;

    // The command's option `name` (long name, no dashes), when given.
    std::optional<std::string> option(const char* name) const;
};

struct Command {
    std::string_view words;     // "unit add", or "init"
    std::string_view operands;  // "NAME", "ADDRESS TARGET...", "ADDRESS [TARGET]", ""
    std::string_view flags;     // the options in the synopsis: "--nexthop NH [--transport T]"
    std::string_view summary;   // one line for --help
    // Declares the command's own options; nullptr when it has none.
    void (*declare)(boost::program_options::options_description& options);
    void (*run)(Invocation& inv);
    // Reads nothing of the primary and writes nothing (fleet): never audited,
    // even when another unitctl changes the primary while it runs.
    bool outside_primary = false;
};

// The command families, in the order --help lists them.
std::span<const Command> init_commands() noexcept;     // cmd_data.cpp
std::span<const Command> domain_commands() noexcept;   // cmd_domain.cpp
std::span<const Command> unit_commands() noexcept;     // cmd_unit.cpp
std::span<const Command> mailbox_commands() noexcept;  // cmd_mailbox.cpp
std::span<const Command> move_commands() noexcept;     // cmd_move.cpp
std::span<const Command> alias_commands() noexcept;    // cmd_alias.cpp
std::span<const Command> data_commands() noexcept;     // cmd_data.cpp
std::span<const Command> sync_commands() noexcept;     // cmd_sync.cpp
std::span<const Command> resolve_commands() noexcept;  // cmd_resolve.cpp
std::span<const Command> fleet_commands() noexcept;    // cmd_fleet.cpp

// A libunit outcome, or Failure with its message.
template <class T>
T unwrap(Result<T>&& result) {
    if (!result.ok()) throw Failure(result.error().message);
    return std::move(result).value();
}

inline void unwrap(Result<void>&& result) {
    if (!result.ok()) throw Failure(result.error().message);
}

// --json, the option of every command that lists or shows (unitctl(8),
// JSON OUTPUT): declares it, and says whether it was given. Such a command
// writes one JSON document on inv.out instead of its text, through
// common/json_writer.hpp, and keeps its exit status.
void declare_json(boost::program_options::options_description& options);
bool json_output(const Invocation& inv);

// The database at inv.settings.db, which must exist (`init` creates it),
// with the site's rules from the settings. open_primary() is for reading:
// it also opens a published snapshot. open_for_writing() refuses one
// (meta.published_at present): unitctl writes the primary, and a write to
// a host's replica would be overwritten by the next copy, or worse, served.
Primary open_primary(const Invocation& inv);
Primary open_for_writing(const Invocation& inv);
// Failure when `path` is a published snapshot; nothing when it is missing
// or anything else (the call that opens it says what is wrong then).
void refuse_snapshot(const std::string& path);
PrimaryOptions primary_options(const Settings& settings);
// --max-removed N|P% of `command`; UsageError for anything else.
RemovalLimit removal_limit_or_usage(std::string_view command, const std::string& text);

}  // namespace unit::ctl
