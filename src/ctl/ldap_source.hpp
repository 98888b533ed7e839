// ldap_source.hpp: the LDAP source of `unitctl sync --ldap`: reads the
// mailboxes and aliases of an LDAP directory (OpenLDAP's libldap) into a
// SourceDirectory, by the attribute map of unitctl's configuration file
// (ldap_settings.hpp; unitctl(8) describes each key).
//
// What the directory gives:
//   mailboxes  one per entry of the search (ldap_base, ldap_scope,
//              ldap_filter): its one address, its one unit (the value, or
//              its first DNS label), its state by ldap_state_map (active
//              when the entry has no state attribute);
//   aliases    each value of the entry's alias attribute is an alias to the
//              entry's address (values equal to it are skipped); each entry
//              of the alias search gives its address -> every target. Present
//              (the whole truth) when either is configured, nullopt otherwise;
//   domains    those of every mailbox and alias address, lowercased (nullopt
//              with ldap_domains = keep);
//   units      nullopt: units are managed with `unitctl unit`.
// Values are passed as the directory spells them (sync normalises them).
//
// Connection: libldap's own configuration (ldap.conf(5): TLS certificates,
// TLS_REQCERT, which is "demand" unless set otherwise) applies; referrals
// are never chased.
//
// Outcomes: the whole directory, or an Error and nothing:
//   Invalid      a setting that cannot work (no ldap_uri, a bind DN without a
//                password file, a password file others may read, or empty;
//                a bad filter), or an entry the map cannot take: no address
//                or several, no unit or several, several states, a state no
//                rule maps, a malformed address; the message names the DN;
//   Unavailable  the server cannot be reached or the bind fails;
//   Io           the read is incomplete: an error, a size or time limit, a
//                referral, a lost connection or a bad page cookie before the
//                last page, or no answer within ldap_timeout.
// The password is read from its file, never from the command line.
// Logs nothing; not thread-safe with itself (one LDAP handle per call).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "ctl/ldap_settings.hpp"
#include "unit/result.hpp"
#include "unit/source.hpp"

namespace unit::ctl {

// Reports the entries read so far, for a progress line: every 1000 entries
// and once at the end.
using LdapProgress = std::function<void(std::uint64_t entries)>;

Result<SourceDirectory> read_ldap(const LdapSettings& settings, const LdapProgress& progress) noexcept;

}  // namespace unit::ctl
