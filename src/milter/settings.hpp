// settings.hpp: unitmilter's configuration: one table of keys (settings.cpp)
// drives the configuration file (`key = value`, --config), the command line
// (--key-name, the key with '-' for '_'), and --help. The command line wins
// over the file. unitmilter has a file of its own,
// /etc/unitpolicy/unitmilter.conf by default: its keys differ from
// unitpolicy's, and an unknown key is an error.
//
// load_settings() throws common::ConfigError with one line naming the key
// (and FILE:LINE for the file) for an unknown key, a bad value or an
// inconsistent combination (role unit without unit, no listen): the program
// exits 2 with it. SIGUSR1 calls it again. Logs nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "common/kept_settings.hpp"
#include "common/log.hpp"
#include "milter/networks.hpp"
#include "unit/resolver.hpp"

namespace unit::milter {

enum class Mode { Serve, Help, Version };
enum class Role { Mx, Unit };
enum class TempfailAction { Tempfail, Accept };

struct Settings {
    Mode mode = Mode::Serve;
    std::string config_file;

    std::string db = "/var/lib/unitpolicy/units.db";
    std::string listen;           // libmilter's syntax: unix:/path, local:/path, inet:PORT[@HOST], inet6:PORT[@HOST]
    unsigned socket_mode = 0660;  // of a unix socket, set after binding
    std::string socket_group;     // of a unix socket, set after binding; empty: unchanged
    std::string metrics;          // inet:host:port for Prometheus, empty: off
    Role role = Role::Mx;
    std::string unit;  // role unit: this host's unit
    Networks trusted_networks;
    int max_hops = 6;
    std::string header_prefix = "X-Unit-";
    // The most routing headers one message may have deleted: more from an
    // untrusted client refuse it with a 5xx (route_header.hpp).
    std::size_t max_stripped_headers = 10;
    bool expand_aliases = false;
    TempfailAction tempfail_action = TempfailAction::Tempfail;
    std::string user;
    common::LogSink log = common::LogSink::Syslog;
    bool debug = false;
    std::string hostname;  // by= in the route; default: gethostname()
    // How long validating a replacement of the replica may take (directory.hpp).
    std::chrono::seconds validation_timeout{30};
    // Where the record of checked replica files lives (checked_files.hpp); "": none.
    std::string cache_directory;
    // How long one resolution's lookups may run (directory.hpp).
    std::chrono::milliseconds lookup_timeout{1000};

    ResolverOptions resolver;
};

inline constexpr const char* default_config_file = "/etc/unitpolicy/unitmilter.conf";

Settings load_settings(int argc, const char* const argv[]);

// The settings the filter reads once, at start (Reload::AtRestart in the
// key table), whose value `reloaded` changes from the one it started with
// (`started`). SIGUSR1 applies the rest.
common::KeptSettings kept_on_reload(const Settings& started, const Settings& reloaded);

void print_help(std::ostream& out);
// What is valid but likely a mistake, one line each, for the start-up and
// reload log: a trusted_networks entry wider than private ranges
// (Networks::too_wide()), an inet listener beyond loopback.
std::vector<std::string> warnings(const Settings& settings);
// key = value lines of the effective configuration (start-up log, tests),
// "config" first, then each key of the table.
std::vector<std::pair<std::string, std::string>> describe(const Settings& settings);

}  // namespace unit::milter
