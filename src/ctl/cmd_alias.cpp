// cmd_alias.cpp: alias add|rm|list. An alias address "@domain" is the
// domain's catch-all.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <ostream>
#include <tuple>

#include "common/json_writer.hpp"
#include "ctl/command.hpp"

namespace unit::ctl {

namespace {

void run_add(Invocation& inv) {
    const std::vector<std::string> targets(inv.operands.begin() + 1, inv.operands.end());
    unwrap(open_for_writing(inv).add_alias(inv.operands[0], targets));
}

void run_rm(Invocation& inv) {
    std::optional<std::string> target;
    if (inv.operands.size() > 1) target = inv.operands[1];
    unwrap(open_for_writing(inv).remove_alias(inv.operands[0], target));
}

void run_list(Invocation& inv) {
    auto aliases = unwrap(open_primary(inv).aliases());
    std::sort(aliases.begin(), aliases.end(), [](const auto& a, const auto& b) {
        return std::tie(a.address, a.target) < std::tie(b.address, b.target);
    });
    if (!json_output(inv)) {
        for (const auto& alias : aliases) inv.out << fmt::format("{}\t{}\n", alias.address, alias.target);
        return;
    }
    common::JsonArrayWriter array(inv.out);
    for (const auto& alias : aliases)
        array.add(common::JsonObject().string("address", alias.address).string("target", alias.target).text());
    array.close();
}

constexpr std::array<Command, 3> commands{{
    {"alias add", "ADDRESS TARGET...", "", "add targets to an alias (@domain: catch-all)", nullptr, run_add},
    {"alias rm", "ADDRESS [TARGET]", "", "remove one target, or the whole alias", nullptr, run_rm},
    {"alias list", "", "[--json]", "list aliases: address, target", declare_json, run_list},
}};

}  // namespace

std::span<const Command> alias_commands() noexcept { return commands; }

}  // namespace unit::ctl
