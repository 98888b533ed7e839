// cmd_domain.cpp: domain add|rm|list, the domains this system serves.
#include <algorithm>
#include <array>
#include <ostream>

#include "common/json_writer.hpp"
#include "ctl/command.hpp"

namespace unit::ctl {

namespace {

void run_add(Invocation& inv) { unwrap(open_for_writing(inv).add_domain(inv.operands[0])); }

void run_rm(Invocation& inv) { unwrap(open_for_writing(inv).remove_domain(inv.operands[0])); }

void run_list(Invocation& inv) {
    auto domains = unwrap(open_primary(inv).domains());
    std::sort(domains.begin(), domains.end());
    if (!json_output(inv)) {
        for (const auto& domain : domains) inv.out << domain << '\n';
        return;
    }
    common::JsonArrayWriter array(inv.out);
    for (const auto& domain : domains) array.add(common::JsonObject().string("name", domain).text());
    array.close();
}

constexpr std::array<Command, 3> commands{{
    {"domain add", "DOMAIN", "", "serve a domain", nullptr, run_add},
    {"domain rm", "DOMAIN", "", "stop serving a domain no mailbox or alias uses", nullptr, run_rm},
    {"domain list", "", "[--json]", "list the served domains", declare_json, run_list},
}};

}  // namespace

std::span<const Command> domain_commands() noexcept { return commands; }

}  // namespace unit::ctl
