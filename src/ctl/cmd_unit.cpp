// cmd_unit.cpp: unit add|set|rm|list, the mailbox servers and how to reach them.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ostream>

#include "common/json_writer.hpp"
#include "ctl/command.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

void declare_add(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("nexthop", po::value<std::string>()->value_name("NH")->required(),
         "Postfix next-hop, verbatim: [unit12.my.com], [10.0.0.12]:2525")
        ("transport", po::value<std::string>()->value_name("T"), "Postfix transport (default smtp)");
    // clang-format on
}

void declare_set(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("state", po::value<std::string>()->value_name("STATE"), "active, draining or down")
        ("nexthop", po::value<std::string>()->value_name("NH"), "new Postfix next-hop")
        ("transport", po::value<std::string>()->value_name("T"), "new Postfix transport");
    // clang-format on
}

UnitState unit_state_or_usage(const std::string& text) {
    if (auto state = parse_unit_state(text)) return *state;
    throw UsageError(fmt::format("unit set: bad --state '{}' (expected active, draining or down)", text));
}

void run_add(Invocation& inv) {
    UnitRecord unit;
    unit.name = inv.operands[0];
    unit.nexthop = *inv.option("nexthop");
    if (auto transport = inv.option("transport")) unit.transport = *transport;
    unwrap(open_for_writing(inv).add_unit(unit));
}

void run_set(Invocation& inv) {
    UnitChange change;
    if (auto state = inv.option("state")) change.state = unit_state_or_usage(*state);
    change.nexthop = inv.option("nexthop");
    change.transport = inv.option("transport");
    // An empty change would still bump the generation for nothing.
    if (!change.state && !change.nexthop && !change.transport)
        throw UsageError("unit set: nothing to change (give --state, --nexthop or --transport)");
    unwrap(open_for_writing(inv).change_unit(inv.operands[0], change));
}

void run_rm(Invocation& inv) { unwrap(open_for_writing(inv).remove_unit(inv.operands[0])); }

void run_list(Invocation& inv) {
    auto units = unwrap(open_primary(inv).units());
    std::sort(units.begin(), units.end(), [](const auto& a, const auto& b) { return a.unit.name < b.unit.name; });
    if (!json_output(inv)) {
        for (const auto& [unit, mailboxes] : units)
            inv.out << fmt::format("{}\t{}\t{}\t{}\n", unit.name, unit.route(), to_string(unit.state), mailboxes);
        return;
    }
    common::JsonArrayWriter array(inv.out);
    for (const auto& [unit, mailboxes] : units)
        array.add(common::JsonObject()
                      .string("name", unit.name)
                      .string("route", unit.route())
                      .string("transport", unit.transport)
                      .string("nexthop", unit.nexthop)
                      .string("state", to_string(unit.state))
                      .number("mailboxes", mailboxes)
                      .text());
    array.close();
}

constexpr std::array<Command, 4> commands{{
    {"unit add", "NAME", "--nexthop NH [--transport T]", "add a unit (state active)", declare_add, run_add},
    {"unit set", "NAME", "[--state active|draining|down] [--nexthop NH] [--transport T]",
     "change a unit's state or route", declare_set, run_set},
    {"unit rm", "NAME", "", "remove a unit that holds no mailboxes", nullptr, run_rm},
    {"unit list", "", "[--json]", "list units: name, route, state, mailboxes", declare_json, run_list},
}};

}  // namespace

std::span<const Command> unit_commands() noexcept { return commands; }

}  // namespace unit::ctl
