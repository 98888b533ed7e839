// unitmilter's configuration: max_stripped_headers, the start-up
// warnings (wide trusted networks, an inet listener beyond loopback) and
// what a reload cannot apply (every
// key against the man page and the example: test_docs.cpp).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/config_file.hpp"
#include "milter/settings.hpp"
#include "test_support.hpp"

using namespace unit;
using namespace unit::milter;

namespace {

Settings load(std::vector<std::string> args) {
    if (std::find(args.begin(), args.end(), "--listen") == args.end())
        args.insert(args.begin(), {"--listen", "unix:/x"});
    args.insert(args.begin(), {"--config", "/dev/null"});
    return test::load_command_line(load_settings, "unitmilter", std::move(args));
}

std::string load_error(std::vector<std::string> args) {
    try {
        load(std::move(args));
    } catch (const common::ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("max_stripped_headers: 10 by default, 0 to 100") {
    CHECK(Settings{}.max_stripped_headers == 10);
    CHECK(load({}).max_stripped_headers == 10);
    CHECK(load({"--max-stripped-headers", "0"}).max_stripped_headers == 0);
    CHECK(load({"--max-stripped-headers", "100"}).max_stripped_headers == 100);
    CHECK(load_error({"--max-stripped-headers", "101"}).find("expected 0 to 100") != std::string::npos);
    CHECK(load_error({"--max-stripped-headers", "-1"}).find("max-stripped-headers") != std::string::npos);
}

TEST_CASE("a trusted network wider than private ranges is a warning, not an error") {
    CHECK(warnings(load({"--trusted-networks", "192.0.2.0/24 10.0.0.0/8 fc00::/7"})).empty());
    CHECK(warnings(load({})).empty());
    auto lines = warnings(load({"--trusted-networks", "10.0.0.0/8, 0.0.0.0/0, ::/0"}));
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] ==
          "trusted_networks: 0.0.0.0/0 is wider than any private network (IPv4 /8, IPv6 /7): every client in it may "
          "forge routing headers and hop counts");
    CHECK(lines[1].rfind("trusted_networks: ::/0 is wider", 0) == 0);
}

TEST_CASE("an inet listener beyond loopback is a warning") {
    for (const char* listen :
         {"unix:/x", "inet:8890@127.0.0.1", "inet:8890@127.1.2.3", "inet:8890@localhost", "inet6:8890@::1"})
        CHECK_MESSAGE(warnings(load({"--listen", listen})).empty(), listen);
    for (const char* listen : {"inet:8890", "inet:8890@0.0.0.0", "inet:8890@192.0.2.1", "inet:8890@mx.example",
                               "inet6:8890@::", "inet6:8890"}) {
        auto lines = warnings(load({"--listen", listen}));
        REQUIRE_MESSAGE(lines.size() == 1, listen);
        CHECK(lines[0] == fmt::format("listen: {} is not loopback: every host that reaches it can take the "
                                      "filter's threads and, with expand_aliases, read alias targets; keep it "
                                      "behind a packet filter",
                                      listen));
    }
}

TEST_CASE("a reload names the settings that keep their running values until a restart") {
    const Settings started = load({"--max-hops", "6"});
    CHECK(kept_on_reload(started, load({"--max-hops", "8", "--debug"})).message() == "reload: configuration reloaded");
    CHECK(kept_on_reload(started, load({"--listen", "unix:/y"})).message() ==
          "reload: configuration reloaded but for listen: it keeps its running value until a restart");
    const auto kept = kept_on_reload(started, load({"--socket-mode", "0600", "--metrics", "inet:127.0.0.1:9100",
                                                    "--user", "nobody", "--max-hops", "8"}));
    CHECK(kept.names() == std::vector<std::string>{"socket_mode", "metrics", "user"});
    CHECK(kept.message() ==
          "reload: configuration reloaded but for socket_mode, metrics, user: they keep their running values until "
          "a restart");
}
