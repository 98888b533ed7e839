// cmd_data.cpp: the database as a whole: init, import, export, check, publish.
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "common/json_writer.hpp"
#include "ctl/command.hpp"

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

void run_init(Invocation& inv) {
    refuse_snapshot(inv.settings.db);
    unwrap(Primary::init(inv.settings.db, primary_options(inv.settings)));
}

std::string megabytes(std::uint64_t bytes) { return fmt::format("{} MB", (bytes + (1 << 19)) >> 20); }

// "import: 250,000 rows read (12 MB of 48 MB)"; `size` is 0 when unknown (a pipe).
std::string import_progress(const ImportProgress& p, std::uint64_t size) {
    using Step = ImportProgress::Step;
    switch (p.step) {
    case Step::Reading:
        return fmt::format("import: {} rows read ({}{})", with_thousands(p.rows), megabytes(p.bytes),
                           size > 0 ? " of " + megabytes(size) : "");
    case Step::Applying:
        return fmt::format("import: {} of {} held rows applied", with_thousands(p.applied), with_thousands(p.held));
    case Step::Checking: return "import: checking aliases";
    case Step::Committing: return fmt::format("import: committing {} rows", with_thousands(p.rows));
    }
    return {};
}

// The whole file is one transaction (libunit): a bad row changes nothing.
ImportStats import_file(Primary& db, Invocation& inv, const std::string& file) {
    std::uint64_t size = 0;
    auto step = ImportProgress::Step::Reading;
    auto progress = [&](const ImportProgress& p) {
        // A new step is drawn at once: committing may take seconds.
        if (p.step != step) inv.progress.show_now(import_progress(p, size));
        else inv.progress.show(import_progress(p, size));
        step = p.step;
    };
    if (file == "-") return unwrap(db.import_csv(inv.in, "stdin", progress));
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Failure(fmt::format("{}: cannot open: {}", file, std::strerror(errno)));
    std::error_code error;
    if (auto bytes = std::filesystem::file_size(file, error); !error) size = bytes;
    return unwrap(db.import_csv(in, file, progress));
}

void run_import(Invocation& inv) {
    auto db = open_for_writing(inv);
    const auto stats = import_file(db, inv, inv.operands[0]);
    inv.progress.clear();
    inv.changed = fmt::format("imported {} domains, {} units, {} mailboxes, {} aliases", stats.domains, stats.units,
                              stats.mailboxes, stats.aliases);
    inv.out << inv.changed << '\n';
}

void run_export(Invocation& inv) { unwrap(open_primary(inv).export_csv(inv.out)); }

// Problems fail the check; warnings are printed and leave it ok.
void run_check(Invocation& inv) {
    const auto report = unwrap(open_primary(inv).check_report());
    const auto& problems = report.problems;
    if (json_output(inv)) {
        inv.out << common::JsonObject()
                       .boolean("ok", problems.empty())
                       .json("problems", common::json_string_array(problems))
                       .json("warnings", common::json_string_array(report.warnings))
                       .text()
                << '\n';
    } else {
        for (const auto& problem : problems) inv.out << problem << '\n';
        for (const auto& warning : report.warnings) inv.out << "warning: " << warning << '\n';
        if (problems.empty()) inv.out << "ok\n";
    }
    if (problems.empty()) return;
    throw Failure(fmt::format("check: {} {}", problems.size(), problems.size() == 1 ? "problem" : "problems"));
}

void declare_publish(po::options_description& options) {
    // clang-format off
    options.add_options()
        ("rollback", "publish a lower generation of the same primary, deliberately")
        ("takeover", "replace a snapshot of another primary (a rebuilt one), deliberately")
        ("max-removed", po::value<std::string>()->value_name("N|P%"),
         "most mailboxes of the previous snapshot it may remove (default 5% or 500, the larger)")
        ("force", "replace an OUT that is not a snapshot, remove any number of mailboxes")
        ("mode", po::value<std::string>()->value_name("OCTAL"), "the snapshot's permissions (default 0644)");
    // clang-format on
}

unsigned mode_or_usage(const std::string& text) {
    unsigned mode = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), mode, 8);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || mode > 0777)
        throw UsageError(fmt::format("publish: bad --mode '{}' (expected octal permissions such as 0644)", text));
    return mode;
}

void run_publish(Invocation& inv) {
    PublishOptions options;
    const bool rollback = inv.options.count("rollback") != 0, takeover = inv.options.count("takeover") != 0;
    if (rollback && takeover) throw UsageError("publish: --rollback and --takeover exclude each other");
    if (rollback) options.override_generation = PublishOverride::Rollback;
    if (takeover) options.override_generation = PublishOverride::Takeover;
    if (auto limit = inv.option("max-removed")) options.max_removed = removal_limit_or_usage("publish", *limit);
    if (auto mode = inv.option("mode")) options.mode = mode_or_usage(*mode);
    options.force = inv.options.count("force") != 0;
    const auto info = unwrap(open_for_writing(inv).publish(inv.operands[0], options));
    inv.changed = fmt::format("published {} generation {} at {}", info.path, info.generation, info.published_at);
    if (info.removed > 0) inv.changed += fmt::format(", {} mailboxes removed", info.removed);
    inv.out << fmt::format("published {} generation {} at {}\n", info.path, info.generation, info.published_at);
}

constexpr std::array<Command, 1> init{{
    {"init", "", "", "create the database, or upgrade its schema", nullptr, run_init},
}};

constexpr std::array<Command, 4> data{{
    {"import", "FILE", "", "import a CSV file (- for stdin), all or nothing", nullptr, run_import},
    {"export", "", "", "write every object as CSV on stdout", nullptr, run_export},
    {"check", "", "[--json]", "check integrity and invariants", declare_json, run_check},
    {"publish", "OUT", "[--rollback|--takeover] [--max-removed N|P%] [--force] [--mode OCTAL]",
     "write a read-only snapshot to OUT, atomically", declare_publish, run_publish},
}};

}  // namespace

std::span<const Command> init_commands() noexcept { return init; }
std::span<const Command> data_commands() noexcept { return data; }

}  // namespace unit::ctl
