// cmd_data.cpp: the database as a whole: init, import, export, check, publish.
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>

#include "ctl/command.hpp"

namespace unit::ctl {

namespace {

void run_init(Invocation& inv) { unwrap(Primary::init(inv.settings.db)); }

// The whole file is one transaction (libunit): a bad row changes nothing.
ImportStats import_file(Primary& db, Invocation& inv, const std::string& file) {
    if (file == "-") return unwrap(db.import_csv(inv.in, "stdin"));
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Failure(fmt::format("{}: cannot open: {}", file, std::strerror(errno)));
    return unwrap(db.import_csv(in, file));
}

void run_import(Invocation& inv) {
    auto db = open_primary(inv);
    const auto stats = import_file(db, inv, inv.operands[0]);
    inv.out << fmt::format("imported {} domains, {} units, {} mailboxes, {} aliases\n", stats.domains, stats.units,
                           stats.mailboxes, stats.aliases);
}

void run_export(Invocation& inv) { unwrap(open_primary(inv).export_csv(inv.out)); }

void run_check(Invocation& inv) {
    const auto problems = unwrap(open_primary(inv).check());
    if (problems.empty()) {
        inv.out << "ok\n";
        return;
    }
    for (const auto& problem : problems) inv.out << problem << '\n';
    throw Failure(fmt::format("check: {} {}", problems.size(), problems.size() == 1 ? "problem" : "problems"));
}

void run_publish(Invocation& inv) {
    const auto info = unwrap(open_primary(inv).publish(inv.operands[0]));
    inv.out << fmt::format("published {} generation {} at {}\n", info.path, info.generation, info.published_at);
}

constexpr std::array<Command, 1> init{{
    {"init", "", "", "create the database, or upgrade its schema", nullptr, run_init},
}};

constexpr std::array<Command, 4> data{{
    {"import", "FILE", "", "import a CSV file (- for stdin), all or nothing", nullptr, run_import},
    {"export", "", "", "write every object as CSV on stdout", nullptr, run_export},
    {"check", "", "", "check integrity and invariants", nullptr, run_check},
    {"publish", "OUT", "", "write a read-only snapshot to OUT, atomically", nullptr, run_publish},
}};

}  // namespace

std::span<const Command> init_commands() noexcept { return init; }
std::span<const Command> data_commands() noexcept { return data; }

}  // namespace unit::ctl
