// The golden transcripts (tests/golden/README.md): each policy/NAME.in and
// socketmap/NAME.in is fed to the daemon's own conversation code
// (policyd/conversation.hpp) over a directory built by unitctl, and what
// it answers is compared with NAME.out. With UPDATE_GOLDEN=1 in the
// environment the .out files are written instead of compared.
//
// Each transcript is fed twice, whole and one byte at a time: the answers
// must not depend on how the stream is split.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "common/netstring.hpp"
#include "policyd/conversation.hpp"
#include "policyd/settings.hpp"
#include "test_support.hpp"

using namespace unit;
using namespace unit::policyd;
using namespace unit::test;

namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------ the .in format

// A transcript: the directory it runs over, the unitpolicy options it runs
// with, and the bytes the client sends.
struct Transcript {
    std::string directory = "sample";
    std::vector<std::string> options;
    std::string input;
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The bytes a line of a .in file stands for: \\ \n \r \t \0 \xHH, and
// \{N*TEXT} for N copies of TEXT (TEXT without '}').
std::string unescape(std::string_view line, const std::string& where) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] != '\\') {
            out += line[i];
            continue;
        }
        REQUIRE_MESSAGE(i + 1 < line.size(), where, ": '\\' at the end of a line");
        const char c = line[++i];
        if (c == '\\') out += '\\';
        else if (c == 'n') out += '\n';
        else if (c == 'r') out += '\r';
        else if (c == 't') out += '\t';
        else if (c == '0') out += '\0';
        else if (c == 'x') {
            const int high = i + 1 < line.size() ? hex_value(line[i + 1]) : -1;
            const int low = i + 2 < line.size() ? hex_value(line[i + 2]) : -1;
            REQUIRE_MESSAGE((high >= 0 && low >= 0), where, ": \\x needs two hex digits");
            out += static_cast<char>(high * 16 + low);
            i += 2;
        } else if (c == '{') {
            const auto star = line.find('*', i);
            const auto close = line.find('}', i);
            REQUIRE_MESSAGE((star != std::string_view::npos && close != std::string_view::npos && star < close), where,
                            ": \\{ needs N*TEXT}");
            const std::string count(line.substr(i + 1, star - i - 1));
            REQUIRE_MESSAGE((!count.empty() && count.find_first_not_of("0123456789") == std::string::npos), where,
                            ": bad count in \\{", count, "*...}");
            const auto text = line.substr(star + 1, close - star - 1);
            for (long n = std::stol(count); n > 0; --n) out += text;
            i = close;
        } else {
            FAIL(where, ": unknown escape \\", c);
        }
    }
    return out;
}

enum class Protocol { Policy, Socketmap };

// Reads a .in file: '#' lines are comments, "#! directory NAME" and
// "#! option ARG" say how to run it; in a socketmap file "#! raw BYTES"
// sends BYTES as they are. Every other line is sent: in a policy file as
// the line and "\n" (an empty line ends a request), in a socketmap file as
// one netstring (empty lines are skipped).
Transcript read_transcript(const fs::path& file, Protocol protocol) {
    const std::string text = read_file(file.string());
    REQUIRE_MESSAGE(!text.empty(), file.string(), ": empty or unreadable");
    REQUIRE_MESSAGE(text.back() == '\n', file.string(), ": the last line has no newline");
    Transcript t;
    std::size_t number = 0;
    for (std::size_t start = 0; start < text.size();) {
        const auto end = text.find('\n', start);
        const std::string_view line = std::string_view(text).substr(start, end - start);
        start = end + 1;
        const std::string where = fmt::format("{}:{}", file.string(), ++number);
        if (line.rfind("#!", 0) == 0) {
            const auto rest = line.substr(2);
            const auto first = rest.find_first_not_of(' ');
            REQUIRE_MESSAGE(first != std::string_view::npos, where, ": a directive without a name");
            const auto space = rest.find(' ', first);
            const std::string name(rest.substr(first, space - first));
            const std::string value(space == std::string_view::npos ? "" : rest.substr(space + 1));
            if (name == "directory") t.directory = value;
            else if (name == "option") t.options.push_back(value);
            else if (name == "raw" && protocol == Protocol::Socketmap) t.input += unescape(value, where);
            else FAIL(where, ": unknown directive '", name, "'");
        } else if (line.rfind('#', 0) == 0) {
            continue;
        } else if (protocol == Protocol::Policy) {
            t.input += unescape(line, where);
            t.input += '\n';
        } else if (!line.empty()) {
            common::append_netstring(t.input, unescape(line, where));
        }
    }
    return t;
}

// ------------------------------------------------------------ the directories

// The directories a transcript may name, built once per run in `root`:
//   sample   examples/sample/sample.csv, imported and published by unitctl
//   states   tests/golden/states.csv the same way, then tests/golden/states.sql
//            run on the replica (rows unitctl refuses: dangling alias targets)
//   future   states, its published_at far in the future: a snapshot of
//            unknown age, whose negative answers are never final
//   none     no file at all
class Directories {
public:
    Directories() : source_(env_or_fail("UNIT_SOURCE_ROOT")), unitctl_(env_or_fail("UNITCTL")) {}

    const std::string& root() const { return dir_.root(); }

    std::string path(const std::string& name) {
        if (auto found = built_.find(name); found != built_.end()) return found->second;
        const std::string replica = dir_.path(name + ".db");
        if (name == "sample") {
            publish(source_ + "/examples/sample/sample.csv", name);
        } else if (name == "states" || name == "future") {
            publish(source_ + "/tests/golden/states.csv", name);
            raw_sql(replica, read_file(source_ + "/tests/golden/states.sql"));
            if (name == "future")
                raw_sql(replica, "UPDATE meta SET value = '2100-01-01T00:00:00Z' WHERE key = 'published_at';");
        } else {
            REQUIRE_MESSAGE(name == "none", "unknown directory '", name, "'");
        }
        return built_[name] = replica;
    }

private:
    void unitctl(const std::string& name, std::vector<std::string> args) {
        args.insert(args.begin(), {unitctl_, "--db", dir_.path(name + "-primary.db")});
        const auto result = run_command(args);
        REQUIRE_MESSAGE(result.exit_code == 0, "unitctl ", args[3], ": ", result.err);
    }

    void publish(const std::string& csv, const std::string& name) {
        unitctl(name, {"init"});
        unitctl(name, {"import", csv});
        unitctl(name, {"publish", dir_.path(name + ".db")});
    }

    std::string source_, unitctl_;
    TempDir dir_;
    std::map<std::string, std::string> built_;
};

// ------------------------------------------------------------ running one

std::string escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
    return out;
}

// The settings of `t`, as the command line "unitpolicy --stdio" with its
// options would give them (an empty configuration file: none of the host's).
Settings settings_of(const Transcript& t, Directories& directories) {
    const std::string config = directories.root() + "/empty.conf";
    write_file(config, "");
    std::vector<std::string> args = {"--stdio", "--config", config, "--db", directories.path(t.directory)};
    args.insert(args.end(), t.options.begin(), t.options.end());
    return load_command_line(load_settings, "unitpolicy", args);
}

// What the conversation answers to `input` fed in chunks of `chunk` bytes,
// in the .out format: a policy conversation's bytes as they are, a
// socketmap conversation's replies one a line (escaped); then, if the
// conversation broke off, "# closed: " and why.
template <class Conversation>
std::string converse(const Settings& settings, const std::string& input, std::size_t chunk, Protocol protocol) {
    Stats stats;
    Worker worker(std::make_shared<const Settings>(settings), stats, nullptr);
    Conversation conversation(worker);
    std::string out;
    bool open = true;
    for (std::size_t i = 0; i < input.size() && open; i += chunk)
        open = conversation.feed(std::string_view(input).substr(i, chunk), out);
    std::string shown;
    if (protocol == Protocol::Policy) {
        shown = out;
    } else {
        common::NetstringDecoder decoder(out.size() + 16);
        decoder.feed(out);
        while (auto reply = decoder.next()) shown += escape(*reply) + "\n";
        REQUIRE_MESSAGE(decoder.buffered() == 0, "a socketmap reply is not a whole netstring");
    }
    if (!open) shown += "# closed: " + conversation.error() + "\n";
    return shown;
}

std::string run(const Transcript& t, Directories& directories, Protocol protocol, std::size_t chunk) {
    const Settings settings = settings_of(t, directories);
    std::string out = protocol == Protocol::Policy
                          ? converse<PolicyConversation>(settings, t.input, chunk, protocol)
                          : converse<SocketmapConversation>(settings, t.input, chunk, protocol);
    // The temporary directory's path, where a reason names the file.
    for (std::size_t at; (at = out.find(directories.root())) != std::string::npos;)
        out.replace(at, directories.root().size(), "DIR");
    return out;
}

// ------------------------------------------------------------ comparing

std::vector<std::string_view> lines_of(std::string_view s) {
    std::vector<std::string_view> lines;
    for (std::size_t start = 0; start < s.size();) {
        auto end = s.find('\n', start);
        if (end == std::string_view::npos) end = s.size();
        lines.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// A line diff of expected and actual ("-" expected only, "+" actual only,
// " " both), from their longest common subsequence; transcripts are short.
std::string diff(std::string_view expected, std::string_view actual) {
    const auto a = lines_of(expected), b = lines_of(actual);
    std::vector<std::vector<std::size_t>> common(a.size() + 1, std::vector<std::size_t>(b.size() + 1, 0));
    for (std::size_t i = a.size(); i-- > 0;)
        for (std::size_t j = b.size(); j-- > 0;)
            common[i][j] = a[i] == b[j] ? common[i + 1][j + 1] + 1 : std::max(common[i + 1][j], common[i][j + 1]);
    std::string out;
    std::size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        if (i < a.size() && j < b.size() && a[i] == b[j]) {
            out += fmt::format("  {}\n", escape(a[i++]));
            ++j;
        } else if (j < b.size() && (i == a.size() || common[i][j + 1] > common[i + 1][j])) {
            out += fmt::format("+ {}\n", escape(b[j++]));
        } else {
            out += fmt::format("- {}\n", escape(a[i++]));
        }
    }
    return out;
}

bool updating() {
    const char* update = std::getenv("UPDATE_GOLDEN");
    return update != nullptr && std::string_view(update) == "1";
}

// Runs every NAME.in of tests/golden/SUBDIR; returns how many.
std::size_t run_all(const std::string& subdir, Protocol protocol) {
    const fs::path dir = fs::path(env_or_fail("UNIT_SOURCE_ROOT")) / "tests" / "golden" / subdir;
    std::vector<fs::path> inputs;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().extension() == ".in") inputs.push_back(entry.path());
    std::sort(inputs.begin(), inputs.end());
    Directories directories;
    for (const auto& in : inputs) {
        const fs::path out_file = fs::path(in).replace_extension(".out");
        const std::string name = subdir + "/" + in.filename().string();
        CAPTURE(name);
        const Transcript t = read_transcript(in, protocol);
        const std::string whole = run(t, directories, protocol, t.input.size() + 1);
        const std::string bytewise = run(t, directories, protocol, 1);
        const bool same_split = whole == bytewise;
        CHECK_MESSAGE(same_split, name, ": fed one byte at a time, the answers differ:\n", diff(whole, bytewise));
        if (updating()) {
            write_file(out_file.string(), whole);
            continue;
        }
        const std::string expected = read_file(out_file.string());
        const bool same = expected == whole;
        CHECK_MESSAGE(same, name, ": the answers differ from ", out_file.filename().string(),
                      " (- expected, + actual; UPDATE_GOLDEN=1 rewrites it):\n", diff(expected, whole));
    }
    return inputs.size();
}

}  // namespace

TEST_CASE("policy transcripts") {
    common::open_log(common::LogSink::None, "unitpolicy", false);
    CHECK(run_all("policy", Protocol::Policy) > 0);
}

TEST_CASE("socketmap transcripts") {
    common::open_log(common::LogSink::None, "unitpolicy", false);
    CHECK(run_all("socketmap", Protocol::Socketmap) > 0);
}
