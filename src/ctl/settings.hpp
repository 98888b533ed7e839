// settings.hpp: unitctl's settings, from the `--config FILE` key table and
// the command line (which wins).
//
// The file holds `key = value` lines; blank lines and lines starting with
// '#' are ignored. Keys (settings.cpp holds the table):
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
// w (Postfix time units). Errors (unreadable file, a line without '=', an
// unknown key, a bad value) throw UsageError naming FILE:LINE. Logs nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "ctl/ldap_source.hpp"

namespace unit::ctl {

// The primary's path, never the replica's (units.db) that the daemons read:
// unitctl must not write a host's replica by default.
inline constexpr std::string_view default_db_path = "/var/lib/unitpolicy/primary.db";

enum class AuditLog { Syslog, Stderr, None };

// Unset optionals mean "libunit's default" (resolver.hpp, address.hpp).
struct Settings {
    std::string db{default_db_path};
    std::optional<std::string> recipient_delimiter;
    std::optional<bool> fold_local_case;
    std::optional<std::chrono::seconds> reject_max_age;
    std::optional<std::chrono::seconds> max_replica_age;
    std::string hold_transport = "unithold";
    int max_alias_targets = 1000;
    LdapSettings ldap;  // the source of `sync --ldap`
    AuditLog audit_log = AuditLog::Syslog;
    std::string fleet_hosts;  // "" when not configured
};

// Applies the keys of the file at `path` to `settings`.
void load_config_file(const std::string& path, Settings& settings);

// Parsers for command-line values: `what` ("resolve: --reject-max-age")
// starts the message of the UsageError they throw for a bad value.
std::chrono::seconds duration_or_usage(std::string_view text, std::string_view what);
bool bool_or_usage(std::string_view text, std::string_view what);
// The largest max_alias_targets accepted.
inline constexpr int max_alias_targets_limit = 1'000'000;

}  // namespace unit::ctl
