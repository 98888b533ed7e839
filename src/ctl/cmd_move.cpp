// cmd_move.cpp: move begin|finish|abort, moving mailboxes to another unit:
// the ones named, those listed in a file, or a unit's (an evacuation, in
// slices with --limit). While a mailbox moves, mail for it is held on the
// MX (DESIGN §5); finish routes it to the new unit, abort leaves it where
// it was. Each call is one transaction (libunit's moves.hpp).
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>

#include "ctl/command.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

void declare_selection(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("file", po::value<std::string>()->value_name("FILE"),
         "the addresses in FILE, one a line (- for stdin; blank lines and # comments skipped)")
        ("from-unit", po::value<std::string>()->value_name("UNIT"), "the mailboxes of UNIT")
        ("limit", po::value<std::int64_t>()->value_name("N"), "at most N of them, by address (with --from-unit)")
        ("verbose,v", "print each mailbox changed");
    // clang-format on
}

void declare_begin(po::options_description& options) {
    options.add_options()("to", po::value<std::string>()->value_name("UNIT")->required(), "the unit to move to");
    declare_selection(options);
}

// Blank lines and comments skipped, surrounding blanks trimmed; libunit
// checks each address.
std::vector<std::string> read_addresses(std::istream& in) {
    std::vector<std::string> addresses;
    std::string line;
    while (std::getline(in, line)) {
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#') continue;
        const auto last = line.find_last_not_of(" \t\r");
        addresses.push_back(line.substr(first, last - first + 1));
    }
    return addresses;
}

// Exactly one of ADDRESS..., --file F, --from-unit U.
MoveSelection selection(Invocation& inv, std::string_view command) {
    const auto file = inv.option("file");
    const auto from_unit = inv.option("from-unit");
    const int forms = (inv.operands.empty() ? 0 : 1) + (file ? 1 : 0) + (from_unit ? 1 : 0);
    if (forms != 1)
        throw UsageError(fmt::format("{}: give one of ADDRESS..., --file FILE or --from-unit UNIT", command));
    MoveSelection s;
    if (inv.options.count("limit") != 0) {
        if (!from_unit) throw UsageError(fmt::format("{}: --limit needs --from-unit", command));
        s.limit = inv.options["limit"].as<std::int64_t>();
        if (*s.limit < 1) throw UsageError(fmt::format("{}: --limit must be at least 1", command));
    }
    s.from_unit = from_unit;
    if (!file) {
        s.addresses = inv.operands;
        return s;
    }
    if (*file == "-") {
        s.addresses = read_addresses(inv.in);
    } else {
        std::ifstream in(*file);
        if (!in) throw Failure(fmt::format("{}: cannot open: {}", *file, std::strerror(errno)));
        s.addresses = read_addresses(in);
        if (in.bad()) throw Failure(fmt::format("{}: cannot read: {}", *file, std::strerror(errno)));
    }
    return s;
}

// Prints the summary (and each change with -v), and keeps them for the audit line.
void report(Invocation& inv, const MoveCounts& counts, const std::string& summary) {
    const bool verbose = inv.options.count("verbose") != 0;
    std::string listing;
    for (const auto& change : counts.changes) listing += change + '\n';
    inv.out << (verbose ? listing : "") << summary << '\n';
    if (counts.moved > 0) inv.changed = summary + (verbose ? '\n' + listing.substr(0, listing.size() - 1) : "");
}

void run_begin(Invocation& inv) {
    const auto s = selection(inv, "move begin");
    const auto counts = unwrap(open_for_writing(inv).begin_moves(s, *inv.option("to")));
    report(inv, counts,
           fmt::format("moves begun {} (held {}, direct {}), unchanged {}", counts.moved, counts.held, counts.direct,
                       counts.unchanged));
}

void run_finish(Invocation& inv) {
    const auto s = selection(inv, "move finish");
    const auto counts = unwrap(open_for_writing(inv).finish_moves(s));
    report(inv, counts, fmt::format("moves finished {}", counts.moved));
}

void run_abort(Invocation& inv) {
    const auto s = selection(inv, "move abort");
    const auto counts = unwrap(open_for_writing(inv).abort_moves(s));
    report(inv, counts, fmt::format("moves aborted {}", counts.moved));
}

constexpr std::string_view selection_flags = "[--file FILE|--from-unit UNIT [--limit N]] [-v]";

constexpr std::array<Command, 3> commands{{
    {"move begin", "[ADDRESS...]", "--to UNIT [--file FILE|--from-unit UNIT [--limit N]] [-v]",
     "start moving mailboxes (mail for active ones is held)", declare_begin, run_begin},
    {"move finish", "[ADDRESS...]", selection_flags, "end moves: the mailboxes live on their new unit",
     declare_selection, run_finish},
    {"move abort", "[ADDRESS...]", selection_flags, "cancel moves: the mailboxes stay where they were",
     declare_selection, run_abort},
}};

}  // namespace

std::span<const Command> move_commands() noexcept { return commands; }

}  // namespace unit::ctl
