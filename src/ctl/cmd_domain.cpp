// cmd_domain.cpp: domain add|rm|list, the domains this system serves.
#include <algorithm>
#include <array>
#include <ostream>

#include "ctl/command.hpp"

namespace unit::ctl {

namespace {

void run_add(Invocation& inv) { unwrap(open_for_writing(inv).add_domain(inv.operands[0])); }

void run_rm(Invocation& inv) { unwrap(open_for_writing(inv).remove_domain(inv.operands[0])); }

void run_list(Invocation& inv) {
    auto domains = unwrap(open_primary(inv).domains());
    std::sort(domains.begin(), domains.end());
    for (const auto& domain : domains) inv.out << domain << '\n';
}

constexpr std::array<Command, 3> commands{{
    {"domain add", "DOMAIN", "", "serve a domain", nullptr, run_add},
    {"domain rm", "DOMAIN", "", "stop serving a domain no mailbox or alias uses", nullptr, run_rm},
    {"domain list", "", "", "list the served domains", nullptr, run_list},
}};

}  // namespace

std::span<const Command> domain_commands() noexcept { return commands; }

}  // namespace unit::ctl
