// The manual pages and the example configuration against the programs: every
// configuration key and every option is documented where an administrator
// looks for it, the example file's defaults are the real ones, and the pages
// format without warnings.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "milter/settings.hpp"
#include "policyd/settings.hpp"
#include "policyd/stats.hpp"
#include "test_support.hpp"

using namespace unit::test;

namespace {

std::string source(const std::string& relative) {
    std::string text = read_file(env_or_fail("UNIT_SOURCE_ROOT") + "/" + relative);
    REQUIRE_MESSAGE(!text.empty(), relative << " is missing or empty");
    return text;
}

// groff writes a dash in an option as "\-": the page as a reader sees it.
std::string page(const std::string& name) {
    std::string text = source("man/" + name);
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '-') {
            out += '-';
            ++i;
        } else {
            out += text[i];
        }
    }
    return out;
}

bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// `token` occurs in `text` as a whole word ("--unit" is not found in "--units").
bool has_token(const std::string& text, const std::string& token) {
    for (auto at = text.find(token); at != std::string::npos; at = text.find(token, at + 1)) {
        bool starts = at == 0 || !word_char(text[at - 1]);
        bool ends = at + token.size() == text.size() || !word_char(text[at + token.size()]);
        if (starts && ends) return true;
    }
    return false;
}

// Every "--option" a program's --help mentions.
std::set<std::string> help_options(const std::string& program) {
    CommandResult r = run_command({program, "--help"});
    REQUIRE_MESSAGE(r.exit_code == 0, program << " --help: " << r.err);
    std::set<std::string> options;
    const std::string& text = r.out;
    for (auto at = text.find("--"); at != std::string::npos; at = text.find("--", at + 2)) {
        if (at > 0 && word_char(text[at - 1])) continue;
        auto end = at + 2;
        while (end < text.size() && ((text[end] >= 'a' && text[end] <= 'z') || (text[end] >= '0' && text[end] <= '9') ||
                                     text[end] == '-'))
            ++end;
        if (end > at + 2) options.insert(text.substr(at, end - at));
    }
    REQUIRE_MESSAGE(options.size() > 2, program << " --help shows no options");
    return options;
}

// The configuration keys, with the values the defaults give them.
std::vector<std::pair<std::string, std::string>> default_keys() {
    std::vector<std::pair<std::string, std::string>> keys;
    for (auto& [key, value] : unit::policyd::describe(unit::policyd::Settings{}))
        if (key != "config") keys.emplace_back(key, value);
    REQUIRE(!keys.empty());
    return keys;
}

std::string option_of(std::string key) {
    for (char& c : key)
        if (c == '_') c = '-';
    return "--" + key;
}

bool is_key_name(const std::string& name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
    return true;
}

// "key = value" and "#key = value" lines of the example file, in order; a
// comment ("# text") is not one.
struct ExampleLine {
    std::string key, value;
    bool commented;
};

std::vector<ExampleLine> example_lines(const std::string& file = "examples/unitpolicy.conf") {
    std::vector<ExampleLine> lines;
    std::istringstream in(source(file));
    for (std::string line; std::getline(in, line);) {
        bool commented = !line.empty() && line[0] == '#';
        std::string body = commented ? line.substr(1) : line;
        auto eq = body.find('=');
        if (eq == std::string::npos) continue;
        std::string key = body.substr(0, eq);
        while (!key.empty() && key.back() == ' ') key.pop_back();
        if (!is_key_name(key)) continue;
        std::string value = body.substr(eq + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        while (!value.empty() && value.back() == ' ') value.pop_back();
        lines.push_back({key, value, commented});
    }
    return lines;
}

// unitmilter's configuration keys, with the values the defaults give them.
std::vector<std::pair<std::string, std::string>> milter_default_keys() {
    std::vector<std::pair<std::string, std::string>> keys;
    for (auto& [key, value] : unit::milter::describe(unit::milter::Settings{}))
        if (key != "config") keys.emplace_back(key, value);
    REQUIRE(!keys.empty());
    return keys;
}

// The ".TP" / ".B key" entries of the CONFIGURATION section of a page.
std::set<std::string> configuration_entries(const std::string& text) {
    std::set<std::string> entries;
    auto begin = text.find("\n.SH CONFIGURATION\n");
    REQUIRE_MESSAGE(begin != std::string::npos, "no CONFIGURATION section");
    auto end = text.find("\n.SH ", begin + 1);
    std::istringstream in(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    std::string previous;
    for (std::string line; std::getline(in, line); previous = line)
        if (previous == ".TP" && line.rfind(".B ", 0) == 0) entries.insert(line.substr(3));
    return entries;
}

}  // namespace

TEST_CASE("every configuration key has an entry in unitpolicy.conf(5), and every entry is a key") {
    std::string conf = page("unitpolicy.conf.5");
    std::set<std::string> entries = configuration_entries(conf);
    std::set<std::string> keys;
    for (const auto& [key, value] : default_keys()) {
        keys.insert(key);
        CHECK_MESSAGE(entries.count(key) == 1, "unitpolicy.conf.5 has no \".TP\\n.B " << key << "\" entry");
    }
    for (const auto& entry : entries) CHECK_MESSAGE(keys.count(entry) == 1, "unitpolicy.conf.5 documents \"" << entry
                                                                                   << "\", which is not a key");
}

TEST_CASE("every configuration key is in examples/unitpolicy.conf, with its real default") {
    auto lines = example_lines();
    std::set<std::string> keys;
    for (const auto& [key, value] : default_keys()) keys.insert(key);
    std::set<std::string> listed;
    for (const auto& line : lines) {
        CHECK_MESSAGE(keys.count(line.key) == 1, "examples/unitpolicy.conf sets \"" << line.key
                                                                                    << "\", which is not a key");
        if (line.commented) listed.insert(line.key);
    }
    for (const auto& key : keys)
        CHECK_MESSAGE(listed.count(key) == 1, "examples/unitpolicy.conf has no \"#" << key << " = default\" line");

    // The commented-out defaults, taken as settings, change nothing.
    TempDir dir;
    std::string defaults;
    for (const auto& line : lines)
        if (line.commented && !line.value.empty() && keys.count(line.key) == 1)
            defaults += line.key + " = " + line.value + "\n";
    write_file(dir.path("defaults.conf"), defaults);
    std::string file = dir.path("defaults.conf");
    const char* argv[] = {"unitpolicy", "--dump", "--config", file.c_str()};
    unit::policyd::Settings loaded = unit::policyd::load_settings(4, argv);
    auto expected = default_keys();
    std::map<std::string, std::string> got;
    for (auto& [key, value] : unit::policyd::describe(loaded)) got[key] = value;
    for (const auto& [key, value] : expected)
        CHECK_MESSAGE(got[key] == value, "examples/unitpolicy.conf: #" << key << " gives \"" << got[key]
                                                                        << "\", the default is \"" << value << "\"");

    // And the active settings of the example are valid.
    std::string example = env_or_fail("UNIT_SOURCE_ROOT") + "/examples/unitpolicy.conf";
    const char* example_argv[] = {"unitpolicy", "--dump", "--config", example.c_str()};
    CHECK_NOTHROW(unit::policyd::load_settings(4, example_argv));
}

TEST_CASE("every option of unitpolicy is in unitpolicy(8)") {
    std::string man = page("unitpolicy.8");
    for (const auto& [key, value] : default_keys())
        CHECK_MESSAGE(has_token(man, option_of(key)), "unitpolicy.8 does not mention " << option_of(key));
    for (const auto& option : help_options(env_or_fail("UNITPOLICY")))
        CHECK_MESSAGE(has_token(man, option), "unitpolicy --help shows " << option << ", unitpolicy.8 does not");
}

TEST_CASE("every counter of the control socket is in unitpolicy(8)") {
    std::string man = page("unitpolicy.8");
    unit::policyd::Stats stats;
    std::string json = unit::policyd::stats_json(stats);
    int counters = 0;
    for (auto open = json.find('"'); open != std::string::npos; open = json.find('"', open + 1)) {
        auto close = json.find('"', open + 1);
        REQUIRE(close != std::string::npos);
        std::string name = json.substr(open + 1, close - open - 1);
        open = close;
        ++counters;
        CHECK_MESSAGE(has_token(man, name), "the control socket serves " << name << ", unitpolicy.8 does not name it");
    }
    CHECK(counters > 10);
}

TEST_CASE("every option of unitctl is in unitctl(8)") {
    std::string man = page("unitctl.8");
    for (const auto& option : help_options(env_or_fail("UNITCTL")))
        CHECK_MESSAGE(has_token(man, option), "unitctl --help shows " << option << ", unitctl.8 does not");
}

TEST_CASE("every option of unitmilter is in unitmilter(8)") {
    std::string man = page("unitmilter.8");
    for (const auto& [key, value] : milter_default_keys())
        CHECK_MESSAGE(has_token(man, option_of(key)), "unitmilter.8 does not mention " << option_of(key));
    for (const auto& option : help_options(env_or_fail("UNITMILTER")))
        CHECK_MESSAGE(has_token(man, option), "unitmilter --help shows " << option << ", unitmilter.8 does not");
}

TEST_CASE("every configuration key of unitmilter has an entry in unitmilter(8), and every entry is a key") {
    std::set<std::string> entries = configuration_entries(page("unitmilter.8"));
    std::set<std::string> keys;
    for (const auto& [key, value] : milter_default_keys()) {
        keys.insert(key);
        CHECK_MESSAGE(entries.count(key) == 1, "unitmilter.8 has no \".TP\\n.B " << key << "\" entry");
    }
    for (const auto& entry : entries)
        CHECK_MESSAGE(keys.count(entry) == 1, "unitmilter.8 documents \"" << entry << "\", which is not a key");
}

TEST_CASE("every configuration key of unitmilter is in examples/unitmilter.conf, with its real default") {
    auto lines = example_lines("examples/unitmilter.conf");
    std::set<std::string> keys;
    for (const auto& [key, value] : milter_default_keys()) keys.insert(key);
    std::set<std::string> listed;
    for (const auto& line : lines) {
        CHECK_MESSAGE(keys.count(line.key) == 1, "examples/unitmilter.conf sets \"" << line.key
                                                                                    << "\", which is not a key");
        if (line.commented) listed.insert(line.key);
    }
    for (const auto& key : keys)
        CHECK_MESSAGE(listed.count(key) == 1, "examples/unitmilter.conf has no \"#" << key << " = default\" line");

    // The commented-out defaults, taken as settings, change nothing. A
    // serving configuration needs a listener, and the host name is the
    // system's: those two are left out of the comparison.
    TempDir dir;
    std::string defaults;
    for (const auto& line : lines)
        if (line.commented && !line.value.empty() && keys.count(line.key) == 1)
            defaults += line.key + " = " + line.value + "\n";
    write_file(dir.path("defaults.conf"), defaults);
    std::string file = dir.path("defaults.conf");
    const char* argv[] = {"unitmilter", "--config", file.c_str(), "--listen", "unix:/nonexistent/unitmilter"};
    unit::milter::Settings loaded = unit::milter::load_settings(5, argv);
    std::map<std::string, std::string> got;
    for (auto& [key, value] : unit::milter::describe(loaded)) got[key] = value;
    for (const auto& [key, value] : milter_default_keys()) {
        if (key == "listen" || key == "hostname") continue;
        CHECK_MESSAGE(got[key] == value, "examples/unitmilter.conf: #" << key << " gives \"" << got[key]
                                                                        << "\", the default is \"" << value << "\"");
    }

    // And the active settings of the example are valid.
    std::string example = env_or_fail("UNIT_SOURCE_ROOT") + "/examples/unitmilter.conf";
    const char* example_argv[] = {"unitmilter", "--config", example.c_str()};
    CHECK_NOTHROW(unit::milter::load_settings(3, example_argv));
}

TEST_CASE("unitmilter(8) has the sections of a daemon's page") {
    std::string man = page("unitmilter.8");
    for (const char* section : {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "PROTOCOL", "HEADERS", "CONFIGURATION",
                                "DIAGNOSTICS", "SIGNALS", "EXIT STATUS", "SECURITY", "FILES", "SEE ALSO"})
        CHECK_MESSAGE(man.find(std::string("\n.SH ") + section + "\n") != std::string::npos,
                      "unitmilter.8 has no " << section << " section");
}

TEST_CASE("unitpolicy(8) has the sections of a daemon's page") {
    std::string man = page("unitpolicy.8");
    for (const char* section : {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "PROTOCOL", "CONFIGURATION",
                                "DIAGNOSTICS", "EXIT STATUS", "SECURITY", "FILES", "SEE ALSO"})
        CHECK_MESSAGE(man.find(std::string("\n.SH ") + section + "\n") != std::string::npos,
                      "unitpolicy.8 has no " << section << " section");
}

TEST_CASE("the pages format without warnings") {
    const char* groff = "/usr/bin/groff";
    if (access(groff, X_OK) != 0) {
        MESSAGE("groff is not installed: not checked");
        return;
    }
    std::filesystem::path dir = std::filesystem::path(env_or_fail("UNIT_SOURCE_ROOT")) / "man";
    int pages = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        auto extension = entry.path().extension().string();
        if (extension != ".5" && extension != ".8") continue;
        ++pages;
        CommandResult r = run_command({groff, "-man", "-ww", "-z", entry.path().string()});
        CHECK_MESSAGE(r.exit_code == 0, entry.path().filename().string() << ": groff exits " << r.exit_code);
        CHECK_MESSAGE(r.err.empty(), entry.path().filename().string() << ": " << r.err);
    }
    CHECK(pages >= 5);
}
