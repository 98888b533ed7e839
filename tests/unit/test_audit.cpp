// test_audit.cpp: unitctl's audit trail (src/ctl/audit.hpp), the binary
// meson built run on databases in a TempDir: the line after each write, none
// after a read or a failure, and the syslog datagram itself.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using unit::test::CommandResult;
using unit::test::env_or_fail;
using unit::test::run_command;
using unit::test::TempDir;
using unit::test::write_file;

using Args = std::vector<std::string>;

// unitctl --config CONF --db DB ARGS, CONF saying audit_log = stderr.
class AuditedCtl {
public:
    AuditedCtl() : db_(dir_.path("primary.db")), config_(dir_.path("unitctl.conf")) {
        write_file(config_, "audit_log = stderr\n");
    }
    CommandResult run(Args args, const std::string& input = {}) const {
        args.insert(args.begin(), {env_or_fail("UNITCTL"), "--config", config_, "--db", db_});
        return run_command(args, input);
    }
    const std::string& db() const { return db_; }
    std::string path(const std::string& name) const { return dir_.path(name); }

private:
    TempDir dir_;
    std::string db_, config_;
};

// The audit line of a run, without "unitctl[PID]: ".
std::string audit_line(const CommandResult& r) {
    static const std::regex prefix("^unitctl\\[[0-9]+\\]: ");
    return std::regex_replace(r.err, prefix, "");
}

}  // namespace

TEST_CASE("every write is audited with who, the command line and the generation; reads and failures are not") {
    AuditedCtl ctl;
    const std::string line = "unitctl --config " + ctl.path("unitctl.conf") + " --db " + ctl.db();
    const std::string who = unit::test::run_command({"/usr/bin/id", "-un"}).out;
    const std::string user = who.substr(0, who.size() - 1);

    auto r = ctl.run({"init"});
    REQUIRE(r.exit_code == 0);
    CHECK(audit_line(r) == "audit: user " + user + ": " + line + " init: generation none -> 0\n");

    r = ctl.run({"domain", "add", "my.com"});
    CHECK(audit_line(r) == "audit: user " + user + ": " + line + " domain add my.com: generation 0 -> 1\n");

    r = ctl.run({"domain", "list"});  // a read
    CHECK(r.out == "my.com\n");
    CHECK(r.err == "");

    r = ctl.run({"domain", "add", "my.com"});  // a failed write: nothing changed
    CHECK(r.exit_code == 1);
    CHECK(r.err == "unitctl: domain my.com: already served\n");

    r = ctl.run({"unit", "add", "unit1", "--nexthop", "[u1.my.com]"});
    REQUIRE(r.exit_code == 0);
    r = ctl.run({"mailbox", "add", "a@my.com", "--unit", "unit1"});
    CHECK(audit_line(r) ==
          "audit: user " + user + ": " + line + " mailbox add a@my.com --unit unit1: generation 2 -> 3\n");

    // import says what it changed, sudo(8) who ran it; a value with a line
    // break is escaped, so that one line stays one line.
    const auto csv = ctl.path("more.csv");
    write_file(csv, "kind,address,value,state\nmailbox,b@my.com,unit1,\nmailbox,c@my.com,unit1,suspended\n");
    r = run_command({"/usr/bin/env", "SUDO_USER=ad\nmin", env_or_fail("UNITCTL"), "--config", ctl.path("unitctl.conf"),
                     "--db", ctl.db(), "import", csv});
    CHECK(r.out == "imported 0 domains, 0 units, 2 mailboxes, 0 aliases\n");
    CHECK(audit_line(r) == "audit: user " + user + " (sudo: ad\\x0amin): " + line + " import " + csv +
                               ": imported 0 domains, 0 units, 2 mailboxes, 0 aliases: generation 3 -> 5\n");

    // A bulk move says what it changed, each mailbox with -v.
    r = ctl.run({"move", "begin", "a@my.com", "c@my.com", "--to", "unit2", "-v"});
    CHECK(r.exit_code == 1);  // no unit2 yet
    REQUIRE(ctl.run({"unit", "add", "unit2", "--nexthop", "[u2.my.com]"}).exit_code == 0);
    r = ctl.run({"move", "begin", "a@my.com", "c@my.com", "--to", "unit2", "-v"});
    const std::string pid = r.err.substr(8, r.err.find(']') - 8);  // "unitctl[PID]: "
    CHECK(audit_line(r) == "audit: user " + user + ": " + line +
                               " move begin a@my.com c@my.com --to unit2 -v: moves begun 2 (held 1, direct 1), "
                               "unchanged 0: generation 6 -> 8\n"
                               "unitctl[" +
                               pid + "]: audit: user " + user +
                               ": generation 8: a@my.com: unit1 -> unit2 held\n"
                               "unitctl[" +
                               pid + "]: audit: user " + user +
                               ": generation 8: c@my.com: unit1 -> unit2 direct, suspended\n");
    r = ctl.run({"move", "abort", "a@my.com"});
    REQUIRE(r.exit_code == 0);

    // publish changes no generation, but is audited with what it wrote.
    r = ctl.run({"publish", ctl.path("units.db")});
    REQUIRE(r.exit_code == 0);
    CHECK(std::regex_match(audit_line(r), std::regex("audit: user " + user +
                                                     ": .* publish .*units\\.db: published .*units\\.db "
                                                     "generation 9 at [0-9TZ:-]+: generation 9 -> 9\n")));
}

TEST_CASE("audit_log: syslog by default, facility mail; none; a bad value") {
    AuditedCtl ctl;
    const auto config = ctl.path("none.conf");
    write_file(config, "audit_log = none\n");
    auto r = run_command({env_or_fail("UNITCTL"), "--config", config, "--db", ctl.db(), "init"});
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");
    write_file(config, "audit_log = file\n");
    r = run_command({env_or_fail("UNITCTL"), "--config", config, "--db", ctl.db(), "domain", "list"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "unitctl: " + config + ":1: audit_log: bad audit log 'file' (expected syslog, stderr or none)\n");

    // The datagram syslog(3) sends to /dev/log: only where nothing listens
    // there yet (a test machine without a syslog daemon), as root.
    struct stat st {};
    if (geteuid() != 0 || lstat("/dev/log", &st) == 0) {
        MESSAGE("skipped: the syslog datagram (needs root and no /dev/log)");
        return;
    }
    const int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, "/dev/log");
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {  // another run took it meanwhile
        close(fd);
        MESSAGE("skipped: the syslog datagram (/dev/log taken by another process)");
        return;
    }
    // Other tests running beside this one (meson runs them in parallel) send
    // their own audit lines here, and a sender blocks once a few datagrams
    // wait unread: read them all, keeping the one that names this database,
    // while unitctl runs.
    timeval wait{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    std::string datagram;
    std::thread reader([&] {
        for (char buffer[4096]; datagram.find(ctl.db()) == std::string::npos;) {
            const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            datagram.assign(buffer, static_cast<std::size_t>(n));
        }
    });
    r = run_command({env_or_fail("UNITCTL"), "--db", ctl.db(), "domain", "add", "my.com"});
    reader.join();
    close(fd);
    unlink("/dev/log");
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");
    REQUIRE(datagram.find(ctl.db()) != std::string::npos);
    // <22>: facility mail (2), priority info (6).
    CHECK(std::regex_match(datagram, std::regex("<22>.* unitctl\\[[0-9]+\\]: audit: user [^:]+: unitctl --db .* "
                                                "domain add my\\.com: generation 0 -> 1")));
}
