#include "ctl/command.hpp"

#include <fmt/format.h>

#include <charconv>

namespace unit::ctl {

std::optional<std::string> Invocation::option(const char* name) const {
    if (options.count(name) == 0) return std::nullopt;
    return options[name].as<std::string>();
}

void declare_json(boost::program_options::options_description& options) {
    options.add_options()("json", "print JSON instead of text (unitctl(8), JSON OUTPUT)");
}

bool json_output(const Invocation& inv) { return inv.options.count("json") != 0; }

RemovalLimit removal_limit_or_usage(std::string_view command, const std::string& text) {
    const bool percent = !text.empty() && text.back() == '%';
    const std::string_view digits(text.data(), text.size() - (percent ? 1 : 0));
    RemovalLimit limit{0, percent};
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), limit.value);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || limit.value < 0 ||
        (percent && limit.value > 100))
        throw UsageError(fmt::format("{}: bad --max-removed '{}' (expected a count N or a percentage P%)", command,
                                     text));
    return limit;
}

PrimaryOptions primary_options(const Settings& settings) {
    PrimaryOptions options;
    options.hold_transport = settings.hold_transport;
    options.recipient_delimiter = settings.resolver.address.recipient_delimiter;
    options.max_alias_targets = settings.resolver.max_alias_targets;
    options.refuse_dangling_targets = true;
    return options;
}

Primary open_primary(const Invocation& inv) {
    return unwrap(Primary::open(inv.settings.db, primary_options(inv.settings)));
}

void refuse_snapshot(const std::string& path) {
    auto meta = read_database_meta(path);
    if (meta && meta->published_at)
        throw Failure(
            fmt::format("{}: a published snapshot (published_at {}): unitctl writes the primary, "
                        "not a copy (--db {} by default)",
                        path, *meta->published_at, default_db_path));
}

Primary open_for_writing(const Invocation& inv) {
    refuse_snapshot(inv.settings.db);
    return open_primary(inv);
}

}  // namespace unit::ctl
