// settings.hpp: unitctl's settings: one table of keys (settings.cpp, which
// takes the ldap_* keys from ldap_settings.cpp) drives the `--config FILE`
// (`key = value` lines), the options of a command that sets some keys for
// one run (--key-name, the key with '-' for '_'), the defaults its --help
// shows and the man page test. The command line wins over the file.
//
// Keys (unitctl(8), CONFIGURATION, has the full text):
//   db                   path of the primary database
//   recipient_delimiter  address extension delimiters, for `resolve` and
//                        alias targets (user+tag@ lands in user@)
//   hold_transport       the daemons' hold transport, never a unit's
//   max_alias_targets    alias rows one expansion may visit, as the daemons
//   fold_local_case      yes|no, for `resolve`
//   reject_max_age       duration, for `resolve`
//   max_replica_age      duration, for `resolve`
//   audit_log            syslog|stderr|none, where the audit lines go (audit.hpp)
//   fleet_hosts          the hosts file of `fleet` (fleet_hosts.hpp)
//   ldap_*               the LDAP source of `sync --ldap` (ldap_settings.hpp)
// A duration is a number of seconds, or a number followed by s, m, h, d or
// w (Postfix time units). A default is the struct's member initialiser.
// Errors (unreadable file, a line without '=', an unknown key, a bad value)
// throw UsageError naming FILE:LINE, or the command and its option. Logs
// nothing.
#pragma once

#include <boost/program_options.hpp>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctl/ldap_source.hpp"
#include "unit/resolver.hpp"

namespace unit::ctl {

// The primary's path, never the replica's (units.db) that the daemons read:
// unitctl must not write a host's replica by default.
inline constexpr std::string_view default_db_path = "/var/lib/unitpolicy/primary.db";

enum class AuditLog { Syslog, Stderr, None };

struct Settings {
    std::string db{default_db_path};
    // recipient_delimiter, fold_local_case, reject_max_age, max_replica_age
    // and max_alias_targets; the rest is libunit's default (resolver.hpp).
    ResolverOptions resolver;
    std::string hold_transport = "unithold";  // the daemons' default
    LdapSettings ldap;                        // the source of `sync --ldap`
    AuditLog audit_log = AuditLog::Syslog;
    std::string fleet_hosts;  // "" when not configured
};

// Applies the keys of the file at `path` to `settings`.
void load_config_file(const std::string& path, Settings& settings);

// Each key and its value in `settings`, in the table's order (the man page
// test reads the keys of a default Settings).
std::vector<std::pair<std::string, std::string>> describe(const Settings& settings);

// A key that a command takes as an option, and the name of its value in
// that command's --help ("DURATION").
struct KeyOption {
    const char* key;
    const char* value_name;
};

// Declares --key-name for each of `keys`, with the key's doc and default.
void declare_key_options(boost::program_options::options_description& options, std::span<const KeyOption> keys);
// Applies those of `keys` that `given` holds to `settings`; a bad value
// throws UsageError "COMMAND: --key-name: problem".
void apply_key_options(const boost::program_options::variables_map& given, std::span<const KeyOption> keys,
                       std::string_view command, Settings& settings);

// Parser for a command-line duration: `what` ("fleet status: --timeout")
// starts the message of the UsageError it throws for a bad value.
std::chrono::seconds duration_or_usage(std::string_view text, std::string_view what);
// The largest max_alias_targets accepted.
inline constexpr int max_alias_targets_limit = 1'000'000;

}  // namespace unit::ctl
