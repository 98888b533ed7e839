// cmd_move.cpp: move begin|finish|abort, moving a mailbox to another unit.
// While it moves, mail for it is held on the MX (DESIGN §5); finish routes it
// to the new unit, abort leaves it where it was.
#include <array>

#include "ctl/command.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

void declare_begin(po::options_description& options) {
    options.add_options()("to", po::value<std::string>()->value_name("UNIT")->required(), "the unit to move to");
}

void run_begin(Invocation& inv) { unwrap(open_for_writing(inv).begin_move(inv.operands[0], *inv.option("to"))); }

void run_finish(Invocation& inv) { unwrap(open_for_writing(inv).finish_move(inv.operands[0])); }

void run_abort(Invocation& inv) { unwrap(open_for_writing(inv).abort_move(inv.operands[0])); }

constexpr std::array<Command, 3> commands{{
    {"move begin", "ADDRESS", "--to UNIT", "start moving a mailbox (its mail is held)", declare_begin,
     run_begin},
    {"move finish", "ADDRESS", "", "end a move: the mailbox lives on the new unit", nullptr, run_finish},
    {"move abort", "ADDRESS", "", "cancel a move: the mailbox stays where it was", nullptr, run_abort},
}};

}  // namespace

std::span<const Command> move_commands() noexcept { return commands; }

}  // namespace unit::ctl
