// cmd_resolve.cpp: resolve ADDRESS, the resolution and its trace exactly as
// the daemons' libunit sees the database (read-only, through a Directory).
#include <fmt/format.h>

#include <array>
#include <ostream>

#include "common/json_writer.hpp"
#include "ctl/command.hpp"
#include "unit/directory.hpp"
#include "unit/resolver.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

// The keys resolve takes as options, for this run, over --config's.
constexpr std::array<KeyOption, 4> key_options{{
    {"recipient_delimiter", "CHARS"},
    {"fold_local_case", "yes|no"},
    {"reject_max_age", "DURATION"},
    {"max_replica_age", "DURATION"},
}};

void declare(po::options_description& options) {
    declare_key_options(options, key_options);
    declare_json(options);
}

// Defaults are libunit's; --config overrides them, the command line overrides both.
ResolverOptions resolver_options(const Invocation& inv) {
    Settings settings = inv.settings;
    apply_key_options(inv.options, key_options, "resolve", settings);
    return settings.resolver;
}

std::string_view to_string(AliasTarget::Kind kind) noexcept {
    switch (kind) {
    case AliasTarget::Kind::Mailbox: return "mailbox";
    case AliasTarget::Kind::External: return "external";
    case AliasTarget::Kind::Disabled: return "disabled";
    case AliasTarget::Kind::Unknown: return "unknown";
    }
    return "?";
}

void print_destination(std::ostream& out, const Destination& d) {
    out << fmt::format("unit: {}\ntransport: {}\nnexthop: {}\nunit_state: {}\nmailbox_state: {}\n", d.unit.name,
                       d.unit.transport, d.unit.nexthop, unit::to_string(d.unit.state),
                       unit::to_string(d.mailbox.state));
    if (d.moving_to) out << fmt::format("moving_to: {}\n", d.moving_to->name);
}

void print_target(std::ostream& out, const AliasTarget& target) {
    out << fmt::format("target: {} {}", target.address, to_string(target.kind));
    if (target.destination) out << ' ' << target.destination->unit.name;
    out << '\n';
}

void print_resolution(std::ostream& out, const Resolution& r) {
    out << fmt::format("outcome: {}\ninput: {}\n", unit::to_string(r.outcome), r.input);
    if (!r.address.empty()) out << fmt::format("address: {}\n", r.address);
    out << fmt::format("generation: {}\n", r.generation);
    if (r.destination) print_destination(out, *r.destination);
    for (const auto& target : r.targets) print_target(out, target);
    if (!r.reason.empty()) out << fmt::format("reason: {}\n", r.reason);
    out << "trace:\n";
    for (const auto& step : r.trace) out << "  " << step << '\n';
}

// The same fields as JSON; what the text leaves out is null here.
std::string destination_json(const Destination& d) {
    common::JsonObject object;
    object.string("unit", d.unit.name)
        .string("transport", d.unit.transport)
        .string("nexthop", d.unit.nexthop)
        .string("unit_state", unit::to_string(d.unit.state))
        .string("mailbox_state", unit::to_string(d.mailbox.state));
    if (d.moving_to) object.string("moving_to", d.moving_to->name);
    else object.null("moving_to");
    return object.text();
}

std::string target_json(const AliasTarget& target) {
    common::JsonObject object;
    object.string("address", target.address).string("kind", to_string(target.kind));
    if (target.destination) object.string("unit", target.destination->unit.name);
    else object.null("unit");
    return object.text();
}

std::string resolution_json(const Resolution& r) {
    common::JsonObject object;
    object.string("outcome", unit::to_string(r.outcome)).string("input", r.input);
    if (r.address.empty()) object.null("address");
    else object.string("address", r.address);
    object.number("generation", r.generation);
    if (r.destination) object.json("destination", destination_json(*r.destination));
    else object.null("destination");
    std::vector<std::string> targets;
    for (const auto& target : r.targets) targets.push_back(target_json(target));
    object.json("targets", common::json_array(targets));
    if (r.reason.empty()) object.null("reason");
    else object.string("reason", r.reason);
    object.json("trace", common::json_string_array(r.trace));
    return object.text();
}

void run_resolve(Invocation& inv) {
    // Options first: a bad value is a usage error, whatever the database says.
    const auto options = resolver_options(inv);
    DirectoryOptions where;
    where.path = inv.settings.db;
    Directory directory(std::move(where));
    const auto resolution = resolve(directory, options, inv.operands[0]);
    if (json_output(inv)) inv.out << resolution_json(resolution) << '\n';
    else print_resolution(inv.out, resolution);
    // Every verdict about the address is a success; a database or an address
    // that cannot be resolved at all is not, so scripts can tell them apart.
    if (resolution.outcome == Outcome::Tempfail || resolution.outcome == Outcome::Malformed)
        throw Failure(fmt::format("resolve: {}: {}: {}", inv.operands[0], unit::to_string(resolution.outcome),
                                  resolution.reason));
}

constexpr std::array<Command, 1> commands{{
    {"resolve", "ADDRESS", "[--recipient-delimiter CHARS] [--json]", "resolve an address as libunit does, with a trace",
     declare, run_resolve},
}};

}  // namespace

std::span<const Command> resolve_commands() noexcept { return commands; }

}  // namespace unit::ctl
