#include "ctl/audit.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "common/log.hpp"
#include "unit/primary.hpp"

namespace unit::ctl {

namespace {

using common::printable;
using common::Severity;

// The generation of the database at `path`; nullopt when there is none
// (yet) or it cannot be read.
std::optional<std::int64_t> generation_of(const std::string& path) {
    auto meta = read_database_meta(path);
    if (!meta.ok()) return std::nullopt;
    return meta->generation;
}

std::string command_line(const std::vector<std::string>& argv) {
    std::string text = "unitctl";
    for (std::size_t i = 1; i < argv.size(); ++i) text += ' ' + printable(argv[i], 256);
    return text;
}

std::string generation_text(std::optional<std::int64_t> generation) {
    return generation ? std::to_string(*generation) : std::string("none");
}

void open_audit_log(AuditLog sink) {
    switch (sink) {
    case AuditLog::Syslog: common::open_log(common::LogSink::Syslog, "unitctl", false); break;
    case AuditLog::Stderr: common::open_log(common::LogSink::Stderr, "unitctl", false); break;
    case AuditLog::None: common::open_log(common::LogSink::None, "unitctl", false); break;
    }
}

}  // namespace

std::string who_runs_this() {
    const uid_t uid = getuid();
    const struct passwd* pw = getpwuid(uid);
    std::string who = pw != nullptr ? printable(pw->pw_name, 64) : fmt::format("uid {}", uid);
    if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0')
        who += fmt::format(" (sudo: {})", printable(sudo, 64));
    return who;
}

void run_audited(const Command& command, Invocation& inv, const std::vector<std::string>& argv) {
    if (command.outside_primary) return command.run(inv);
    const std::string db = inv.settings.db;
    const auto before = generation_of(db);
    command.run(inv);
    const auto after = generation_of(db);
    if (before == after && inv.changed.empty()) return;

    open_audit_log(inv.settings.audit_log);
    std::istringstream changed(inv.changed);
    std::string summary;
    std::getline(changed, summary);
    const std::string who = who_runs_this();
    common::log(Severity::Info, "audit: user {}: {}{}: generation {} -> {}", who, command_line(argv),
                summary.empty() ? std::string() : ": " + printable(summary, 1024), generation_text(before),
                generation_text(after));
    for (std::string line; std::getline(changed, line);)
        common::log(Severity::Info, "audit: user {}: generation {}: {}", who, generation_text(after),
                    printable(line, 1024));
}

}  // namespace unit::ctl
