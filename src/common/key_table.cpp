#include "common/key_table.hpp"

#include "common/endpoint.hpp"

#include <sys/stat.h>

#include <algorithm>

namespace unit::common {

namespace po = boost::program_options;

std::string set_absolute_path(std::string& field, std::string_view value, bool may_be_empty) {
    if ((!may_be_empty || !value.empty()) && (value.empty() || value.front() != '/'))
        return fmt::format("\"{}\" is not an absolute path", value);
    return set_text(field, value);
}

std::string set_text(std::string& field, std::string_view value, bool may_be_empty) {
    if (!may_be_empty && value.empty()) return "empty value";
    // A value ends up in replies and logs: no line breaks or control bytes.
    if (std::any_of(value.begin(), value.end(), [](unsigned char c) { return c < ' ' || c == 0x7f; }))
        return "control character in value";
    field = std::string(value);
    return {};
}

std::string set_bool(bool& field, std::string_view value) {
    auto b = parse_bool(value);
    if (!b) return fmt::format("bad boolean \"{}\" (expected yes or no)", value);
    field = *b;
    return {};
}

std::string set_duration(std::chrono::seconds& field, std::string_view value) {
    auto d = parse_duration(value);
    if (!d) return fmt::format("bad duration \"{}\" (expected N[s|m|h|d|w])", value);
    field = *d;
    return {};
}

std::string set_timeout(std::chrono::seconds& field, std::string_view value) {
    std::chrono::seconds parsed{};
    if (auto problem = set_duration(parsed, value); !problem.empty()) return problem;
    if (parsed.count() <= 0) return "must be at least 1s";
    field = parsed;
    return {};
}

std::string set_milliseconds(std::chrono::milliseconds& field, std::string_view value) {
    long long ms = 0;
    if (auto problem = set_number(ms, value, 1LL, 600'000LL); !problem.empty()) return problem;
    field = std::chrono::milliseconds(ms);
    return {};
}

std::string set_log_sink(LogSink& field, std::string_view value) {
    if (value == "syslog") field = LogSink::Syslog;
    else if (value == "stderr") field = LogSink::Stderr;
    else return fmt::format("bad log sink \"{}\" (expected syslog or stderr)", value);
    return {};
}

std::string set_inet_endpoint(std::string& field, std::string_view value) {
    if (!value.empty()) {
        auto e = parse_endpoint(value);
        if (!e) return e.error().message;
        if (e->kind != Endpoint::Kind::Inet) return fmt::format("\"{}\" is not inet:host:port", value);
    }
    field = value;
    return {};
}

std::string show_bool(bool value) { return value ? "yes" : "no"; }

std::string show_seconds(std::chrono::seconds value) {
    // The largest unit that divides the value, as an administrator writes it.
    for (auto [unit, seconds] : {std::pair{'w', 604800}, {'d', 86400}, {'h', 3600}, {'m', 60}})
        if (value.count() != 0 && value.count() % seconds == 0)
            return fmt::format("{}{}", value.count() / seconds, unit);
    return fmt::format("{}s", value.count());
}

std::string show_list(const std::vector<std::string>& list) { return fmt::format("{}", fmt::join(list, " ")); }

std::string option_name(std::string_view key) {
    std::string name(key);
    std::replace(name.begin(), name.end(), '_', '-');
    return name;
}

po::variables_map parse_command_line(int argc, const char* const argv[], const po::options_description& options) {
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv)
                      .options(options)
                      .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
                      .run(),
                  vm);
    } catch (const po::error& e) {
        throw ConfigError(e.what());
    }
    return vm;
}

std::string config_path(const po::variables_map& vm, const char* fallback) {
    if (vm.count("config")) return vm["config"].as<std::string>();
    struct stat st {};
    return stat(fallback, &st) == 0 ? fallback : "";
}

}  // namespace unit::common
