// cmd_sync.cpp: sync, the primary made equal to the provider's own system
// (a CSV export or an LDAP directory), through libunit's sync.hpp.
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>

#include "ctl/command.hpp"
#include "ctl/ldap_source.hpp"
#include "unit/sync.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

void declare_sync(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("ldap", "read the LDAP directory of the ldap_* settings instead of a file")
        ("dry-run", "print what the sync would change, change nothing")
        ("verbose,v", "print each change")
        ("max-removed", po::value<std::string>()->value_name("N|P%"),
         "most mailboxes it may remove (default 5% or 500, the larger)")
        ("direct", "apply unit changes at once instead of beginning moves");
    // clang-format on
}

SourceDirectory read_source(Invocation& inv) {
    const bool ldap = inv.options.count("ldap") != 0;
    if (ldap == !inv.operands.empty())
        throw UsageError("sync: give either FILE (- for stdin) or --ldap (usage: unitctl sync FILE|--ldap ...)");
    if (ldap)
        return unwrap(read_ldap(inv.settings.ldap, [&](std::uint64_t entries) {
            inv.progress.show(fmt::format("sync: {} entries read", with_thousands(entries)));
        }));
    auto rows = [&](std::uint64_t n) { inv.progress.show(fmt::format("sync: {} rows read", with_thousands(n))); };
    const std::string& file = inv.operands[0];
    if (file == "-") return unwrap(read_csv_source(inv.in, "stdin", rows));
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Failure(fmt::format("{}: cannot open: {}", file, std::strerror(errno)));
    return unwrap(read_csv_source(in, file, rows));
}

std::string counts(const SyncCounts& c) {
    return fmt::format("added {} changed {} removed {} moves begun {}", c.added, c.changed, c.removed, c.moves_begun);
}

void run_sync(Invocation& inv) {
    SyncOptions options;
    if (auto limit = inv.option("max-removed")) options.max_removed = removal_limit_or_usage("sync", *limit);
    options.direct = inv.options.count("direct") != 0;
    options.dry_run = inv.options.count("dry-run") != 0;
    const bool verbose = inv.options.count("verbose") != 0;
    options.list_changes = verbose;
    options.progress = [&](std::uint64_t found) {
        inv.progress.show(fmt::format("sync: {} changes found", with_thousands(found)));
    };
    // The source is read whole before the primary is opened for writing:
    // a source that fails changes nothing and holds no lock meanwhile.
    const auto source = read_source(inv);
    auto db = open_for_writing(inv);
    const auto plan = unwrap(db.sync(source, options));
    inv.progress.clear();

    std::string listing;
    for (const auto& change : plan.changes) listing += to_string(change) + '\n';
    if (verbose) {
        for (const auto& [kind, c] : {std::pair{"domains", plan.domains}, std::pair{"units", plan.units},
                                      std::pair{"mailboxes", plan.mailboxes}, std::pair{"aliases", plan.aliases}})
            if (c.total() > 0) listing += fmt::format("{}: {}\n", kind, counts(c));
    }
    const std::string summary = counts(plan.all());
    inv.out << listing << summary
            << (options.dry_run ? " (dry run: nothing changed)" : fmt::format(", generation {}", plan.generation))
            << '\n';
    // For the audit line: the counts, then each change with -v.
    if (!options.dry_run && plan.all().total() > 0) {
        inv.changed = summary;
        for (const auto& change : plan.changes) inv.changed += '\n' + to_string(change);
    }
}

constexpr std::array<Command, 1> sync{{
    {"sync", "[FILE]", "[--ldap] [--dry-run] [-v] [--max-removed N|P%] [--direct]",
     "make the primary equal to a CSV export (- for stdin) or to LDAP", declare_sync, run_sync},
}};

}  // namespace

std::span<const Command> sync_commands() noexcept { return sync; }

}  // namespace unit::ctl
