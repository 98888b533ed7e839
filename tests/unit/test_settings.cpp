// unitpolicy's configuration: the key table, the file, the command line.
#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>

#include "common/config_file.hpp"
#include "policyd/settings.hpp"
#include "test_support.hpp"

using namespace unit;
using namespace unit::policyd;
using namespace unit::test;

namespace {

Settings load(std::vector<std::string> args) { return load_command_line(load_settings, "unitpolicy", std::move(args)); }

std::string load_error(std::vector<std::string> args) {
    try {
        load(std::move(args));
    } catch (const common::ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("defaults and the command line") {
    auto s = load({"--policy-listen", "unix:/run/p", "--socketmap-listen", "inet:127.0.0.1:9000", "--socketmap-listen",
                   "unix:/run/m", "--recipient-delimiter", "+-", "--reject-max-age", "2h", "--threads", "3"});
    CHECK(s.mode == Mode::Serve);
    CHECK(s.db == "/var/lib/unitpolicy/units.db");
    CHECK(s.policy_listen == std::vector<std::string>{"unix:/run/p"});
    CHECK(s.socketmap_listen == std::vector<std::string>{"inet:127.0.0.1:9000", "unix:/run/m"});
    CHECK(s.resolver.address.recipient_delimiter == "+-");
    CHECK(s.resolver.reject_max_age == std::chrono::hours(2));
    CHECK(s.threads == 3);
    CHECK(s.idle_timeout == std::chrono::seconds(330));
    CHECK(s.answers.hold_transport == "unithold");
    CHECK(s.answers.texts.unknown == "550 5.1.1 User unknown");
}

TEST_CASE("the file gives values, the command line wins, listeners are replaced") {
    TempDir dir;
    write_file(dir.path("u.conf"),
               "# comment\n\ndb = /srv/units.db\npolicy_listen = unix:/a\npolicy_listen = unix:/b\n"
               "threads = 2\nunknown_reply = 550 5.1.1 No such user here\nhold_mode = defer\n");
    auto s = load({"--config", dir.path("u.conf"), "--threads", "5"});
    CHECK(s.db == "/srv/units.db");
    CHECK(s.policy_listen == std::vector<std::string>{"unix:/a", "unix:/b"});
    CHECK(s.threads == 5);
    CHECK(s.answers.texts.unknown == "550 5.1.1 No such user here");
    CHECK(s.answers.hold_mode == HoldMode::Defer);
    auto replaced = load({"--config", dir.path("u.conf"), "--policy-listen", "unix:/c"});
    CHECK(replaced.policy_listen == std::vector<std::string>{"unix:/c"});
}

TEST_CASE("bad values and unknown keys are one clear line naming the key") {
    TempDir dir;
    write_file(dir.path("bad.conf"), "policy_listen = unix:/a\ncolour = blue\n");
    CHECK(load_error({"--config", dir.path("bad.conf")}) == dir.path("bad.conf") + ":2: unknown key 'colour'");
    write_file(dir.path("bad2.conf"), "threads = many\n");
    CHECK(load_error({"--config", dir.path("bad2.conf"), "--stdio"}) ==
          dir.path("bad2.conf") + ":1: threads: bad number \"many\" (expected 0 to 256)");
    CHECK(load_error({"--stdio", "--reject-max-age", "soon"}) ==
          "--reject-max-age: bad duration \"soon\" (expected N[s|m|h|d|w])");
    CHECK(load_error({"--policy-listen", "tcp:1"}) == "--policy-listen: tcp:1: expected unix:/path or inet:host:port");
    CHECK(load_error({"--stdio", "--unknown-reply", "no code"}).find("is not \"CODE X.Y.Z text\"") !=
          std::string::npos);
    CHECK(load_error({"--stdio", "--tempfail-reply", "554 5.3.0 Broken"}) ==
          "--tempfail-reply: \"554 5.3.0 Broken\" must be a 4xx reply");
    CHECK(load_error({"--stdio", "--unconfirmed-reply", "550 5.1.1 Gone"}).find("must be a 4xx reply") !=
          std::string::npos);
    // Reply texts are checked here, once: the answers send them as they are.
    CHECK(load_error({"--stdio", "--disabled-reply", "550 5.2.1 a\nb"}) ==
          "--disabled-reply: control character in value");
    CHECK(load_error({"--stdio", "--suspended-reply", "450 4.2.1 \ttab"}) ==
          "--suspended-reply: control character in value");
    CHECK(load_error({"--stdio", "--tempfail-reply", "451 4.3.0 " + std::string(191, 't')}) ==
          "--tempfail-reply: reply longer than 200 bytes");
    CHECK(load_error({"--stdio", "--tempfail-reply", "451 4.3.0 " + std::string(190, 't')}) == "(no error)");
    CHECK(load_error({"--stdio", "--idle-timeout", "0"}) == "--idle-timeout: must be at least 1s");
    CHECK(load_error({"--stdio", "--unit", "u1"}) == "mx_relay: required with unit (where mail for other units goes)");
    CHECK(load_error({}) == "nothing to listen on: give policy_listen or socketmap_listen (or --stdio)");
    CHECK(load_error({"--stdio", "--dump"}) == "--stdio, --query and --dump exclude each other");
    CHECK(load_error({"--stdio", "--colour"}).find("colour") != std::string::npos);
    CHECK(load_error({"--config", dir.path("missing.conf"), "--stdio"}).find("cannot open") != std::string::npos);
}

TEST_CASE("--help lists every key with its option name") {
    std::ostringstream help;
    print_help(help);
    Settings s;
    for (const auto& [key, value] : describe(s)) {
        if (key == "config") continue;
        std::string option = "--" + key;
        std::replace(option.begin(), option.end(), '_', '-');
        CHECK_MESSAGE(help.str().find(option) != std::string::npos, option);
    }
}

TEST_CASE("modes") {
    CHECK(load({"--stdio"}).mode == Mode::Stdio);
    auto q = load({"--query", "a@b.example"});
    CHECK(q.mode == Mode::Query);
    CHECK(q.query_address == "a@b.example");
    auto d = load({"--dump", "--json"});
    CHECK(d.mode == Mode::Dump);
    CHECK(d.json);
    CHECK(load({"--help"}).mode == Mode::Help);
}
