// The unitpolicy program itself: real sockets, real signals, its modes.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "policyd/stats.hpp"
#include "socket.hpp"
#include "test_support.hpp"
#include "unit/primary.hpp"

using namespace unit;
using namespace unit::test;

namespace {

std::string unitpolicy() { return env_or_fail("UNITPOLICY"); }

// The daemon is not waited for at start: its sockets appear within 5 s.
int connect_to(const std::string& path) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        std::string why;
        if (int fd = toolkit::connect_unix(path, why); fd >= 0) return fd;
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "cannot connect: " << why);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// Sends `request` and reads until `expected_size` bytes came back, the
// peer closes, or 5 s pass.
std::string exchange(int fd, const std::string& request, std::size_t expected_size) {
    REQUIRE(write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
    std::string answer;
    char buffer[4096];
    while (answer.size() < expected_size) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        answer.append(buffer, static_cast<std::size_t>(n));
    }
    return answer;
}

void check_exchange(int fd, const std::string& request, const std::string& expected) {
    CHECK(exchange(fd, request, expected.size()) == expected);
}

std::string policy_request(std::string_view recipient) {
    return fmt::format("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient={}\n\n", recipient);
}

std::string netstring(std::string_view s) { return fmt::format("{}:{},", s.size(), s); }

// Whether the server closes `fd` within `ms` milliseconds (what it sends
// before is discarded).
bool closed_by_server(int fd, int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    char buffer[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    }
}

bool log_has(const std::string& log, const std::string& text) { return read_file(log).find(text) != std::string::npos; }

struct World {
    TempDir dir;
    std::string db = dir.path("units.db");
    Primary primary = make_sample_primary(dir.path("primary.db"));
    World() { REQUIRE(primary.publish(db).ok()); }
};

}  // namespace

TEST_CASE("the daemon answers both protocols on its sockets and stops cleanly on SIGTERM") {
    World w;
    std::string policy = w.dir.path("policy"), map = w.dir.path("map"), control = w.dir.path("control");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--socketmap-listen", "unix:" + map, "--control",
              control, "--log", "stderr", "--threads", "2", "--socket-mode", "0660", "--recipient-delimiter", "+"},
             w.dir.path("log"));
    int p = connect_to(policy);
    std::string two = policy_request("user+tag@example.com") + policy_request("nobody@example.com");
    check_exchange(p, two, "action=DUNNO\n\naction=550 5.1.1 User unknown\n\n");
    int m = connect_to(map);
    check_exchange(m, netstring("transportmx john.doe@example.com"), netstring("OK smtp:[u1.example.com]"));
    check_exchange(m, netstring("transportmx dave@example.net"),
                   netstring("OK unithold:unix:/dev/null/unitpolicy-held/u2"));
    struct stat st {};
    REQUIRE(stat(policy.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);

    auto dump = run_command({env_or_fail("UNITPOLICY"), "--db", w.db, "--dump", "--json", "--control", control});
    CHECK(dump.exit_code == 0);
    CHECK(dump.out.find("\"policy_requests\":2") != std::string::npos);
    CHECK(dump.out.find("\"policy_reject\":1") != std::string::npos);
    CHECK(dump.out.find("\"connections_open\":2") != std::string::npos);

    close(p);
    close(m);
    CHECK(d.stop() == 0);
    CHECK(stat(policy.c_str(), &st) != 0);  // sockets removed
    auto log = read_file(w.dir.path("log"));
    CHECK(log.find("NOQUEUE: reject: RCPT from unknown[unknown]: 550 5.1.1 User unknown; from=<> "
                   "to=<nobody@example.com>\n") != std::string::npos);
    CHECK(log.find("stopped") != std::string::npos);
}

TEST_CASE("log lines about a recipient use Postfix's field names: queue id first, client=, from=<>, to=<>") {
    World w;
    std::string policy = w.dir.path("policy"), map = w.dir.path("map");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--socketmap-listen", "unix:" + map, "--log", "stderr",
              "--debug", "yes"},
             w.dir.path("log"));
    int p = connect_to(policy);
    auto request = [](std::string_view recipient) {
        return fmt::format(
            "request=smtpd_access_policy\nprotocol_state=RCPT\nqueue_id=4BCC2\n"
            "client_name=mail.example.net\nclient_address=192.0.2.7\nsender=ann@example.net\n"
            "recipient={}\n\n",
            recipient);
    };
    check_exchange(p, request("nobody@example.com"), "action=550 5.1.1 User unknown\n\n");
    check_exchange(p, request("john.doe@example.com"), "action=DUNNO\n\n");
    close(p);
    int m = connect_to(map);
    check_exchange(m, netstring("transportmx john.doe@example.com"), netstring("OK smtp:[u1.example.com]"));
    close(m);
    CHECK(d.stop() == 0);
    const std::string log = read_file(w.dir.path("log"));
    INFO(log);
    CHECK(log_has(w.dir.path("log"),
                  "]: 4BCC2: reject: RCPT from mail.example.net[192.0.2.7]: 550 5.1.1 User unknown; "
                  "from=<ann@example.net> to=<nobody@example.com>\n"));
    CHECK(log_has(w.dir.path("log"), "]: 4BCC2: dunno: RCPT from mail.example.net[192.0.2.7]: "));
    CHECK(log_has(w.dir.path("log"), "; from=<ann@example.net> to=<john.doe@example.com>\n"));
    CHECK(log_has(w.dir.path("log"), "socketmap: transportmx to=<john.doe@example.com>: OK smtp:[u1.example.com]\n"));
}

TEST_CASE("a daemon started without a database tempfails, then serves the file renamed into place") {
    TempDir dir;
    std::string db = dir.path("units.db"), policy = dir.path("policy");
    Daemon d(unitpolicy(), {"--db", db, "--policy-listen", "unix:" + policy, "--log", "stderr"}, dir.path("log"));
    int p = connect_to(policy);
    check_exchange(p, policy_request("user@example.com"), "action=451 4.3.0 Directory temporarily unavailable\n\n");
    auto primary = make_sample_primary(dir.path("primary.db"));
    REQUIRE(primary.publish(db).ok());
    auto renamed = std::chrono::steady_clock::now();
    std::string answer;
    while (std::chrono::steady_clock::now() - renamed < std::chrono::seconds(2)) {
        answer = exchange(p, policy_request("nobody@example.com"), 20);
        if (answer.find("550") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(std::chrono::steady_clock::now() - renamed < std::chrono::seconds(1) + std::chrono::milliseconds(300));
    CHECK(answer.find("550 5.1.1 User unknown") != std::string::npos);
    close(p);
}

TEST_CASE("--stdio speaks the policy protocol on stdin and stdout and writes nothing to stderr") {
    World w;
    auto r = run_command({env_or_fail("UNITPOLICY"), "--db", w.db, "--stdio"},
                         policy_request("nobody@example.com") + policy_request("user@example.com"));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "action=550 5.1.1 User unknown\n\naction=DUNNO\n\n");
    CHECK(r.err.empty());
    auto broken = run_command({env_or_fail("UNITPOLICY"), "--db", w.db, "--stdio"}, "no equals sign\n\n");
    CHECK(broken.err.empty());
    CHECK(broken.out.empty());
}

TEST_CASE("--query shows the trace and every interface's answer") {
    World w;
    auto r = run_command({env_or_fail("UNITPOLICY"), "--db", w.db, "--query", "moving@example.com", "--unit", "u3",
                          "--mx-relay", "smtp:[mx.example.com]"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("outcome: mailbox") != std::string::npos);
    CHECK(r.out.find("socketmap transportmx   OK unithold:unix:/dev/null/unitpolicy-held/u1") != std::string::npos);
    CHECK(r.out.find("unit role (unit u3):") != std::string::npos);
    CHECK(r.out.find("socketmap transportunit OK unithold:unix:/dev/null/unitpolicy-held/u1") != std::string::npos);
    auto missing = run_command({env_or_fail("UNITPOLICY"), "--db", w.dir.path("none.db"), "--query", "a@example.com"});
    CHECK(missing.exit_code == 1);
    CHECK(missing.out.find("action=451 4.3.0") != std::string::npos);
}

TEST_CASE("--dump describes the database without a daemon") {
    World w;
    auto r = run_command({env_or_fail("UNITPOLICY"), "--db", w.db, "--dump"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("generation: " + std::to_string(w.primary.generation().value())) != std::string::npos);
    CHECK(r.out.find("mailboxes_moving: 1") != std::string::npos);
    CHECK(r.out.find("u2               lmtp:[10.0.0.2]:24") != std::string::npos);
}

TEST_CASE("bad usage exits 2 with one line") {
    auto r = run_command({env_or_fail("UNITPOLICY"), "--threads", "lots", "--query", "a@b.example"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == fmt::format("unitpolicy[{}]: fatal: --threads: bad number \"lots\" (expected 0 to 256)\n", r.pid));
    auto spawned = run_command({env_or_fail("UNITPOLICY"), "--threads", "lots", "--stdio"});
    CHECK(spawned.exit_code == 2);
    CHECK(spawned.err.empty());  // under spawn(8) stderr is the SMTP server's socket: syslog only
    auto v = run_command({env_or_fail("UNITPOLICY"), "--version"});
    CHECK(v.exit_code == 0);
    CHECK(v.out == "unitpolicy " UNIT_TEST_VERSION "\n");
}

TEST_CASE(
    "a client past max_connections takes the place of the one idle the longest, idle ones are closed, "
    "SIGHUP reloads the replies") {
    World w;
    std::string policy = w.dir.path("policy"), conf = w.dir.path("unitpolicy.conf");
    write_file(conf, "unknown_reply = 550 5.1.1 No such user\n");
    Daemon d(unitpolicy(),
             {"--config", conf, "--db", w.db, "--policy-listen", "unix:" + policy, "--log", "stderr",
              "--max-connections", "2", "--idle-timeout", "2s", "--threads", "1"},
             w.dir.path("log"));
    const std::string unknown = policy_request("nobody@example.com");
    int a = connect_to(policy);
    int b = connect_to(policy);
    check_exchange(a, unknown, "action=550 5.1.1 No such user\n\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    check_exchange(b, unknown, "action=550 5.1.1 No such user\n\n");
    int c = connect_to(policy);  // served at once: a, idle the longest, makes room
    check_exchange(c, unknown, "action=550 5.1.1 No such user\n\n");
    CHECK(closed_by_server(a, 2000));
    close(a);
    pollfd still_open{b, POLLIN, 0};
    CHECK(poll(&still_open, 1, 0) == 0);
    CHECK(log_has(w.dir.path("log"), "warning: max_connections (2) reached: closing the connections idle the longest"));

    write_file(conf, "unknown_reply = 550 5.1.1 Unknown here\n");
    REQUIRE(kill(d.pid(), SIGHUP) == 0);
    std::string answer;
    for (int i = 0; i < 40 && answer.find("Unknown here") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        answer = exchange(c, unknown, 30);
    }
    CHECK(answer == "action=550 5.1.1 Unknown here\n\n");

    // b has been idle since its answer: closed after idle_timeout.
    pollfd idle{b, POLLIN, 0};
    REQUIRE(poll(&idle, 1, 4000) == 1);
    char byte;
    CHECK(read(b, &byte, 1) == 0);
    close(b);
    close(c);
    CHECK(d.stop() == 0);
}

// Waits up to 5 s for `text` in the log.
bool log_shows(const std::string& log, const std::string& text) {
    for (int i = 0; i < 100; ++i) {
        if (log_has(log, text)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

TEST_CASE("SIGHUP says which changed settings keep their running values until a restart") {
    World w;
    std::string policy = w.dir.path("policy"), conf = w.dir.path("unitpolicy.conf"), log = w.dir.path("log");
    write_file(conf, fmt::format("db = {}\nthreads = 1\nunknown_reply = 550 5.1.1 No such user\n", w.db));
    Daemon d(unitpolicy(), {"--config", conf, "--policy-listen", "unix:" + policy, "--log", "stderr"}, log);
    d.wait_until_started();
    const std::string unknown = policy_request("nobody@example.com");
    int fd = connect_to(policy);
    check_exchange(fd, unknown, "action=550 5.1.1 No such user\n\n");

    // Only what a reload applies: the plain line.
    write_file(conf, fmt::format("db = {}\nthreads = 1\nunknown_reply = 550 5.1.1 Unknown here\n", w.db));
    REQUIRE(kill(d.pid(), SIGHUP) == 0);
    CHECK(log_shows(log, "]: reload: configuration reloaded\n"));
    check_exchange(fd, unknown, "action=550 5.1.1 Unknown here\n\n");

    // db and threads need a restart: named, the reply applied all the same,
    // and the daemon still serves the database it started with.
    write_file(conf, fmt::format("db = {}\nthreads = 2\nunknown_reply = 550 5.1.1 Gone\n", w.dir.path("other.db")));
    REQUIRE(kill(d.pid(), SIGHUP) == 0);
    CHECK(log_shows(log,
                    "]: warning: reload: configuration reloaded but for db, threads: they keep their running "
                    "values until a restart\n"));
    check_exchange(fd, unknown, "action=550 5.1.1 Gone\n\n");
    check_exchange(fd, policy_request("user@example.com"), "action=DUNNO\n\n");  // other.db does not exist

    // Said again at the next reload: the values are still not applied.
    write_file(conf,
               fmt::format("db = {}\nthreads = 2\nunknown_reply = 550 5.1.1 Gone again\n", w.dir.path("other.db")));
    REQUIRE(kill(d.pid(), SIGHUP) == 0);
    auto said = [&log] {
        const std::string text = read_file(log), line = "reloaded but for db, threads";
        std::size_t count = 0;
        for (auto at = text.find(line); at != std::string::npos; at = text.find(line, at + 1)) ++count;
        return count;
    };
    for (int i = 0; i < 100 && said() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(said() == 2);
    check_exchange(fd, unknown, "action=550 5.1.1 Gone again\n\n");
    close(fd);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "past max_connections, a connection never used makes room first, then the one idle the longest, "
    "never one in the middle of a request") {
    World w;
    std::string policy = w.dir.path("policy");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--log", "stderr", "--max-connections", "3",
              "--threads", "1"},
             w.dir.path("log"));
    const std::string unknown = policy_request("nobody@example.com");
    const std::string answer = "action=550 5.1.1 User unknown\n\n";
    const auto settle = [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); };
    int asked = connect_to(policy);
    check_exchange(asked, unknown, answer);
    settle();
    int busy = connect_to(policy);
    REQUIRE(write(busy, unknown.data(), 10) == 10);  // a request begun, not finished
    settle();
    int silent = connect_to(policy);  // the newest, but it never asked
    settle();
    int next = connect_to(policy);
    check_exchange(next, unknown, answer);
    CHECK(closed_by_server(silent, 2000));
    pollfd still[2] = {{asked, POLLIN, 0}, {busy, POLLIN, 0}};
    CHECK(poll(still, 2, 200) == 0);
    // Now every connection has been used: the one idle the longest goes,
    // not the one in the middle of a request.
    settle();
    int last = connect_to(policy);
    check_exchange(last, unknown, answer);
    CHECK(closed_by_server(asked, 2000));
    pollfd busy_open{busy, POLLIN, 0};
    CHECK(poll(&busy_open, 1, 200) == 0);
    for (int fd : {asked, busy, silent, next, last}) close(fd);
    CHECK(d.stop() == 0);
    if (geteuid() == 0)  // the default mode, 0660, and no socket_group: root's group
        CHECK(log_has(w.dir.path("log"), "unix:" + policy + ": group root, mode 0660: only root can connect"));
}

namespace {

// A free TCP port on loopback (the kernel's choice, released at once).
std::uint16_t free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t size = sizeof a;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

// A TCP connection to 127.0.0.1:port from the loopback address `from`.
int connect_from(const char* from, std::uint16_t port) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in source{}, target{};
        source.sin_family = target.sin_family = AF_INET;
        REQUIRE(inet_pton(AF_INET, from, &source.sin_addr) == 1);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) == 0);
        target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        target.sin_port = htons(port);
        if (connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0) return fd;
        close(fd);
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "cannot connect to port " << port);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace

TEST_CASE(
    "an inet client past max_connections_per_peer makes room among its own connections; "
    "a listener beyond loopback is warned about") {
    World w;
    const std::uint16_t port = free_port(), wide = free_port();
    std::string control = w.dir.path("control");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", fmt::format("inet:127.0.0.1:{}", port), "--policy-listen",
              fmt::format("inet:0.0.0.0:{}", wide), "--control", control, "--log", "stderr",
              "--max-connections-per-peer", "2", "--threads", "1"},
             w.dir.path("log"));
    const std::string unknown = policy_request("nobody@example.com");
    const std::string answer = "action=550 5.1.1 User unknown\n\n";
    const auto settle = [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); };
    int other = connect_from("127.0.0.2", port);  // idle the longest of all, from another peer
    check_exchange(other, unknown, answer);
    settle();
    int first = connect_from("127.0.0.1", port);
    check_exchange(first, unknown, answer);
    settle();
    int second = connect_from("127.0.0.1", port);
    check_exchange(second, unknown, answer);
    settle();
    int third = connect_from("127.0.0.1", port);  // its peer's third: its own idle-longest makes room
    check_exchange(third, unknown, answer);
    CHECK(closed_by_server(first, 2000));
    pollfd still[2] = {{other, POLLIN, 0}, {second, POLLIN, 0}};
    CHECK(poll(still, 2, 200) == 0);
    // A peer at its limit that holds a connection it never used has its new
    // one refused, the unused ones kept.
    int unused = connect_from("127.0.0.2", port);
    settle();
    int refused = connect_from("127.0.0.2", port);
    CHECK(closed_by_server(refused, 2000));
    pollfd kept[2] = {{other, POLLIN, 0}, {unused, POLLIN, 0}};
    CHECK(poll(kept, 2, 200) == 0);
    auto dump = run_command({unitpolicy(), "--db", w.db, "--dump", "--json", "--control", control});
    CHECK(dump.out.find("\"connections_closed_peer\":2") != std::string::npos);
    CHECK(dump.out.find("\"connections_closed_full\":0") != std::string::npos);
    CHECK(log_has(w.dir.path("log"),
                  "warning: max_connections_per_peer (2) reached by 127.0.0.1: closing its new connections while it "
                  "holds unused ones, else its connections idle the longest"));
    CHECK(log_has(w.dir.path("log"),
                  fmt::format("warning: inet:0.0.0.0:{}: listening on 0.0.0.0, not loopback", wide)));
    CHECK(!log_has(w.dir.path("log"), fmt::format("inet:127.0.0.1:{}: listening", port)));
    for (int fd : {other, first, second, third, unused, refused}) close(fd);
    CHECK(d.stop() == 0);
}

TEST_CASE("unix sockets are 0660 by default, of socket_group") {
    if (geteuid() != 0) return;  // only root can give a file to a group it is not in
    World w;
    std::string policy = w.dir.path("policy");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--log", "stderr", "--socket-group", "postfix"},
             w.dir.path("log"));
    int fd = connect_to(policy);
    struct stat st {};
    REQUIRE(stat(policy.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    struct group* postfix = getgrnam("postfix");
    REQUIRE(postfix != nullptr);
    CHECK(st.st_gid == postfix->gr_gid);
    close(fd);
    CHECK(d.stop() == 0);
}

TEST_CASE("--user drops root after the sockets are bound") {
    if (geteuid() != 0) return;  // only root can change users
    World w;
    std::string policy = w.dir.path("policy");
    Daemon d(unitpolicy(), {"--db", w.db, "--policy-listen", "unix:" + policy, "--log", "stderr", "--user", "nobody"},
             w.dir.path("log"));
    close(connect_to(policy));  // bound as root, in a directory nobody cannot write
    // The drop follows the bind: wait for it, briefly.
    std::string uid_line;
    for (int i = 0; i < 100; ++i) {
        std::string status = read_file(fmt::format("/proc/{}/status", d.pid()));
        auto at = status.find("\nUid:");
        REQUIRE(at != std::string::npos);
        uid_line = status.substr(at + 1, status.find('\n', at + 1) - at - 1);
        if (uid_line.find("65534") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(uid_line == "Uid:\t65534\t65534\t65534\t65534");
    CHECK(d.stop() == 0);
}

namespace {

// The daemon's counters, as its control socket serves them: one JSON line,
// then the end of the connection. Nothing is written: the daemon may have
// closed its side already. Its socket may take a moment to appear.
std::string counters(const std::string& control) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        if (auto json = toolkit::read_control(control, std::chrono::seconds(5))) return *json;
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "no counters from " << control);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace

TEST_CASE("a request trickling in is closed after request_timeout, an idle connection is not") {
    World w;
    std::string policy = w.dir.path("policy"), control = w.dir.path("control");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--control", control, "--log", "stderr",
              "--request-timeout", "1s", "--threads", "1"},
             w.dir.path("log"));
    int idle = connect_to(policy);
    int slow = connect_to(policy);
    const std::string request = policy_request("user@example.com");
    // One byte every 100 ms: activity all along, but never a whole request.
    auto started = std::chrono::steady_clock::now();
    bool closed = false;
    for (std::size_t i = 0; i + 1 < request.size() && !closed; ++i) {
        if (send(slow, &request[i], 1, MSG_NOSIGNAL) != 1) break;
        closed = closed_by_server(slow, 100);
    }
    auto elapsed = std::chrono::steady_clock::now() - started;
    CHECK(closed);
    CHECK(elapsed >= std::chrono::seconds(1));
    CHECK(elapsed < std::chrono::seconds(3));
    close(slow);
    pollfd still_open{idle, POLLIN, 0};
    CHECK(poll(&still_open, 1, 0) == 0);
    check_exchange(idle, request, "action=DUNNO\n\n");
    close(idle);
    CHECK(counters(control).find("\"connections_closed_slow\":1,") != std::string::npos);
    CHECK(log_has(w.dir.path("log"), "warning: policy: request not complete after 1s: closing the connection"));
}

TEST_CASE("a client that does not read its answers is no longer read from, then closed after request_timeout") {
    World w;
    std::string map = w.dir.path("map"), control = w.dir.path("control");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--socketmap-listen", "unix:" + map, "--control", control, "--log", "stderr",
              "--request-timeout", "1s", "--threads", "1"},
             w.dir.path("log"));
    int m = connect_to(map);
    timeval five_seconds{5, 0};
    REQUIRE(setsockopt(m, SOL_SOCKET, SO_SNDTIMEO, &five_seconds, sizeof five_seconds) == 0);
    std::string block;
    while (block.size() < 64 * 1024) block += netstring("alias sales@example.com");
    // Pipelined lookups and never a read, until the daemon stops taking them.
    auto started = std::chrono::steady_clock::now();
    std::size_t taken = 0;
    int error = 0;
    for (;;) {
        ssize_t n = send(m, block.data(), block.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            error = errno;
            break;
        }
        taken += static_cast<std::size_t>(n);
    }
    auto elapsed = std::chrono::steady_clock::now() - started;
    CHECK_MESSAGE((error == EPIPE || error == ECONNRESET), "send: " << std::strerror(error));  // not our timeout
    CHECK(elapsed < std::chrono::seconds(4));
    // It stopped reading once 16 KiB of answers waited: what it took is the
    // requests of those and of the socket buffers, not a flood.
    MESSAGE("taken before the daemon stopped reading: " << taken << " bytes");
    CHECK(taken < std::size_t{1} << 20);
    close(m);
    CHECK(counters(control).find("\"connections_closed_slow\":1,") != std::string::npos);
    CHECK(log_has(w.dir.path("log"), "warning: socketmap: answers not read for 1s: closing the connection"));
}

TEST_CASE("max_line and max_request bound what a client may send") {
    World w;
    std::string policy = w.dir.path("policy"), map = w.dir.path("map");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--socketmap-listen", "unix:" + map, "--log", "stderr",
              "--max-line", "300", "--max-request", "1024", "--threads", "1"},
             w.dir.path("log"));
    int fits = connect_to(policy);
    CHECK(exchange(fits, policy_request(std::string(200, 'a') + "@example.com"), 8).rfind("action=", 0) == 0);
    close(fits);
    int too_long = connect_to(policy);
    REQUIRE(write(too_long, "recipient=", 10) == 10);
    CHECK(exchange(too_long, std::string(300, 'a') + "@example.com\n\n", 1).empty());  // closed, no answer
    close(too_long);
    int m = connect_to(map);
    check_exchange(m, netstring("transportmx john.doe@example.com"), netstring("OK smtp:[u1.example.com]"));
    CHECK(exchange(m, "1025:", 1).empty());
    close(m);
    CHECK(log_has(w.dir.path("log"), "warning: policy: line longer than 300 bytes: closing the connection"));
    CHECK(log_has(w.dir.path("log"), "warning: netstring: payload longer than 1024 bytes: closing the connection"));
}

TEST_CASE("the soft open file limit is raised to the hard one, and max_connections kept within it") {
    World w;
    std::string policy = w.dir.path("policy"), control = w.dir.path("control");
    // Hard limit 200: 64 descriptors kept for the daemon, 8 for its worker,
    // room for 128 connections.
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--control", control, "--log", "stderr", "--threads",
              "1", "--max-connections", "1000"},
             w.dir.path("log"), rlimit{100, 200});
    std::vector<int> clients;
    for (int i = 0; i < 140; ++i) clients.push_back(connect_to(policy));
    check_exchange(clients.back(), policy_request("user@example.com"), "action=DUNNO\n\n");
    std::string limits = read_file(fmt::format("/proc/{}/limits", d.pid()));
    CHECK(limits.find("Max open files            200                  200") != std::string::npos);
    std::string json = counters(control);
    CHECK(json.find("\"connections_open\":128,") != std::string::npos);
    CHECK(json.find("\"connections_closed_full\":12,") != std::string::npos);
    CHECK(closed_by_server(clients.front(), 2000));
    for (int fd : clients) close(fd);
    CHECK(log_has(w.dir.path("log"),
                  "warning: max_connections: the open file limit leaves room for 128 connections only"));
}

TEST_CASE("a replacement the daemon's user cannot read, or a FIFO, is refused once, loudly, never with a 5xx") {
    if (geteuid() != 0) return;  // only root can change users
    World w;
    REQUIRE(chmod(w.dir.root().c_str(), 0755) == 0);
    REQUIRE(chmod(w.db.c_str(), 0644) == 0);
    const auto first = w.primary.generation().value();
    std::string policy = w.dir.path("policy"), map = w.dir.path("map"), control = w.dir.path("control");
    std::string log = w.dir.path("log");
    // No held-mail watcher: a stop waits for a postqueue run under way, and
    // what is timed below is the stop beside a refused FIFO.
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--socketmap-listen", "unix:" + map, "--control",
              control, "--log", "stderr", "--user", "nobody", "--threads", "2", "--held-mail-interval", "0"},
             log);
    d.wait_until_started();
    int p = connect_to(policy);
    int m = connect_to(map);
    check_exchange(p, policy_request("new@example.com"), "action=550 5.1.1 User unknown\n\n");

    auto wait_for_counter = [&](const std::string& field) {
        std::string json;
        for (int i = 0; i < 100 && json.find(field) == std::string::npos; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            json = counters(control);
        }
        return json.find(field) != std::string::npos;
    };
    auto not_5xx = [&] {
        auto answer = exchange(p, policy_request("new@example.com"), 20);
        CHECK(answer.find("action=450 4.1.1") == 0);
        auto reply = exchange(m, netstring("recipient new@example.com"), 8);
        CHECK(reply.find("TEMP") != std::string::npos);
    };

    // Published under umask 077: mode 0600, root's.
    REQUIRE(w.primary.add_mailbox("new@example.com", "u1").ok());
    std::string next = w.dir.path("next.db");
    REQUIRE(w.primary.publish(next).ok());
    REQUIRE(chmod(next.c_str(), 0600) == 0);
    REQUIRE(std::rename(next.c_str(), w.db.c_str()) == 0);
    not_5xx();
    CHECK(wait_for_counter("\"replica_refusals_unreadable\":1,"));
    not_5xx();
    auto dump = run_command({env_or_fail("UNITPOLICY"), "--db", w.db, "--dump", "--control", control});
    CHECK(dump.out.find(fmt::format("daemon_generation: {}\n", first)) != std::string::npos);
    CHECK(dump.out.find("daemon_refused: " + w.db + ": unreadable: ") != std::string::npos);
    auto text = read_file(log);
    auto refused = text.find("warning: replica: refused " + w.db + ": unreadable: cannot be read by this process");
    CHECK(refused != std::string::npos);
    CHECK(text.find("warning: replica: refused", refused + 1) == std::string::npos);  // once, not per worker

    // A FIFO renamed in: refused without being opened.
    REQUIRE(mkfifo(next.c_str(), 0644) == 0);
    REQUIRE(std::rename(next.c_str(), w.db.c_str()) == 0);
    not_5xx();
    CHECK(wait_for_counter("\"replica_refusals_not_regular\":1,"));
    CHECK(counters(control).find("\"replica_refusals\":2,") != std::string::npos);
    CHECK(log_has(log, "warning: replica: refused " + w.db + ": not_regular: not a regular file"));

    // A good replica after them is taken.
    REQUIRE(w.primary.publish(next).ok());
    REQUIRE(chmod(next.c_str(), 0644) == 0);
    REQUIRE(std::rename(next.c_str(), w.db.c_str()) == 0);
    std::string answer;
    for (int i = 0; i < 100 && answer != "action=DUNNO\n\n"; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        answer = exchange(p, policy_request("new@example.com"), 14);
    }
    CHECK(answer == "action=DUNNO\n\n");
    close(p);
    close(m);
    auto stopping = std::chrono::steady_clock::now();
    CHECK(d.stop() == 0);
    CHECK(std::chrono::steady_clock::now() - stopping < std::chrono::seconds(2));
}

TEST_CASE("refusals are counted by reason on the control socket and in Prometheus, the total kept") {
    // Each worker's ReplicaWatch counts a refusal its Directory reports.
    unit::policyd::Stats stats;
    DirectoryStatus status;
    status.path = "units.db";
    common::ReplicaWatch watch(status);
    for (auto reason : {RefusalReason::Unreadable, RefusalReason::Timeout, RefusalReason::Timeout}) {
        status.refusals++;
        status.refused = RefusedFile{FileId{}, reason, "validation did not finish"};
        watch.observe(status, nullptr, stats.replica);
    }
    watch.observe(status, nullptr, stats.replica);  // nothing new: not counted again
    auto json = unit::policyd::stats_json(stats, unit::policyd::ReplicaView{true});
    CHECK(json.find("\"replica_refusals\":3,") != std::string::npos);
    CHECK(json.find("\"replica_refusals_timeout\":2,") != std::string::npos);
    CHECK(json.find("\"replica_validating\":1,") != std::string::npos);
    CHECK(json.find("\"replica_refused\":\"units.db: timeout: validation did not finish\"") != std::string::npos);
    auto prometheus = unit::policyd::stats_prometheus(stats);
    CHECK(prometheus.find("unitpolicy_replica_refusals_total{reason=\"unreadable\"} 1\n") != std::string::npos);
    CHECK(prometheus.find("unitpolicy_replica_refusals_total{reason=\"timeout\"} 2\n") != std::string::npos);
    CHECK(prometheus.find("unitpolicy_replica_refusals_total{reason=\"foreign\"} 0\n") != std::string::npos);
}

TEST_CASE("client values reach the log escaped and cut: a hostile request writes no line of its own") {
    World w;
    std::string policy = w.dir.path("policy"), map = w.dir.path("map");
    Daemon d(unitpolicy(),
             {"--db", w.db, "--policy-listen", "unix:" + policy, "--socketmap-listen", "unix:" + map, "--log", "stderr",
              "--debug", "yes"},
             w.dir.path("log"));
    const std::string forged = "unitpolicy[1]: warning: forged";
    const std::string queue_id = "Q1\r\x1b[2J" + std::string(8000, 'q');
    int p = connect_to(policy);
    std::string rejected = fmt::format(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nqueue_id={}\nclient_address=10.0.0.1\x1b]0;{}\x07\n"
        "recipient=nobody@example.com\n\n",
        queue_id, forged);
    check_exchange(p, rejected, "action=550 5.1.1 User unknown\n\n");
    std::string not_rcpt = fmt::format("request=smtpd_access_policy\nprotocol_state=DATA\r{}{}\n\n", forged,
                                       std::string(8000, 's'));
    check_exchange(p, not_rcpt, "action=DUNNO\n\n");
    close(p);
    int m = connect_to(map);
    check_exchange(m, netstring("transportmx\n" + forged + " john.doe@example.com"),
                   netstring("PERM unknown map name"));
    check_exchange(m, netstring("transportmx nobody\n" + forged + "@example.com"), netstring("NOTFOUND "));
    close(m);
    CHECK(d.stop() == 0);

    const std::string log = read_file(w.dir.path("log"));
    std::size_t lines = 0;
    for (std::size_t start = 0, end; (end = log.find('\n', start)) != std::string::npos; start = end + 1) {
        const std::string_view line(log.data() + start, end - start);
        INFO("log line: " << line);
        ++lines;
        CHECK(line.rfind("unitpolicy[", 0) == 0);
        CHECK(line.find("]: warning: forged") != 11);  // no line of the client's own
        CHECK(line.size() < 1200);                     // each value cut
        CHECK(std::none_of(line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
    }
    CHECK(lines >= 4);
    CHECK(log.find("Q1\\x0d\\x1b[2Jqqq") != std::string::npos);
    CHECK(log.find(": reject: RCPT from unknown[10.0.0.1\\x1b]0;unitpolicy[1]: warning: forged\\x07]: 550 5.1.1 User "
                   "unknown; from=<> to=<nobody@example.com>") != std::string::npos);
    CHECK(log.find("policy: DATA\\x0dunitpolicy[1]: warning: for... without a recipient check") != std::string::npos);
    CHECK(log.find("socketmap: transportmx\\x0aunitpolicy[1]: warning: forged") != std::string::npos);
}
