// ldap_source.hpp: the LDAP source of `unitctl sync --ldap`: reads the
// mailboxes and aliases of an LDAP directory (OpenLDAP's libldap) into a
// SourceDirectory, by the attribute map of unitctl's configuration file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "unit/result.hpp"
#include "unit/source.hpp"

namespace unit::ctl {

// Where the directory is and how its entries map to ours (the ldap_* keys
// of unitctl's configuration file, settings.cpp).
struct LdapSettings {
    std::string uri;  // ldap://, ldaps:// or ldapi://; empty: no LDAP source configured
};

// Reports the entries read so far, for a progress line.
using LdapProgress = std::function<void(std::uint64_t entries)>;

// Reads every entry the search returns. Fails, returning no partial
// directory, when the server cannot be reached or the bind fails
// (Errc::Unavailable), or when the read is incomplete: an error or a size
// or time limit before the last page (Errc::Io), naming what happened.
Result<SourceDirectory> read_ldap(const LdapSettings& settings, const LdapProgress& progress) noexcept;

}  // namespace unit::ctl
