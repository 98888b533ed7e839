// Security checks of the programs and of the sources: the daemons' unix
// sockets get the configured mode and group; with `user` set a daemon runs
// as that user (every id, every thread, none of root's groups) and cannot
// write the database; and only the SQLite wrapper, which takes literals
// alone, hands SQL text to SQLite. The checks that change users or groups
// need root: run as anyone else they are skipped, and say so.
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
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

#include "test_support.hpp"
#include "unit/primary.hpp"
#include "unit/sql_text.hpp"

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
    const std::string uids = fmt::format("{0} {0} {0} {0}", pw.pw_uid),
                      gids = fmt::format("{0} {0} {0} {0}", pw.pw_gid);
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

// SQL reaches SQLite only as literals, and the compiler sees to it: the
// helpers of unit/sqlite.hpp take an SqlText, which only a literal converts
// to (unit/sql_text.hpp: its constructor is consteval, so a runtime const
// char* does not compile either). What is left to check is that nothing
// goes around them.
static_assert(!std::is_convertible_v<std::string, detail::SqlText>);
static_assert(!std::is_convertible_v<std::string_view, detail::SqlText>);

TEST_CASE("only unit/sqlite.cpp hands SQL text to SQLite") {
    const fs::path root = env_or_fail("UNIT_SOURCE_ROOT");
    std::vector<std::string> callers;
    for (const auto& entry : fs::recursive_directory_iterator(root / "src")) {
        auto ext = entry.path().extension();
        if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) continue;
        const std::string text = read_file(entry.path().string());
        for (const char* entry_point : {"sqlite3_prepare", "sqlite3_exec"})
            if (text.find(entry_point) != std::string::npos)
                callers.push_back(fs::relative(entry.path(), root).string() + ": " + entry_point);
    }
    std::sort(callers.begin(), callers.end());
    INFO("found: " << fmt::format("{}", fmt::join(callers, "; ")));
    CHECK(callers ==
          std::vector<std::string>{"src/unit/sqlite.cpp: sqlite3_exec", "src/unit/sqlite.cpp: sqlite3_prepare"});
}
