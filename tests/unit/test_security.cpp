// Security checks of the programs and of the sources: the daemons' unix
// sockets get the configured mode and group; with `user` set a daemon runs
// as that user (every id, every thread, none of root's groups) and cannot
// write the database; and no SQL in src/ is built from strings. The checks
// that change users or groups need root: run as anyone else they are
// skipped, and say so.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "test_support.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::test;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ------------------------------------------------------------ daemons

enum class Program { Policy, Milter };

std::string name_of(Program p) { return p == Program::Policy ? "unitpolicy" : "unitmilter"; }


// The unix sockets a daemon started by start() listens on, in `dir`.
std::vector<std::string> sockets_of(Program p, const std::string& dir) {
    if (p == Program::Policy) return {dir + "/policy", dir + "/map"};
    return {dir + "/milter"};
}

// Starts `p` on `db`, its sockets in `dir` (sockets_of) and its log in
// dir/daemon.log, with the `extra` options; returns once it serves.
void start(std::optional<Daemon>& daemon, Program p, const std::string& db, const std::string& dir,
           const std::vector<std::string>& extra) {
    std::vector<std::string> args{"--db", db, "--log", "stderr"};
    auto sockets = sockets_of(p, dir);
    if (p == Program::Policy) {
        args.insert(args.end(), {"--policy-listen", "unix:" + sockets[0], "--socketmap-listen", "unix:" + sockets[1],
                                 "--threads", "2"});
    } else {
        args.insert(args.end(), {"--listen", "unix:" + sockets[0]});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    daemon.emplace(env_or_fail(p == Program::Policy ? "UNITPOLICY" : "UNITMILTER"), args, dir + "/daemon.log");
    daemon->wait_until_started();
}

struct World {
    TempDir dir;
    std::string db = dir.path("units.db");
    World() {
        auto primary = make_sample_primary(dir.path("primary.db"));
        REQUIRE(primary.publish(db).ok());
    }
};

// ------------------------------------------------------------ clients

int connect_unix(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE_MESSAGE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "cannot connect to " << path);
    return fd;
}

void send_all(int fd, std::string_view data) {
    REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
}

// Reads exactly `size` bytes (10 s at most); fewer when the peer closes.
std::string read_exactly(int fd, std::size_t size) {
    std::string data;
    char buffer[4096];
    while (data.size() < size) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0) break;
        ssize_t n = read(fd, buffer, std::min(sizeof buffer, size - data.size()));
        if (n <= 0) break;
        data.append(buffer, static_cast<std::size_t>(n));
    }
    return data;
}

// One policy request; the answer, up to its empty line.
std::string ask_policy(const std::string& socket, std::string_view recipient) {
    int fd = connect_unix(socket);
    send_all(fd, fmt::format("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient={}\n\n", recipient));
    std::string answer;
    while (answer.size() < 512 && answer.find("\n\n") == std::string::npos) {
        std::string byte = read_exactly(fd, 1);
        if (byte.empty()) break;
        answer += byte;
    }
    close(fd);
    return answer;
}

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string be16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }

// A milter packet: length (command and data), command, data.
std::string milter_packet(char command, std::string_view data) {
    return be32(static_cast<std::uint32_t>(data.size() + 1)) + command + std::string(data);
}

// A packet from the filter: its command letter and data ('\0' when closed).
std::pair<char, std::string> read_milter_packet(int fd) {
    std::string head = read_exactly(fd, 4);
    if (head.size() < 4) return {'\0', {}};
    std::uint32_t size = 0;
    for (char c : head) size = size << 8 | static_cast<unsigned char>(c);
    if (size == 0 || size > 1024 * 1024) return {'\0', {}};
    std::string body = read_exactly(fd, size);
    if (body.size() < size) return {'\0', {}};
    return {body[0], body.substr(1)};
}

// One message through the milter protocol, as Postfix sends it: negotiate,
// connect from outside, one recipient, end of message. Returns the final
// reply's command letter ('a' accept, 'c' continue, 't' tempfail, ...).
char milter_message(const std::string& socket, std::string_view recipient) {
    constexpr std::uint32_t no_reply_connect = 0x1000, no_reply_rcpt = 0x8000;
    int fd = connect_unix(socket);
    send_all(fd, milter_packet('O', be32(6) + be32(0x1FF) + be32(0x1FFFFF)));
    auto [command, data] = read_milter_packet(fd);
    REQUIRE(command == 'O');
    REQUIRE(data.size() >= 12);
    std::uint32_t steps = 0;
    for (char c : data.substr(8, 4)) steps = steps << 8 | static_cast<unsigned char>(c);
    const std::string client = std::string("outside.example.net") + '\0' + '4' + be16(25) + "192.0.2.10" + '\0';
    send_all(fd, milter_packet('C', client));
    if (!(steps & no_reply_connect)) read_milter_packet(fd);
    send_all(fd, milter_packet('R', fmt::format("<{}>", recipient) + '\0'));
    if (!(steps & no_reply_rcpt)) read_milter_packet(fd);
    send_all(fd, milter_packet('E', {}));
    char reply = '\0';
    do {  // header changes and progress reports come first
        reply = read_milter_packet(fd).first;
    } while (reply != '\0' && std::string_view("acdrty").find(reply) == std::string_view::npos);
    close(fd);
    return reply;
}

// Makes the daemon read the database, as a client would.
void exercise(Program p, const std::string& dir) {
    auto socket = sockets_of(p, dir)[0];
    if (p == Program::Policy) {
        CHECK(ask_policy(socket, "user@example.com") == "action=DUNNO\n\n");
    } else {
        char reply = milter_message(socket, "user@example.com");
        CHECK_MESSAGE((reply == 'a' || reply == 'c'), "final reply '" << reply << "'");
    }
}

// ------------------------------------------------------------ /proc

// The numbers of a "Name:\tN\tN..." line of a /proc status file, sorted
// when `sorted`, as "N N ...".
std::string status_numbers(const std::string& status_file, std::string_view field, bool sorted = false) {
    std::istringstream in(read_file(status_file));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(std::string(field) + ":", 0) != 0) continue;
        std::istringstream values(line.substr(field.size() + 1));
        std::vector<long> numbers;
        for (long n = 0; values >> n;) numbers.push_back(n);
        if (sorted) std::sort(numbers.begin(), numbers.end());
        return fmt::format("{}", fmt::join(numbers, " "));
    }
    FAIL("no " << field << " in " << status_file);
    return {};
}

// The groups a process started as pw gets from initgroups(), as "N N ...".
std::string groups_of(const passwd& pw) {
    std::vector<gid_t> groups(64);
    int n = static_cast<int>(groups.size());
    REQUIRE(getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) >= 0);
    std::set<gid_t> unique(groups.begin(), groups.begin() + n);
    return fmt::format("{}", fmt::join(unique, " "));
}

// Every thread of `pid` runs with pw's uid and gid (real, effective, saved
// and file system) and pw's groups only (none of root's).
void check_identity(pid_t pid, const passwd& pw) {
    const std::string uids = fmt::format("{0} {0} {0} {0}", pw.pw_uid), gids = fmt::format("{0} {0} {0} {0}", pw.pw_gid);
    const std::string groups = groups_of(pw);
    REQUIRE(groups.find(std::to_string(pw.pw_gid)) != std::string::npos);
    int threads = 0;
    for (const auto& task : fs::directory_iterator(fmt::format("/proc/{}/task", pid))) {
        std::string status = task.path().string() + "/status";
        CAPTURE(status);
        CHECK(status_numbers(status, "Uid") == uids);
        CHECK(status_numbers(status, "Gid") == gids);
        CHECK(status_numbers(status, "Groups", true) == groups);
        ++threads;
    }
    CHECK(threads > 0);
}

// The access modes (O_RDONLY, O_WRONLY, O_RDWR) of the descriptors `pid`
// holds on `path`.
std::vector<int> access_modes(pid_t pid, const std::string& path) {
    const fs::path target = fs::canonical(path);
    std::vector<int> modes;
    for (const auto& fd : fs::directory_iterator(fmt::format("/proc/{}/fd", pid))) {
        std::error_code ec;
        if (fs::read_symlink(fd.path(), ec) != target) continue;
        auto info = read_file(fmt::format("/proc/{}/fdinfo/{}", pid, fd.path().filename().string()));
        auto at = info.find("flags:");
        REQUIRE(at != std::string::npos);
        modes.push_back(static_cast<int>(std::stol(info.substr(at + 6), nullptr, 8) & O_ACCMODE));
    }
    return modes;
}

// errno of open(path, O_WRONLY) in a child running as pw (0: it opened).
int open_for_writing_as(const passwd& pw, const std::string& path) {
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (setgroups(0, nullptr) != 0 || setgid(pw.pw_gid) != 0 || setuid(pw.pw_uid) != 0) _exit(255);
        int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
        _exit(fd >= 0 ? 0 : errno);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) != 255);
    return WEXITSTATUS(status);
}

// ------------------------------------------------------------ SQL from strings
//
// The rule: SQL text reaches SQLite only as literals. A call to
// sqlite3_prepare*, sqlite3_exec, or to a function of src/ that has a
// parameter `const char* sql`, `std::string_view sql` or `std::string sql`
// (the wrappers of unit/sqlite.hpp and every helper built on them, found by
// reading their declarations) passes in that place
//   - string literals (adjacent ones concatenate), or a choice between
//     literals (`write ? "BEGIN IMMEDIATE" : "BEGIN"`);
//   - a constant defined as literals (`constexpr const char* X = "...";`);
//   - `sql`, `x.sql` or `sql.data()`: an SQL parameter passed on (its
//     callers are checked in turn) or a field of a table of statements;
// and nothing named `sql`, and no such constant, is ever given anything but
// literals. The migration text embedded at build time (policy/migrations,
// tools/embed_migrations.py) is the one exception, listed below.

struct Token {
    enum class Kind { Word, Literal, Other } kind;
    std::string text;
    int line;
};

struct SourceFile {
    std::string name;
    std::string text;
};

struct Exception {
    const char* file;  // path ending
    const char* argument;  // the argument's tokens, joined without spaces
};
constexpr Exception sql_exceptions[] = {
    {"src/unit/schema_migration.cpp", "std::string(m.sql).c_str()"},  // apply_migration: embedded migration text
};

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Length of the quoted literal starting at s[i] (its opening quote).
std::size_t quoted_length(std::string_view s, std::size_t i) {
    std::size_t j = i + 1;
    while (j < s.size() && s[j] != s[i]) j += s[j] == '\\' ? 2 : 1;
    return std::min(j + 1, s.size()) - i;
}

// Length of the raw string literal whose quote is at s[i] (R"delim(...)delim").
std::size_t raw_length(std::string_view s, std::size_t i) {
    auto open = s.find('(', i);
    if (open == std::string_view::npos) return s.size() - i;
    std::string close = ")" + std::string(s.substr(i + 1, open - i - 1)) + "\"";
    auto end = s.find(close, open);
    return (end == std::string_view::npos ? s.size() : end + close.size()) - i;
}

std::size_t number_length(std::string_view s, std::size_t i) {
    std::size_t j = i;
    while (j < s.size()) {
        char c = s[j];
        bool exponent_sign = (c == '+' || c == '-') && j > i && std::string_view("eEpP").find(s[j - 1]) != std::string_view::npos;
        bool separator = c == '\'' && j + 1 < s.size() && is_word_char(s[j + 1]);
        if (!is_word_char(c) && c != '.' && !exponent_sign && !separator) break;
        ++j;
    }
    return j - i;
}

std::size_t other_length(std::string_view s, std::size_t i) {
    for (std::string_view two : {"::", "->", "==", "!=", "<=", ">=", "+=", "-=", "&&", "||"})
        if (s.substr(i, 2) == two) return 2;
    return 1;
}

// Tokens of C++ source: words, string literals (with their prefix and
// suffix), and everything else; comments and preprocessor lines dropped.
std::vector<Token> tokenize(std::string_view s) {
    std::vector<Token> tokens;
    int line = 1;
    bool line_start = true;
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        const int at_line = line;
        std::size_t n = 1;
        std::optional<Token::Kind> kind;
        if (std::isspace(static_cast<unsigned char>(c))) {
        } else if (c == '#' && line_start) {
            for (n = 0; i + n < s.size() && (s[i + n] != '\n' || s[i + n - 1] == '\\');) ++n;
        } else if (s.substr(i, 2) == "//") {
            n = s.find('\n', i) == std::string_view::npos ? s.size() - i : s.find('\n', i) - i;
        } else if (s.substr(i, 2) == "/*") {
            n = s.find("*/", i + 2) == std::string_view::npos ? s.size() - i : s.find("*/", i + 2) + 2 - i;
        } else if (c == '"' || c == '\'') {
            n = quoted_length(s, i);
            kind = c == '"' ? Token::Kind::Literal : Token::Kind::Other;
        } else if (std::isdigit(static_cast<unsigned char>(c))) {
            n = number_length(s, i);
            kind = Token::Kind::Other;
        } else if (is_word_char(c)) {
            while (i + n < s.size() && is_word_char(s[i + n])) ++n;
            kind = Token::Kind::Word;
            std::string_view word = s.substr(i, n);
            if (i + n < s.size() && s[i + n] == '"') {
                if (word == "R" || word == "u8R" || word == "uR" || word == "UR" || word == "LR") {
                    n += raw_length(s, i + n);
                    kind = Token::Kind::Literal;
                } else if (word == "u8" || word == "u" || word == "U" || word == "L") {
                    n += quoted_length(s, i + n);
                    kind = Token::Kind::Literal;
                }
            }
        } else {
            n = other_length(s, i);
            kind = Token::Kind::Other;
        }
        if (kind == Token::Kind::Literal)  // a user-defined suffix ("..."sv) belongs to the literal
            while (i + n < s.size() && is_word_char(s[i + n])) ++n;
        if (kind) tokens.push_back({*kind, std::string(s.substr(i, n)), at_line});
        line += static_cast<int>(std::count(s.begin() + static_cast<std::ptrdiff_t>(i),
                                             s.begin() + static_cast<std::ptrdiff_t>(i + n), '\n'));
        if (c == '\n') line_start = true;
        else if (!std::isspace(static_cast<unsigned char>(c))) line_start = false;
        i += n;
    }
    return tokens;
}

using Range = std::pair<std::size_t, std::size_t>;  // [first, last) token indexes

// The arguments of the parenthesised list opening at tokens[open], split
// at top-level commas.
std::vector<Range> arguments(const std::vector<Token>& t, std::size_t open) {
    std::vector<Range> args;
    int depth = 0;
    std::size_t first = open + 1;
    for (std::size_t i = open; i < t.size(); ++i) {
        const std::string& x = t[i].text;
        if (t[i].kind != Token::Kind::Other) continue;
        if (x == "(" || x == "[" || x == "{") {
            ++depth;
        } else if (x == ")" || x == "]" || x == "}") {
            if (--depth > 0) continue;
            if (i > first || !args.empty()) args.emplace_back(first, i);
            return args;
        } else if (x == "," && depth == 1) {
            args.emplace_back(first, i);
            first = i + 1;
        }
    }
    return args;
}

std::string joined(const std::vector<Token>& t, Range r) {
    std::string text;
    for (std::size_t i = r.first; i < r.second; ++i) {
        bool both_words = i > r.first && t[i].kind != Token::Kind::Other && t[i - 1].kind != Token::Kind::Other;
        text += (both_words ? " " : "") + t[i].text;
    }
    return text;
}

bool is(const std::vector<Token>& t, std::size_t i, std::string_view text) {
    return i < t.size() && t[i].text == text;
}

bool literals_only(const std::vector<Token>& t, Range r) {
    if (r.first == r.second) return false;
    for (std::size_t i = r.first; i < r.second; ++i)
        if (t[i].kind != Token::Kind::Literal) return false;
    return true;
}

// Literals, a literal choice (COND ? "A" : "B"), or nullptr.
bool literal_value(const std::vector<Token>& t, Range r) {
    if (r.second == r.first + 1 && t[r.first].text == "nullptr") return true;
    for (std::size_t i = r.first; i < r.second; ++i) {
        if (!is(t, i, "?")) continue;
        for (std::size_t j = i + 1; j < r.second; ++j)
            if (is(t, j, ":")) return literals_only(t, {i + 1, j}) && literal_value(t, {j + 1, r.second});
        return false;
    }
    return literals_only(t, r);
}

// A parameter declaration whose name is `sql` (a type precedes it).
bool declares_sql(const std::vector<Token>& t, Range r) {
    if (r.second - r.first < 2 || t[r.second - 1].text != "sql") return false;
    const Token& before = t[r.second - 2];
    return before.kind == Token::Kind::Word || before.text == "*" || before.text == "&";
}

struct Sink {
    std::string name;
    std::size_t index;  // of the SQL argument
    std::size_t min_arity, max_arity;
};

std::vector<Sink> builtin_sinks() {
    std::vector<Sink> sinks;
    for (const char* name : {"sqlite3_prepare", "sqlite3_prepare_v2", "sqlite3_prepare_v3", "sqlite3_prepare16",
                             "sqlite3_prepare16_v2", "sqlite3_prepare16_v3", "sqlite3_exec"})
        sinks.push_back({name, 1, 0, 99});
    return sinks;
}

bool opens_call(const std::vector<Token>& t, std::size_t i) {
    return t[i].kind == Token::Kind::Word && is(t, i + 1, "(");
}

// The functions of the sources with an `sql` parameter.
std::vector<Sink> find_sinks(const std::vector<std::vector<Token>>& files) {
    std::vector<Sink> sinks = builtin_sinks();
    for (const auto& t : files) {
        for (std::size_t i = 0; i + 1 < t.size(); ++i) {
            if (!opens_call(t, i)) continue;
            auto params = arguments(t, i + 1);
            std::size_t required = params.size();
            for (std::size_t k = 0; k < params.size(); ++k) {
                for (std::size_t j = params[k].first; j < params[k].second; ++j)
                    if (is(t, j, "=")) required = std::min(required, k);
            }
            for (std::size_t k = 0; k < params.size(); ++k)
                if (declares_sql(t, params[k])) sinks.push_back({t[i].text, k, required, params.size()});
        }
    }
    return sinks;
}

// Names defined as literals: `const`/`constexpr` ... NAME [ [] ] = literals ;
std::set<std::string> find_literal_constants(const std::vector<std::vector<Token>>& files) {
    std::set<std::string> names;
    for (const auto& t : files) {
        for (std::size_t i = 0; i < t.size(); ++i) {
            if (t[i].kind != Token::Kind::Word) continue;
            std::size_t j = is(t, i + 1, "[") && is(t, i + 2, "]") ? i + 3 : i + 1;
            if (!is(t, j, "=")) continue;
            std::size_t k = j + 1;
            while (k < t.size() && t[k].kind == Token::Kind::Literal) ++k;
            if (k == j + 1 || !is(t, k, ";")) continue;
            bool constant = false;
            for (std::size_t b = i; b-- > 0 && !is(t, b, ";") && !is(t, b, "{") && !is(t, b, "}");)
                constant = constant || t[b].text == "const" || t[b].text == "constexpr";
            if (constant) names.insert(t[i].text);
        }
    }
    return names;
}

// `sql`, `x.sql`, `x->sql` or `sql.data()`: SQL passed on, checked where it
// comes from.
bool forwarded(const std::vector<Token>& t, Range r) {
    std::vector<std::string> x;
    for (std::size_t i = r.first; i < r.second; ++i) x.push_back(t[i].text);
    using V = std::vector<std::string>;
    return x == V{"sql"} || (x.size() == 3 && x[2] == "sql" && (x[1] == "." || x[1] == "->")) ||
           x == V{"sql", ".", "data", "(", ")"};
}

bool excepted(const std::string& file, const std::string& argument, std::set<std::string>& used) {
    for (const auto& e : sql_exceptions) {
        std::string_view f(file);
        if (f.size() >= std::strlen(e.file) && f.substr(f.size() - std::strlen(e.file)) == e.file &&
            argument == e.argument) {
            used.insert(e.argument);
            return true;
        }
    }
    return false;
}

bool std_qualified(const std::vector<Token>& t, std::size_t i) {
    return i >= 2 && t[i - 1].text == "::" && (t[i - 2].text == "std" || t[i - 2].text == "ranges");
}

struct SqlCheck {
    std::vector<std::string> violations;  // "FILE:LINE: what"
    std::set<std::string> sinks;          // names found
    std::set<std::string> exceptions_used;
};

// Every call of a sink: its SQL argument must be literal, a literal
// constant or SQL passed on.
void check_calls(const SourceFile& file, const std::vector<Token>& t, const std::vector<Sink>& sinks,
                 const std::set<std::string>& constants, SqlCheck& out) {
    for (std::size_t i = 0; i + 1 < t.size(); ++i) {
        if (!opens_call(t, i) || std_qualified(t, i)) continue;
        auto args = arguments(t, i + 1);
        if (std::any_of(args.begin(), args.end(), [&](Range r) { return declares_sql(t, r); })) continue;
        for (const auto& sink : sinks) {
            if (sink.name != t[i].text || args.size() < sink.min_arity || args.size() > sink.max_arity ||
                sink.index >= args.size())
                continue;
            Range a = args[sink.index];
            std::string text = joined(t, a);
            bool constant = a.second == a.first + 1 && constants.count(t[a.first].text) > 0;
            if (literal_value(t, a) || constant || forwarded(t, a) || excepted(file.name, text, out.exceptions_used))
                break;
            out.violations.push_back(fmt::format("{}:{}: {}(): SQL argument {} is not a literal", file.name,
                                                 t[i].line, t[i].text, text));
            break;
        }
    }
}

// Whatever is named `sql` or like a literal constant only ever gets literals.
void check_assignments(const SourceFile& file, const std::vector<Token>& t, const std::set<std::string>& guarded,
                       SqlCheck& out) {
    for (std::size_t i = 0; i + 1 < t.size(); ++i) {
        if (t[i].kind != Token::Kind::Word || !guarded.count(t[i].text)) continue;
        std::size_t j = is(t, i + 1, "[") && is(t, i + 2, "]") ? i + 3 : i + 1;
        const std::string& op = j < t.size() ? t[j].text : std::string();
        bool declared = i > 0 && (t[i - 1].kind == Token::Kind::Word || t[i - 1].text == "*" ||
                                  t[i - 1].text == "&" || t[i - 1].text == ">") &&
                        t[i - 1].text != "return";
        Range value;
        if (op == "=" || op == "+=") {
            std::size_t k = j + 1;
            for (int depth = 0; k < t.size(); ++k) {
                const std::string& x = t[k].text;
                if (depth == 0 && (x == ";" || x == "," || x == ")" || x == "}")) break;
                if (x == "(" || x == "[" || x == "{") ++depth;
                if (x == ")" || x == "]" || x == "}") --depth;
            }
            value = {j + 1, k};
        } else if ((op == "{" || (op == "(" && declared))) {
            auto args = arguments(t, j);
            value = args.size() == 1 ? args[0] : Range{j + 1, j + 1};
        } else {
            continue;
        }
        if (op != "+=" && literal_value(t, value)) continue;
        out.violations.push_back(fmt::format("{}:{}: {} is given {}, not a literal", file.name, t[i].line, t[i].text,
                                             joined(t, value)));
    }
}

SqlCheck check_sql(const std::vector<SourceFile>& files) {
    std::vector<std::vector<Token>> tokens;
    for (const auto& f : files) tokens.push_back(tokenize(f.text));
    SqlCheck out;
    auto sinks = find_sinks(tokens);
    for (const auto& s : sinks) out.sinks.insert(s.name);
    auto constants = find_literal_constants(tokens);
    auto guarded = constants;
    guarded.insert("sql");
    for (std::size_t f = 0; f < files.size(); ++f) {
        check_calls(files[f], tokens[f], sinks, constants, out);
        check_assignments(files[f], tokens[f], guarded, out);
    }
    return out;
}

std::vector<SourceFile> project_sources() {
    const fs::path root = env_or_fail("UNIT_SOURCE_ROOT");
    std::vector<SourceFile> files;
    for (const auto& entry : fs::recursive_directory_iterator(root / "src")) {
        auto ext = entry.path().extension();
        if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) continue;
        files.push_back({fs::relative(entry.path(), root).string(), read_file(entry.path().string())});
    }
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return files;
}

std::string list(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += "\n  " + l;
    return text;
}

// Lines of a forged source, numbered from 1, that the check must flag
// (marked "// flagged") and must let through (the others).
constexpr const char* forged_source = R"(constexpr const char* select_all = "SELECT * FROM t";
Result<void> f(sqlite3* db, const std::string& x, bool write) {
    auto a = prepare(db, "SELECT a"
                         " FROM t WHERE a = ?1");
    auto b = prepare(db, select_all);
    auto c = exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN");
    auto d = for_each_row(db, "SELECT 1", [](Query&) {});
    auto e = prepare(db, fmt::format("SELECT * FROM t WHERE a = '{}'", x));  // flagged
    auto g = exec(db, ("DELETE FROM t WHERE a = '" + x + "'").c_str());  // flagged
    std::string sql = "SELECT * FROM t WHERE a = '" + x + "'";  // flagged
    auto h = for_each_row(db, sql, [](Query&) {});
    sqlite3_exec(db, x.c_str(), nullptr, nullptr, nullptr);  // flagged
    auto i = exec(db, write ? "BEGIN" : x.c_str());  // flagged
    return {};
}
)";

}  // namespace

// ------------------------------------------------------------ sockets

TEST_CASE("the daemons' unix sockets get socket_group and socket_mode, 0660 by default") {
    const bool root = geteuid() == 0;
    gid_t gid = getegid();
    std::vector<std::string> extra;
    if (root) {
        const group* mail = getgrnam("mail");  // in every Debian system (base-passwd)
        REQUIRE(mail != nullptr);
        gid = mail->gr_gid;
        extra.insert(extra.end(), {"--socket-group", "mail"});
    } else {
        MESSAGE("skipped: socket_group (needs root to give a socket to another group); socket_mode is checked");
    }
    for (Program p : {Program::Policy, Program::Milter}) {
        const std::string program = name_of(p);
        CAPTURE(program);
        World w;
        std::optional<Daemon> d;
        start(d, p, w.db, w.dir.root(), extra);
        for (const auto& socket : sockets_of(p, w.dir.root())) {
            CAPTURE(socket);
            struct stat st {};
            REQUIRE(stat(socket.c_str(), &st) == 0);
            CHECK(S_ISSOCK(st.st_mode));
            CHECK((st.st_mode & 07777) == 0660);
            CHECK(st.st_gid == gid);
            CHECK(st.st_uid == geteuid());
        }
        exercise(p, w.dir.root());
        CHECK(d->stop() == 0);
    }
}

TEST_CASE("an unknown socket_group stops unitmilter at start-up, before it leaves a socket behind") {
    World w;
    auto r = run_command({env_or_fail("UNITMILTER"), "--db", w.db, "--listen", "unix:" + w.dir.path("milter"),
                          "--socket-group", "no-such-group-here", "--log", "stderr"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("socket_group: no such group \"no-such-group-here\"") != std::string::npos);
    struct stat st {};
    CHECK(lstat(w.dir.path("milter").c_str(), &st) != 0);
}

// ------------------------------------------------------------ privileges

TEST_CASE("with user = nobody a daemon runs as nobody, without root's groups, and cannot write the database") {
    if (geteuid() != 0) {
        MESSAGE("skipped: needs root (the daemons can only change users when started as root)");
        return;
    }
    const passwd* found = getpwnam("nobody");
    REQUIRE(found != nullptr);
    const passwd nobody = *found;
    REQUIRE(nobody.pw_uid != 0);
    for (Program p : {Program::Policy, Program::Milter}) {
        const std::string program = name_of(p);
        CAPTURE(program);
        World w;
        // The replica as a host holds it: owned by root, 0644, in a
        // directory the daemon's user may read.
        REQUIRE(chmod(w.dir.root().c_str(), 0755) == 0);
        REQUIRE(chmod(w.db.c_str(), 0644) == 0);
        struct stat st {};
        REQUIRE(stat(w.db.c_str(), &st) == 0);
        REQUIRE(st.st_uid == 0);

        std::optional<Daemon> d;
        start(d, p, w.db, w.dir.root(), {"--user", "nobody", "--socket-mode", "0666"});
        exercise(p, w.dir.root());  // the database is open, read as nobody
        check_identity(d->pid(), nobody);
        auto modes = access_modes(d->pid(), w.db);
        CHECK_MESSAGE(!modes.empty(), "the daemon holds no descriptor on " << w.db);
        for (int mode : modes) CHECK(mode == O_RDONLY);
        CHECK(open_for_writing_as(nobody, w.db) == EACCES);
        CHECK(d->stop() == 0);
    }
}

// ------------------------------------------------------------ SQL

TEST_CASE("the SQL check flags SQL built from strings and lets literals through") {
    const fs::path root = env_or_fail("UNIT_SOURCE_ROOT");
    std::vector<SourceFile> files{{"src/unit/sqlite.hpp", read_file((root / "src/unit/sqlite.hpp").string())},
                                  {"forged.cpp", forged_source}};
    auto check = check_sql(files);
    for (const char* wrapper : {"prepare", "exec", "for_each_row"}) CHECK(check.sinks.count(wrapper) == 1);

    std::set<int> expected;
    std::istringstream in(forged_source);
    int number = 0;
    for (std::string line; std::getline(in, line);)
        if (++number, line.find("// flagged") != std::string::npos) expected.insert(number);
    std::set<int> flagged;
    for (const auto& v : check.violations) {
        REQUIRE(v.rfind("forged.cpp:", 0) == 0);
        flagged.insert(std::stoi(v.substr(std::strlen("forged.cpp:"))));
    }
    INFO("violations:" << list(check.violations));
    CHECK(expected.size() == 5);
    CHECK(flagged == expected);
}

TEST_CASE("no SQL in src/ is built from strings") {
    auto check = check_sql(project_sources());
    INFO("sinks found:" << list({check.sinks.begin(), check.sinks.end()}));
    for (const char* wrapper : {"prepare", "exec", "for_each_row", "sqlite3_exec"}) CHECK(check.sinks.count(wrapper) == 1);
    CHECK_MESSAGE(check.violations.empty(), "SQL not made of literals:" << list(check.violations));
    for (const auto& e : sql_exceptions)
        CHECK_MESSAGE(check.exceptions_used.count(e.argument) == 1,
                      "the exception " << e.file << ": " << e.argument << " is not used any more: remove it");
}
