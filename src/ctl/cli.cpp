#include "ctl/cli.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <ostream>
#include <string_view>

namespace po = boost::program_options;

namespace unit::ctl {

namespace {

// No abbreviations: "--d" for "--db" would silently change meaning as soon
// as a command grows another option starting with "d".
constexpr int parser_style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;

const std::vector<Command>& all_commands() {
    static const std::vector<Command> all = [] {
        std::vector<Command> commands;
        for (auto family : {init_commands(), domain_commands(), unit_commands(), mailbox_commands(), move_commands(),
                            alias_commands(), data_commands(), sync_commands(), resolve_commands(), fleet_commands()})
            commands.insert(commands.end(), family.begin(), family.end());
        return commands;
    }();
    return all;
}

std::string_view first_word(std::string_view words) { return words.substr(0, words.find(' ')); }

std::string_view second_word(std::string_view words) {
    const auto space = words.find(' ');
    return space == std::string_view::npos ? std::string_view() : words.substr(space + 1);
}

std::string synopsis(const Command& command) {
    std::string text(command.words);
    for (auto part : {command.operands, command.flags})
        if (!part.empty()) text += fmt::format(" {}", part);
    return text;
}

po::options_description global_options() {
    po::options_description options("global options");
    // clang-format off
    options.add_options()
        ("db", po::value<std::string>()->value_name("PATH"),
         fmt::format("the primary (default {})", default_db_path).c_str())
        ("config", po::value<std::string>()->value_name("FILE"), "read settings from a key = value file")
        ("no-progress", "never draw a progress line on stderr (drawn only on a terminal)")
        ("help,h", "print this help and exit")
        ("version", "print the version and exit");
    // clang-format on
    return options;
}

po::options_description command_options(const Command& command) {
    po::options_description options(fmt::format("options of {}", command.words));
    if (command.declare != nullptr) command.declare(options);
    return options;
}

// The command named by the leading words of `rest`, and how many words it
// took; nullptr with 0 when `rest` names none (only --help may get there).
std::pair<const Command*, std::size_t> find_command(const std::vector<std::string>& rest, bool lenient) {
    if (rest.empty()) {
        if (lenient) return {nullptr, 0};
        throw UsageError("missing command (see unitctl --help)");
    }
    const std::string& family = rest[0];
    if (family.size() > 1 && family.front() == '-') {
        if (lenient) return {nullptr, 0};
        throw UsageError(fmt::format("unrecognised option '{}'", family));
    }
    std::vector<const Command*> verbs;
    for (const auto& command : all_commands())
        if (first_word(command.words) == family) verbs.push_back(&command);
    if (verbs.empty()) {
        if (lenient) return {nullptr, 0};
        throw UsageError(fmt::format("unknown command '{}' (see unitctl --help)", family));
    }
    if (verbs.size() == 1 && second_word(verbs[0]->words).empty()) return {verbs[0], 1};

    std::string choices;
    for (std::size_t i = 0; i < verbs.size(); ++i)
        choices += fmt::format("{}{}",
                               i == 0                  ? ""
                               : i + 1 == verbs.size() ? " or "
                                                       : ", ",
                               second_word(verbs[i]->words));
    if (rest.size() < 2) {
        if (lenient) return {nullptr, 0};
        throw UsageError(fmt::format("{}: missing subcommand ({})", family, choices));
    }
    for (const auto* command : verbs)
        if (second_word(command->words) == rest[1]) return {command, 2};
    if (lenient) return {nullptr, 0};
    throw UsageError(fmt::format("{}: unknown subcommand '{}' ({})", family, rest[1], choices));
}

// How many operands the declaration allows: "NAME" 1..1, "ADDRESS [TARGET]"
// 1..2, "ADDRESS TARGET..." 2..many, "[ADDRESS...]" 0..many.
struct OperandCount {
    std::vector<std::string> names;  // without brackets and dots
    std::size_t min = 0, max = 0;
};

OperandCount operand_count(std::string_view declaration) {
    OperandCount count;
    while (!declaration.empty()) {
        const auto space = declaration.find(' ');
        std::string_view token = declaration.substr(0, space);
        declaration = space == std::string_view::npos ? std::string_view() : declaration.substr(space + 1);
        const bool optional = token.front() == '[';
        const bool repeated = token.find("...") != std::string_view::npos;  // "NAME..." or "[NAME...]"
        std::string name(token);
        std::erase_if(name, [](char c) { return c == '[' || c == ']' || c == '.'; });
        count.names.push_back(name);
        if (!optional) ++count.min;
        count.max = repeated ? std::numeric_limits<std::size_t>::max() : count.max + 1;
    }
    return count;
}

void check_operands(const Command& command, const std::vector<std::string>& operands) {
    const auto count = operand_count(command.operands);
    if (operands.size() < count.min)
        throw UsageError(fmt::format("{}: missing {} (usage: unitctl {})", command.words, count.names[operands.size()],
                                     synopsis(command)));
    if (operands.size() > count.max)
        throw UsageError(fmt::format("{}: unexpected argument '{}' (usage: unitctl {})", command.words,
                                     operands[count.max], synopsis(command)));
}

// Parses what follows the command words against the command's options.
void parse_command_arguments(const Command& command, const std::vector<std::string>& tokens,
                             const std::vector<std::string>& after_dashes, Request& request) {
    auto options = command_options(command);
    options.add_options()("operand", po::value<std::vector<std::string>>());
    po::positional_options_description positional;
    positional.add("operand", -1);
    try {
        auto parsed = po::command_line_parser(tokens).options(options).positional(positional).style(parser_style).run();
        po::store(parsed, request.options);
        po::notify(request.options);
    } catch (const po::error& e) {
        throw UsageError(fmt::format("{}: {}", command.words, e.what()));
    }
    if (request.options.count("operand") != 0)
        request.operands = request.options["operand"].as<std::vector<std::string>>();
    request.operands.insert(request.operands.end(), after_dashes.begin(), after_dashes.end());
    check_operands(command, request.operands);
}

}  // namespace

Request parse_command_line(int argc, const char* const argv[]) {
    // "--" is split off here: Boost would drop it and let the command's
    // parser take "-x@my.com" after it for an option.
    std::vector<std::string> tokens(argv + std::min(argc, 1), argv + argc);
    const auto dashes = std::find(tokens.begin(), tokens.end(), "--");
    const std::vector<std::string> after_dashes(dashes == tokens.end() ? dashes : dashes + 1, tokens.end());
    tokens.erase(dashes, tokens.end());

    // Stage 1: global options anywhere; everything else, in order, is the
    // command words followed by the command's arguments. The command words
    // come before any "--".
    Request request;
    po::variables_map globals;
    std::vector<std::string> rest;
    // The parsed options point into the description: it must outlive store().
    const auto globals_description = global_options();
    try {
        auto parsed =
            po::command_line_parser(tokens).options(globals_description).style(parser_style).allow_unregistered().run();
        po::store(parsed, globals);
        rest = po::collect_unrecognized(parsed.options, po::include_positional);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }

    if (globals.count("version") != 0) {
        request.action = Request::Action::Version;
        return request;
    }
    if (globals.count("help") != 0) {
        request.action = Request::Action::Help;
        request.command = find_command(rest, true).first;
        return request;
    }

    // The configuration is read before the command is looked at, so that a
    // bad file is reported whatever the command.
    if (globals.count("config") != 0) load_config_file(globals["config"].as<std::string>(), request.settings);
    if (globals.count("db") != 0) request.settings.db = globals["db"].as<std::string>();
    if (request.settings.db.empty()) throw UsageError("--db: empty database path");
    request.progress = globals.count("no-progress") == 0;

    const auto [command, words] = find_command(rest, false);
    request.command = command;
    parse_command_arguments(*command, {rest.begin() + static_cast<std::ptrdiff_t>(words), rest.end()}, after_dashes,
                            request);
    return request;
}

void print_help(std::ostream& out, const Command* command) {
    if (command != nullptr) {
        out << fmt::format("usage: unitctl [--db PATH] [--config FILE] {}\n{}\n", synopsis(*command), command->summary);
        if (command->declare != nullptr) out << '\n' << command_options(*command);
        return;
    }
    out << "usage: unitctl [--db PATH] [--config FILE] COMMAND [ARGUMENTS] [OPTIONS]\n\ncommands:\n";
    // A synopsis too long for the column puts its summary on the next line.
    constexpr std::size_t column = 46;
    for (const auto& c : all_commands()) {
        const auto text = synopsis(c);
        if (text.size() < column) out << fmt::format("  {:<{}} {}\n", text, column, c.summary);
        else out << fmt::format("  {}\n  {:<{}} {}\n", text, "", column, c.summary);
    }
    out << '\n' << global_options() << "\nSee unitctl(8) for the CSV format, --config keys and exit status.\n";
}

}  // namespace unit::ctl
