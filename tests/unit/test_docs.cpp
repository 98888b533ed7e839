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

#include "ctl/settings.hpp"
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
        while (end < text.size() &&
               ((text[end] >= 'a' && text[end] <= 'z') || (text[end] >= '0' && text[end] <= '9') || text[end] == '-'))
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

std::vector<ExampleLine> example_lines(const std::string& file) {
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

// unitctl's configuration keys, with the values the defaults give them.
std::vector<std::pair<std::string, std::string>> ctl_default_keys() {
    auto keys = unit::ctl::describe(unit::ctl::Settings{});
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

namespace {

using Keys = std::vector<std::pair<std::string, std::string>>;

std::set<std::string> key_names(const Keys& keys) {
    std::set<std::string> names;
    for (const auto& [key, value] : keys) names.insert(key);
    return names;
}

// Every key has a ".TP .B key" entry in `page_name`, and every entry is a key.
void check_entries(const std::string& page_name, const Keys& keys) {
    std::set<std::string> entries = configuration_entries(page(page_name));
    std::set<std::string> names = key_names(keys);
    for (const auto& key : names)
        CHECK_MESSAGE(entries.count(key) == 1, page_name << " has no \".TP\\n.B " << key << "\" entry");
    for (const auto& entry : entries)
        CHECK_MESSAGE(names.count(entry) == 1, page_name << " documents \"" << entry << "\", which is not a key");
}

// Every key is listed in the example file as "#key = default", and every
// key it sets is real. Returns the commented-out defaults as a configuration.
std::string check_example(const std::string& file, const Keys& keys) {
    auto lines = example_lines(file);
    std::set<std::string> names = key_names(keys);
    std::set<std::string> listed;
    std::string defaults;
    for (const auto& line : lines) {
        CHECK_MESSAGE(names.count(line.key) == 1, file << " sets \"" << line.key << "\", which is not a key");
        if (!line.commented) continue;
        listed.insert(line.key);
        if (!line.value.empty() && names.count(line.key) == 1) defaults += line.key + " = " + line.value + "\n";
    }
    for (const auto& key : names)
        CHECK_MESSAGE(listed.count(key) == 1, file << " has no \"#" << key << " = default\" line");
    return defaults;
}

// Loading the example's defaults gives the real defaults (`skip`: keys that
// depend on the machine or are required).
void check_defaults(const std::string& file, const Keys& keys, const Keys& loaded, const std::set<std::string>& skip) {
    std::map<std::string, std::string> got(loaded.begin(), loaded.end());
    for (const auto& [key, value] : keys) {
        if (skip.count(key)) continue;
        CHECK_MESSAGE(got[key] == value,
                      file << ": #" << key << " gives \"" << got[key] << "\", the default is \"" << value << "\"");
    }
}

// Every key's option and every option of `program --help` is in `page_name`.
void check_options(const std::string& page_name, const std::string& program, const Keys& keys) {
    std::string man = page(page_name);
    for (const auto& [key, value] : keys)
        CHECK_MESSAGE(has_token(man, option_of(key)), page_name << " does not mention " << option_of(key));
    for (const auto& option : help_options(program))
        CHECK_MESSAGE(has_token(man, option),
                      program << " --help shows " << option << ", " << page_name << " does not");
}

void check_sections(const std::string& page_name, std::initializer_list<const char*> sections) {
    std::string man = page(page_name);
    for (const char* section : sections)
        CHECK_MESSAGE(man.find(std::string("\n.SH ") + section + "\n") != std::string::npos,
                      page_name << " has no " << section << " section");
}

}  // namespace

TEST_CASE("every configuration key has an entry in unitpolicy.conf(5), and every entry is a key") {
    check_entries("unitpolicy.conf.5", default_keys());
}

TEST_CASE("every configuration key is in examples/unitpolicy.conf, with its real default") {
    const std::string file = "examples/unitpolicy.conf";
    std::string defaults = check_example(file, default_keys());
    // The commented-out defaults, taken as settings, change nothing.
    TempDir dir;
    std::string path = dir.path("defaults.conf");
    write_file(path, defaults);
    const char* argv[] = {"unitpolicy", "--dump", "--config", path.c_str()};
    check_defaults(file, default_keys(), unit::policyd::describe(unit::policyd::load_settings(4, argv)), {});

    // And the active settings of the example are valid.
    std::string example = env_or_fail("UNIT_SOURCE_ROOT") + "/" + file;
    const char* example_argv[] = {"unitpolicy", "--dump", "--config", example.c_str()};
    CHECK_NOTHROW(unit::policyd::load_settings(4, example_argv));
}

TEST_CASE("every option of unitpolicy is in unitpolicy(8)") {
    check_options("unitpolicy.8", env_or_fail("UNITPOLICY"), default_keys());
}

// unitpolicy(8) lists every setting, one entry each, and leaves its
// description to unitpolicy.conf(5).
TEST_CASE("the Settings list of unitpolicy(8) has one entry per configuration key") {
    const std::string man = page("unitpolicy.8");
    const auto begin = man.find("\n.SS Settings\n");
    REQUIRE_MESSAGE(begin != std::string::npos, "unitpolicy.8 has no Settings subsection");
    const auto end = man.find("\n.S", begin + 1);
    std::istringstream in(man.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    std::set<std::string> listed;
    std::string previous;
    for (std::string line; std::getline(in, line); previous = line) {
        if (previous.rfind(".TP", 0) != 0 && previous != ".TQ") continue;
        std::istringstream words(line);
        std::string macro, option;
        words >> macro >> option;
        if (option.rfind("--", 0) == 0) listed.insert(option);
    }
    std::set<std::string> options;
    for (const auto& [key, value] : default_keys()) options.insert(option_of(key));
    for (const auto& option : options)
        CHECK_MESSAGE(listed.count(option) == 1, "unitpolicy.8 does not list " << option << " under Settings");
    for (const auto& option : listed)
        CHECK_MESSAGE(options.count(option) == 1, "unitpolicy.8 lists " << option << ", which is not a key");
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

TEST_CASE("every option of unitctl is in unitctl(8)") { check_options("unitctl.8", env_or_fail("UNITCTL"), {}); }

TEST_CASE("every configuration key of unitctl has an entry in unitctl(8), and every entry is a key") {
    check_entries("unitctl.8", ctl_default_keys());
}

TEST_CASE("every option of unitmilter is in unitmilter(8)") {
    check_options("unitmilter.8", env_or_fail("UNITMILTER"), milter_default_keys());
}

TEST_CASE("every configuration key of unitmilter has an entry in unitmilter(8), and every entry is a key") {
    check_entries("unitmilter.8", milter_default_keys());
}

TEST_CASE("every configuration key of unitmilter is in examples/unitmilter.conf, with its real default") {
    const std::string file = "examples/unitmilter.conf";
    std::string defaults = check_example(file, milter_default_keys());
    // The commented-out defaults, taken as settings, change nothing. A
    // serving configuration needs a listener, and the host name is the
    // system's: those two are left out of the comparison.
    TempDir dir;
    std::string path = dir.path("defaults.conf");
    write_file(path, defaults);
    const char* argv[] = {"unitmilter", "--config", path.c_str(), "--listen", "unix:/nonexistent/unitmilter"};
    check_defaults(file, milter_default_keys(), unit::milter::describe(unit::milter::load_settings(5, argv)),
                   {"listen", "hostname"});

    // And the active settings of the example are valid.
    std::string example = env_or_fail("UNIT_SOURCE_ROOT") + "/" + file;
    const char* example_argv[] = {"unitmilter", "--config", example.c_str()};
    CHECK_NOTHROW(unit::milter::load_settings(3, example_argv));
}

TEST_CASE("unitmilter(8) has the sections of a daemon's page") {
    check_sections("unitmilter.8",
                   {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "PROTOCOL", "HEADERS", "CONFIGURATION", "DIAGNOSTICS",
                    "SIGNALS", "EXIT STATUS", "SECURITY", "FILES", "SEE ALSO"});
}

TEST_CASE("unitpolicy(8) has the sections of a daemon's page") {
    check_sections("unitpolicy.8", {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "PROTOCOL", "CONFIGURATION",
                                    "DIAGNOSTICS", "EXIT STATUS", "SECURITY", "FILES", "SEE ALSO"});
}

TEST_CASE("the pages and the Debian changelog name the version of meson.build") {
    for (const char* page :
         {"man/unitpolicy.8", "man/unitmilter.8", "man/unitctl.8", "man/unitpolicy.conf.5", "man/unitpolicy-db.5"}) {
        CAPTURE(page);
        const std::string text = source(page);
        const std::string th = text.substr(0, text.find('\n'));
        CHECK(th.find("\"unitpolicy " UNIT_TEST_VERSION "\"") != std::string::npos);
    }
    const std::string changelog = source("debian/changelog");
    CHECK(changelog.rfind("unitpolicy (" UNIT_TEST_VERSION ")", 0) == 0);
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

TEST_CASE("the LDAP examples set keys of unitctl(8), all of them between the two, and unitctl takes them") {
    const auto entries = configuration_entries(page("unitctl.8"));
    std::set<std::string> shown;
    TempDir dir;
    for (const std::string file : {"examples/unitctl-ldap-openldap.conf", "examples/unitctl-ldap-ad.conf"}) {
        for (const auto& line : example_lines(file)) {
            CHECK_MESSAGE(entries.count(line.key) == 1, file << " sets \"" << line.key << "\", not in unitctl(8)");
            shown.insert(line.key);
        }
        CommandResult r = run_command({env_or_fail("UNITCTL"), "--config", env_or_fail("UNIT_SOURCE_ROOT") + "/" + file,
                                       "--db", dir.path(file.substr(9) + ".db"), "init"});
        CHECK_MESSAGE(r.exit_code == 0, file << ": " << r.err);
    }
    for (const auto& entry : entries)
        if (entry.rfind("ldap_", 0) == 0) CHECK_MESSAGE(shown.count(entry) == 1, "no LDAP example shows " << entry);
}
