#include "ctl/command.hpp"

#include <fmt/format.h>

namespace unit::ctl {

std::optional<std::string> Invocation::option(const char* name) const {
    if (options.count(name) == 0) return std::nullopt;
    return options[name].as<std::string>();
}

PrimaryOptions primary_options(const Settings& settings) {
    PrimaryOptions options;
    options.hold_transport = settings.hold_transport;
    options.recipient_delimiter = settings.recipient_delimiter.value_or("");
    options.max_alias_targets = settings.max_alias_targets;
    options.refuse_dangling_targets = true;
    return options;
}

Primary open_primary(const Invocation& inv) {
    return unwrap(Primary::open(inv.settings.db, primary_options(inv.settings)));
}

void refuse_snapshot(const std::string& path) {
    auto meta = read_database_meta(path);
    if (meta && meta->published_at)
        throw Failure(fmt::format("{}: a published snapshot (published_at {}): unitctl writes the primary, "
                                  "not a copy (--db {} by default)",
                                  path, *meta->published_at, default_db_path));
}

Primary open_for_writing(const Invocation& inv) {
    refuse_snapshot(inv.settings.db);
    return open_primary(inv);
}

}  // namespace unit::ctl
