#include "policyd/settings.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "common/config_file.hpp"
#include "common/endpoint.hpp"
#include "common/key_table.hpp"

namespace unit::policyd {

namespace po = boost::program_options;
using common::ConfigError;

namespace {

using Key = common::Key<Settings>;
using common::KeyKind;
using common::Reload;
using common::set_bool;
using common::set_duration;
using common::set_number;
using common::set_text;
using common::set_timeout;

std::string add_endpoint(std::vector<std::string>& list, std::string_view value) {
    auto e = common::parse_endpoint(value);
    if (!e) return e.error().message;
    list.emplace_back(value);
    return {};
}

// A reply text: "4XX 4.X.X text" or "5XX 5.X.X text", as access(5) wants.
// Replies for doubt and faults must be 4xx: a fault never becomes a 5xx.
std::string set_reply(std::string& field, std::string_view value, bool temporary_only = false) {
    bool shaped = value.size() > 10 && (value[0] == '4' || value[0] == '5') && value[3] == ' ' &&
                  value[4] == value[0] && value[5] == '.';
    if (!shaped) return fmt::format("\"{}\" is not \"CODE X.Y.Z text\"", value);
    if (temporary_only && value[0] != '4') return fmt::format("\"{}\" must be a 4xx reply", value);
    // Checked here, once: answers.cpp sends the text as it is.
    if (value.size() > max_reply_text) return fmt::format("reply longer than {} bytes", max_reply_text);
    return set_text(field, value);
}

const Key keys[] = {
    {"db", "the replica of the policy database (read-only)",
     [](std::string_view v, Settings& s) { return set_text(s.db, v, false); },
     [](const Settings& s) -> std::string { return s.db; }, Reload::AtRestart},
    {"policy_listen", "policy delegation listener, unix:/path or inet:host:port (repeatable)",
     [](std::string_view v, Settings& s) { return add_endpoint(s.policy_listen, v); },
     [](const Settings& s) -> std::string { return common::show_list(s.policy_listen); }, Reload::AtRestart,
     KeyKind::Repeatable, [](Settings& s) { s.policy_listen.clear(); }},
    {"socketmap_listen", "socketmap listener, unix:/path or inet:host:port (repeatable)",
     [](std::string_view v, Settings& s) { return add_endpoint(s.socketmap_listen, v); },
     [](const Settings& s) -> std::string { return common::show_list(s.socketmap_listen); }, Reload::AtRestart,
     KeyKind::Repeatable, [](Settings& s) { s.socketmap_listen.clear(); }},
    {"control", "control socket path for --dump --control (live counters)",
     [](std::string_view v, Settings& s) { return set_text(s.control, v); },
     [](const Settings& s) -> std::string { return s.control; }, Reload::AtRestart},
    {"metrics", "serve the live counters to Prometheus over HTTP on inet:host:port (GET /metrics)",
     [](std::string_view v, Settings& s) { return common::set_inet_endpoint(s.metrics, v); },
     [](const Settings& s) -> std::string { return s.metrics; }, Reload::AtRestart},
    {"unit", "this host's unit (unit role: enables the transportunit map)",
     [](std::string_view v, Settings& s) { return set_text(s.answers.unit, v); },
     [](const Settings& s) -> std::string { return s.answers.unit; }},
    {"local_transport", "transport for this unit's own mailboxes (unit role)",
     [](std::string_view v, Settings& s) { return set_text(s.answers.local_transport, v, false); },
     [](const Settings& s) -> std::string { return s.answers.local_transport; }},
    {"mx_relay", "transport:nexthop for everything else from a unit (unit role)",
     [](std::string_view v, Settings& s) { return set_text(s.answers.mx_relay, v); },
     [](const Settings& s) -> std::string { return s.answers.mx_relay; }},
    {"hold_transport", "the lmtp clone listed in defer_transports that holds mail on the MX",
     [](std::string_view v, Settings& s) {
         auto problem = set_text(s.answers.hold_transport, v, false);
         s.resolver.hold_transport = s.answers.hold_transport;  // no unit may be routed through it
         return problem;
     },
     [](const Settings& s) -> std::string { return s.answers.hold_transport; }},
    {"hold_mode", "transport (hold in the queue) or defer (answer retry:, the sender keeps it)",
     [](std::string_view v, Settings& s) -> std::string {
         if (v == "transport") s.answers.hold_mode = HoldMode::Transport;
         else if (v == "defer") s.answers.hold_mode = HoldMode::Defer;
         else return fmt::format("bad hold mode \"{}\" (expected transport or defer)", v);
         return {};
     },
     [](const Settings& s) -> std::string {
         return s.answers.hold_mode == HoldMode::Transport ? "transport" : "defer";
     }},
    {"held_mail_interval", "scan Postfix's queue this often for held mail whose route changed, and release it (0: off)",
     [](std::string_view v, Settings& s) { return set_duration(s.held_mail_interval, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.held_mail_interval); }},
    {"postqueue", "Postfix's postqueue program, for the held-mail scans (an absolute path)",
     [](std::string_view v, Settings& s) { return common::set_absolute_path(s.postqueue, v, false); },
     [](const Settings& s) -> std::string { return s.postqueue; }},
    {"postfix_config_directory", "the Postfix instance whose queue is scanned (postqueue -c DIR; empty: the default)",
     [](std::string_view v, Settings& s) { return set_text(s.postfix_config_directory, v); },
     [](const Settings& s) -> std::string { return s.postfix_config_directory; }},
    {"recipient_delimiter", "address extension delimiters, as Postfix's recipient_delimiter",
     [](std::string_view v, Settings& s) { return set_text(s.resolver.address.recipient_delimiter, v); },
     [](const Settings& s) -> std::string { return s.resolver.address.recipient_delimiter; }},
    {"fold_local_case", "fold local parts to lowercase",
     [](std::string_view v, Settings& s) { return set_bool(s.resolver.address.fold_local_case, v); },
     [](const Settings& s) -> std::string { return s.resolver.address.fold_local_case ? "yes" : "no"; }},
    {"reject_max_age", "unknown in a replica older than this: 450 4.1.1, not 550 (0: off)",
     [](std::string_view v, Settings& s) { return set_duration(s.resolver.reject_max_age, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.resolver.reject_max_age); }},
    {"max_replica_age", "refuse (tempfail) answers from a replica older than this (0: off)",
     [](std::string_view v, Settings& s) { return set_duration(s.resolver.max_replica_age, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.resolver.max_replica_age); }},
    {"max_alias_targets", "alias rows one address may expand through; more is a temporary failure (alias_limit)",
     [](std::string_view v, Settings& s) { return set_number(s.resolver.max_alias_targets, v, 1, 1000000); },
     [](const Settings& s) -> std::string { return std::to_string(s.resolver.max_alias_targets); }},
    {"validation_timeout", "refuse a replacement of the replica not validated within this (at least 1s)",
     [](std::string_view v, Settings& s) { return set_timeout(s.validation_timeout, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.validation_timeout); }, Reload::AtRestart},
    {"cache_directory",
     "remember here which replica files passed their integrity check, so that a restart skips it (empty: off)",
     [](std::string_view v, Settings& s) { return common::set_absolute_path(s.cache_directory, v); },
     [](const Settings& s) -> std::string { return s.cache_directory; }, Reload::AtRestart},
    {"lookup_timeout",
     "bound of one lookup in milliseconds; past it the answer is a temporary failure (lookup_timeout)",
     [](std::string_view v, Settings& s) { return common::set_milliseconds(s.lookup_timeout, v); },
     [](const Settings& s) -> std::string { return std::to_string(s.lookup_timeout.count()); }, Reload::AtRestart},
    {"threads", "worker threads, one SQLite connection each (0: one per core)",
     [](std::string_view v, Settings& s) { return set_number(s.threads, v, 0u, 256u); },
     [](const Settings& s) -> std::string { return std::to_string(s.threads); }, Reload::AtRestart},
    {"user", "user to run as after binding the sockets",
     [](std::string_view v, Settings& s) { return set_text(s.user, v); },
     [](const Settings& s) -> std::string { return s.user; }, Reload::AtRestart},
    {"socket_mode", "mode of the unix sockets (octal)",
     [](std::string_view v, Settings& s) { return set_number(s.socket_mode, v, 0u, 0777u, 8); },
     [](const Settings& s) -> std::string { return fmt::format("{:04o}", s.socket_mode); }, Reload::AtRestart},
    {"socket_group", "group of the unix sockets (Postfix connects as user postfix: postfix)",
     [](std::string_view v, Settings& s) { return set_text(s.socket_group, v); },
     [](const Settings& s) -> std::string { return s.socket_group; }, Reload::AtRestart},
    {"log", "syslog (facility mail) or stderr",
     [](std::string_view v, Settings& s) { return common::set_log_sink(s.log, v); },
     [](const Settings& s) -> std::string { return s.log == common::LogSink::Stderr ? "stderr" : "syslog"; },
     Reload::AtRestart},
    {"debug", "log every request", [](std::string_view v, Settings& s) { return set_bool(s.debug, v); },
     [](const Settings& s) -> std::string { return s.debug ? "yes" : "no"; }, Reload::AtRestart},
    {"idle_timeout", "close a client connection idle this long",
     [](std::string_view v, Settings& s) { return set_timeout(s.idle_timeout, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.idle_timeout); }},
    {"request_timeout", "close a connection whose request takes longer to arrive, or whose answers wait unread",
     [](std::string_view v, Settings& s) { return set_timeout(s.request_timeout, v); },
     [](const Settings& s) -> std::string { return common::show_seconds(s.request_timeout); }},
    {"max_connections",
     "client connections at once; a new one closes an idle one (the one never used, or idle longest)",
     [](std::string_view v, Settings& s) { return set_number(s.max_connections, v, 1u, 1000000u); },
     [](const Settings& s) -> std::string { return std::to_string(s.max_connections); }},
    {"max_connections_per_peer",
     "inet listeners: connections from one address (IPv6: one /64); past it, its unused or idle ones make room",
     [](std::string_view v, Settings& s) { return set_number(s.max_connections_per_peer, v, 1u, 1000000u); },
     [](const Settings& s) -> std::string { return std::to_string(s.max_connections_per_peer); }},
    {"max_line", "longest policy request line, in bytes; longer closes the connection",
     [](std::string_view v, Settings& s) { return set_number(s.max_line, v, std::size_t{256}, std::size_t{1} << 20); },
     [](const Settings& s) -> std::string { return std::to_string(s.max_line); }},
    {"max_request", "longest policy request or socketmap netstring, in bytes; longer closes the connection",
     [](std::string_view v, Settings& s) {
         return set_number(s.max_request, v, std::size_t{1024}, std::size_t{16} << 20);
     },
     [](const Settings& s) -> std::string { return std::to_string(s.max_request); }},
    {"unknown_reply", "policy reply for an unknown recipient",
     [](std::string_view v, Settings& s) { return set_reply(s.answers.texts.unknown, v); },
     [](const Settings& s) -> std::string { return s.answers.texts.unknown; }},
    {"unconfirmed_reply", "policy reply for an unknown recipient in a replica older than reject_max_age",
     [](std::string_view v, Settings& s) { return set_reply(s.answers.texts.unconfirmed, v, true); },
     [](const Settings& s) -> std::string { return s.answers.texts.unconfirmed; }},
    {"disabled_reply", "policy reply for a disabled mailbox",
     [](std::string_view v, Settings& s) { return set_reply(s.answers.texts.disabled, v); },
     [](const Settings& s) -> std::string { return s.answers.texts.disabled; }},
    {"suspended_reply", "policy reply for a suspended mailbox",
     [](std::string_view v, Settings& s) { return set_reply(s.answers.texts.suspended, v); },
     [](const Settings& s) -> std::string { return s.answers.texts.suspended; }},
    {"tempfail_reply", "policy reply when the directory cannot answer",
     [](std::string_view v, Settings& s) { return set_reply(s.answers.texts.tempfail, v, true); },
     [](const Settings& s) -> std::string { return s.answers.texts.tempfail; }},
};

const common::KeyTable<Settings> table{keys};

po::options_description mode_options() {
    po::options_description modes("Modes");
    // clang-format off
    modes.add_options()
        ("help", "print this help and exit")
        ("version", "print the version and exit")
        ("config", po::value<std::string>(), "configuration file (default /etc/unitpolicy/unitpolicy.conf when it exists)")
        ("stdio", "serve the policy protocol on stdin/stdout, for spawn(8)")
        ("query", po::value<std::string>(), "resolve ADDRESS and print every interface's answer")
        ("dump", "print the configuration, the database and (with --control) the daemon's counters")
        ("json", "with --dump: JSON output");
    // clang-format on
    return modes;
}

void choose_mode(const po::variables_map& vm, Settings& s) {
    int modes = 0;
    if (vm.count("stdio")) s.mode = Mode::Stdio, ++modes;
    if (vm.count("query")) s.mode = Mode::Query, s.query_address = vm["query"].as<std::string>(), ++modes;
    if (vm.count("dump")) s.mode = Mode::Dump, ++modes;
    if (modes > 1) throw ConfigError("--stdio, --query and --dump exclude each other");
    s.json = vm.count("json") > 0;
    if (s.json && s.mode != Mode::Dump) throw ConfigError("--json goes with --dump");
    if (vm.count("version")) s.mode = Mode::Version;
    if (vm.count("help")) s.mode = Mode::Help;
}

void check_consistency(const Settings& s) {
    bool serving = s.mode == Mode::Serve || s.mode == Mode::Stdio;
    if (serving && !s.answers.unit.empty() && s.answers.mx_relay.empty())
        throw ConfigError("mx_relay: required with unit (where mail for other units goes)");
    if (s.mode == Mode::Serve && s.policy_listen.empty() && s.socketmap_listen.empty())
        throw ConfigError("nothing to listen on: give policy_listen or socketmap_listen (or --stdio)");
}

}  // namespace

Settings load_settings(int argc, const char* const argv[]) {
    po::options_description all;
    all.add(mode_options()).add(table.options(common::settings_title));
    auto vm = common::parse_command_line(argc, argv, all);
    Settings s;
    choose_mode(vm, s);
    if (s.mode == Mode::Help || s.mode == Mode::Version) return s;
    s.config_file = table.load(vm, default_config_file, s);
    check_consistency(s);
    return s;
}

void print_help(std::ostream& out) {
    out << "usage: unitpolicy [--config FILE] --policy-listen ENDPOINT... --socketmap-listen ENDPOINT... [SETTINGS]\n"
           "       unitpolicy --stdio [SETTINGS]\n"
           "       unitpolicy --query ADDRESS [--unit NAME] [SETTINGS]\n"
           "       unitpolicy --dump [--json] [--control PATH] [SETTINGS]\n\n"
        << mode_options() << '\n'
        << table.options(common::settings_title);
}

std::vector<std::pair<std::string, std::string>> describe(const Settings& s) {
    auto keys = table.describe(s);
    keys.insert(keys.begin(), {"config", s.config_file});
    return keys;
}

common::KeptSettings kept_on_reload(const Settings& started, const Settings& reloaded) {
    return table.kept_on_reload(started, reloaded);
}

}  // namespace unit::policyd
