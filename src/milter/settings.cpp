#include "milter/settings.hpp"

#include <arpa/inet.h>
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <ostream>

#include "common/config_file.hpp"
#include "common/key_table.hpp"
#include "milter/route_header.hpp"

namespace unit::milter {

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

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// libmilter's connection spec: unix:/path, local:/path, inet:PORT[@HOST], inet6:PORT[@HOST].
std::string set_listen(std::string& field, std::string_view value) {
    auto bad = [&] {
        return fmt::format("bad listen \"{}\" (expected unix:/path or inet:PORT@HOST, as libmilter spells it)", value);
    };
    auto colon = value.find(':');
    if (colon == std::string_view::npos) return bad();
    std::string_view kind = value.substr(0, colon), rest = value.substr(colon + 1);
    if (kind == "unix" || kind == "local") {
        if (rest.empty() || rest.front() != '/') return bad();
    } else if (kind == "inet" || kind == "inet6") {
        std::string_view port = rest.substr(0, rest.find('@'));
        unsigned n = 0;
        if (!all_digits(port) || set_number(n, port, 1u, 65535u).size() > 0) return bad();
        if (port.size() < rest.size() && rest.size() == port.size() + 1) return bad();  // "PORT@" without a host
    } else {
        return bad();
    }
    return set_text(field, value, false);
}

std::string set_unit(std::string& field, std::string_view value) {
    if (!std::all_of(value.begin(), value.end(), is_unit_name_char) || value.size() > max_unit_name)
        return fmt::format("bad unit name \"{}\" (letters, digits, '-', '_' and '.')", value);
    field = std::string(value);
    return {};
}

// A header name prefix: printable ASCII without ':' or space (RFC 5322 ftext).
std::string set_prefix(std::string& field, std::string_view value) {
    bool ok = !value.empty() && value.size() <= 64 &&
              std::all_of(value.begin(), value.end(), [](char c) { return c > ' ' && c < 0x7f && c != ':'; });
    if (!ok) return fmt::format("bad header prefix \"{}\" (printable, no ':' or space)", value);
    field = std::string(value);
    return {};
}

std::string set_networks(Settings& s, std::string_view value) {
    auto n = Networks::parse(value);
    if (!n) return n.error().message;
    s.trusted_networks = std::move(*n);
    return {};
}

const Key keys[] = {
    {"db", "the replica of the policy database (read-only)",
     [](std::string_view v, Settings& s) { return set_text(s.db, v, false); },
     [](const Settings& s) -> std::string { return s.db; }},
    {"listen", "where the MTA connects: unix:/path or inet:PORT@HOST (libmilter's syntax)",
     [](std::string_view v, Settings& s) { return set_listen(s.listen, v); },
     [](const Settings& s) -> std::string { return s.listen; }, Reload::AtRestart},
    {"socket_mode", "mode of a unix socket (octal)",
     [](std::string_view v, Settings& s) { return set_number(s.socket_mode, v, 0u, 0777u, 8); },
     [](const Settings& s) -> std::string { return fmt::format("{:04o}", s.socket_mode); }, Reload::AtRestart},
    {"socket_group", "group of a unix socket (empty: the group that started the filter)",
     [](std::string_view v, Settings& s) { return set_text(s.socket_group, v); },
     [](const Settings& s) -> std::string { return s.socket_group; }, Reload::AtRestart},
    {"metrics", "serve the live counters to Prometheus over HTTP on inet:host:port (GET /metrics)",
     [](std::string_view v, Settings& s) { return common::set_inet_endpoint(s.metrics, v); },
     [](const Settings& s) -> std::string { return s.metrics; }, Reload::AtRestart},
    {"role", "mx (the MX pool) or unit (a mailbox server; needs unit)",
     [](std::string_view v, Settings& s) -> std::string {
         if (v == "mx") s.role = Role::Mx;
         else if (v == "unit") s.role = Role::Unit;
         else return fmt::format("bad role \"{}\" (expected mx or unit)", v);
         return {};
     },
     [](const Settings& s) -> std::string { return s.role == Role::Unit ? "unit" : "mx"; }},
    {"unit", "this host's unit (role unit)", [](std::string_view v, Settings& s) { return set_unit(s.unit, v); },
     [](const Settings& s) -> std::string { return s.unit; }},
    {"trusted_networks",
     "clients whose routing headers are kept: IPv4/IPv6 CIDRs, comma or space separated "
     "(the other MX hosts and the units)",
     [](std::string_view v, Settings& s) { return set_networks(s, v); },
     [](const Settings& s) -> std::string { return s.trusted_networks.to_string(); }},
    {"max_hops", "refuse (451 4.4.6) a message whose incoming hop count reaches this",
     [](std::string_view v, Settings& s) { return set_number(s.max_hops, v, 1, 24); },
     [](const Settings& s) -> std::string { return std::to_string(s.max_hops); }},  // 2 x 24 < hop_count_limit (50)
    {"header_prefix", "the routing header prefix; the route header is PREFIX + Route",
     [](std::string_view v, Settings& s) { return set_prefix(s.header_prefix, v); },
     [](const Settings& s) -> std::string { return s.header_prefix; }},
    {"max_stripped_headers",
     "the most routing headers deleted from one message; more from an untrusted client "
     "refuse it (550 5.7.1)",
     [](std::string_view v, Settings& s) {
         return set_number(s.max_stripped_headers, v, std::size_t{0}, max_stripped_limit);
     },
     [](const Settings& s) -> std::string { return std::to_string(s.max_stripped_headers); }},
    {"expand_aliases", "replace alias recipients by their targets (for MTAs without socketmap)",
     [](std::string_view v, Settings& s) { return set_bool(s.expand_aliases, v); },
     [](const Settings& s) -> std::string { return common::show_bool(s.expand_aliases); }, Reload::Applied,
     KeyKind::Flag},
    {"tempfail_action", "when the directory cannot answer: tempfail (451 4.3.0) or accept (with a warning)",
     [](std::string_view v, Settings& s) -> std::string {
         if (v == "tempfail") s.tempfail_action = TempfailAction::Tempfail;
         else if (v == "accept") s.tempfail_action = TempfailAction::Accept;
         else return fmt::format("bad tempfail action \"{}\" (expected tempfail or accept)", v);
         return {};
     },
     [](const Settings& s) -> std::string {
         return s.tempfail_action == TempfailAction::Accept ? "accept" : "tempfail";
     }},
    {"recipient_delimiter", "address extension delimiters, as Postfix's recipient_delimiter",
     [](std::string_view v, Settings& s) { return set_text(s.resolver.address.recipient_delimiter, v); },
     [](const Settings& s) -> std::string { return s.resolver.address.recipient_delimiter; }},
    {"fold_local_case", "fold local parts to lowercase",
     [](std::string_view v, Settings& s) { return set_bool(s.resolver.address.fold_local_case, v); },
     [](const Settings& s) -> std::string { return common::show_bool(s.resolver.address.fold_local_case); }},
    {"max_replica_age", "treat a replica older than this as unavailable (0: off)",
     [](std::string_view v, Settings& s) { return set_duration(s.resolver.max_replica_age, v); },
     [](const Settings& s) -> std::string { return fmt::format("{}s", s.resolver.max_replica_age.count()); }},
    {"max_alias_targets", "alias rows one address may expand through; more is a temporary failure (alias_limit)",
     [](std::string_view v, Settings& s) { return set_number(s.resolver.max_alias_targets, v, 1, 1000000); },
     [](const Settings& s) -> std::string { return std::to_string(s.resolver.max_alias_targets); }},
    {"validation_timeout", "refuse a replacement of the replica not validated within this (at least 1s)",
     [](std::string_view v, Settings& s) { return set_timeout(s.validation_timeout, v); },
     [](const Settings& s) -> std::string { return fmt::format("{}s", s.validation_timeout.count()); }},
    {"cache_directory",
     "remember here which replica files passed their integrity check, so that a restart skips it (empty: off)",
     [](std::string_view v, Settings& s) { return common::set_absolute_path(s.cache_directory, v); },
     [](const Settings& s) -> std::string { return s.cache_directory; }, Reload::AtRestart},
    {"lookup_timeout",
     "bound of one lookup in milliseconds; past it the answer is a temporary failure (lookup_timeout)",
     [](std::string_view v, Settings& s) { return common::set_milliseconds(s.lookup_timeout, v); },
     [](const Settings& s) -> std::string { return std::to_string(s.lookup_timeout.count()); }},
    {"hostname", "this host's name in the route's by= (default: the system's host name)",
     [](std::string_view v, Settings& s) { return set_text(s.hostname, v); },
     [](const Settings& s) -> std::string { return s.hostname; }},
    {"user", "user to run as after binding the socket",
     [](std::string_view v, Settings& s) { return set_text(s.user, v); },
     [](const Settings& s) -> std::string { return s.user; }, Reload::AtRestart},
    {"log", "syslog (facility mail) or stderr",
     [](std::string_view v, Settings& s) { return common::set_log_sink(s.log, v); },
     [](const Settings& s) -> std::string { return s.log == common::LogSink::Stderr ? "stderr" : "syslog"; }},
    {"debug", "log every message's decision", [](std::string_view v, Settings& s) { return set_bool(s.debug, v); },
     [](const Settings& s) -> std::string { return common::show_bool(s.debug); }, Reload::Applied, KeyKind::Flag},
};

const common::KeyTable<Settings> table{keys};

po::options_description mode_options() {
    po::options_description modes("Modes");
    // clang-format off
    modes.add_options()
        ("help", "print this help and exit")
        ("version", "print the version and exit")
        ("config", po::value<std::string>(), "configuration file (default /etc/unitpolicy/unitmilter.conf when it exists)");
    // clang-format on
    return modes;
}

void complete(Settings& s) {
    if (s.mode != Mode::Serve) return;
    if (s.listen.empty()) throw ConfigError("listen: required (unix:/path or inet:PORT@HOST)");
    if (s.role == Role::Unit && s.unit.empty()) throw ConfigError("unit: required with role unit");
    if (s.role == Role::Mx && !s.unit.empty()) throw ConfigError("unit: only with role unit");
    if (s.hostname.empty()) {
        char name[HOST_NAME_MAX + 1] = {};
        if (gethostname(name, sizeof name - 1) == 0) s.hostname = name;
        if (s.hostname.empty()) s.hostname = "localhost";
    }
}

// Whether libmilter's "inet:PORT@HOST" or "inet6:PORT@HOST" listens beyond
// loopback (without @HOST it listens on every address).
bool listens_beyond_loopback(const std::string& listen) {
    const bool v4 = listen.rfind("inet:", 0) == 0, v6 = listen.rfind("inet6:", 0) == 0;
    if (!v4 && !v6) return false;
    const auto at = listen.find('@');
    const std::string host = at == std::string::npos ? "" : listen.substr(at + 1);
    if (host == "localhost") return false;
    unsigned char address[16];
    if (v4) return inet_pton(AF_INET, host.c_str(), address) != 1 || address[0] != 127;
    static const unsigned char loopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return inet_pton(AF_INET6, host.c_str(), address) != 1 || !std::equal(address, address + 16, loopback6);
}

}  // namespace

Settings load_settings(int argc, const char* const argv[]) {
    po::options_description all;
    all.add(mode_options()).add(table.options(common::settings_title));
    auto vm = common::parse_command_line(argc, argv, all);
    Settings s;
    if (vm.count("version")) s.mode = Mode::Version;
    if (vm.count("help")) s.mode = Mode::Help;
    if (s.mode != Mode::Serve) return s;
    s.config_file = table.load(vm, default_config_file, s);
    complete(s);
    return s;
}

void print_help(std::ostream& out) {
    out << "usage: unitmilter [--config FILE] --listen unix:/path|inet:PORT@HOST [--role mx|unit] [--unit NAME]\n"
           "                  [--trusted-networks CIDR,...] [--max-hops N] [--header-prefix X-Unit-]\n"
           "                  [--expand-aliases] [--user U] [--log syslog|stderr] [SETTINGS]\n\n"
        << mode_options() << '\n'
        << table.options(common::settings_title);
}

std::vector<std::string> warnings(const Settings& s) {
    std::vector<std::string> lines;
    for (const auto& network : s.trusted_networks.too_wide())
        lines.push_back(
            fmt::format("trusted_networks: {} is wider than any private network (IPv4 /8, IPv6 /7): "
                        "every client in it may forge routing headers and hop counts",
                        network));
    if (listens_beyond_loopback(s.listen))
        lines.push_back(
            fmt::format("listen: {} is not loopback: every host that reaches it can take the filter's "
                        "threads and, with expand_aliases, read alias targets; keep it behind a packet "
                        "filter",
                        s.listen));
    return lines;
}

std::vector<std::pair<std::string, std::string>> describe(const Settings& s) {
    auto keys = table.describe(s);
    keys.insert(keys.begin(), {"config", s.config_file});
    return keys;
}

common::KeptSettings kept_on_reload(const Settings& started, const Settings& reloaded) {
    return table.kept_on_reload(started, reloaded);
}

}  // namespace unit::milter
