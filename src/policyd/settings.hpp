// settings.hpp: unitpolicy's configuration: one table of keys (settings.cpp)
// drives the configuration file (`key = value`, --config), the command line
// (--key-name, the key with '-' for '_'), --help and the man page
// unitpolicy.conf(5). The command line wins over the file.
//
// load_settings() throws common::ConfigError with one line naming the key
// (and FILE:LINE for the file) for an unknown key or a bad value: the
// program exits 2 with it. Logs nothing.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/kept_settings.hpp"
#include "common/log.hpp"
#include "policyd/answers.hpp"
#include "unit/resolver.hpp"

namespace unit::policyd {

enum class Mode { Serve, Stdio, Query, Dump, Help, Version };

struct Settings {
    // What the program does this time (command line only).
    Mode mode = Mode::Serve;
    std::string query_address;
    bool json = false;
    std::string config_file;

    std::string db = "/var/lib/unitpolicy/units.db";
    std::vector<std::string> policy_listen;
    std::vector<std::string> socketmap_listen;
    std::string control;
    std::string metrics;   // inet:host:port for Prometheus, empty: off
    unsigned threads = 0;  // 0: one per core
    std::string user;
    unsigned socket_mode = 0660;
    std::string socket_group;
    common::LogSink log = common::LogSink::Syslog;
    bool debug = false;
    // Client limits: what one connection may hold or cost (server.cpp).
    std::chrono::seconds idle_timeout{330};
    std::chrono::seconds request_timeout{10};
    unsigned max_connections = 1000;
    unsigned max_connections_per_peer = 500;  // inet listeners: from one address (IPv6: one /64)
    std::size_t max_line = 8 * 1024;
    std::size_t max_request = 64 * 1024;
    // How long validating a replacement of the replica may take (directory.hpp).
    std::chrono::seconds validation_timeout{30};
    // Where the record of checked replica files lives (checked_files.hpp); "": none.
    std::string cache_directory;
    // How long one resolution's lookups may run (directory.hpp).
    std::chrono::milliseconds lookup_timeout{1000};

    // The held-mail watcher (held_mail.hpp): how often it scans the queue
    // (0: never), with which postqueue, for which Postfix instance ("": its
    // default configuration directory).
    std::chrono::seconds held_mail_interval{10};
    std::string postqueue = "/usr/sbin/postqueue";
    std::string postfix_config_directory;

    ResolverOptions resolver;
    AnswerSettings answers;
};

inline constexpr const char* default_config_file = "/etc/unitpolicy/unitpolicy.conf";

// Parses the command line and the configuration file it names (--config,
// or default_config_file when that exists). SIGHUP calls it again.
Settings load_settings(int argc, const char* const argv[]);

// The settings the daemon reads once, at start (Reload::AtRestart in the
// key table), whose value `reloaded` changes from the one it started with
// (`started`). SIGHUP applies the rest.
common::KeptSettings kept_on_reload(const Settings& started, const Settings& reloaded);

void print_help(std::ostream& out);
// key = value lines of the effective configuration, for --dump: "config"
// first, then each key of the table.
std::vector<std::pair<std::string, std::string>> describe(const Settings& settings);

}  // namespace unit::policyd
