#include "ctl/ldap_source.hpp"

namespace unit::ctl {

Result<SourceDirectory> read_ldap(const LdapSettings&, const LdapProgress&) noexcept {
    return Error{Errc::Unavailable, "LDAP source: not implemented yet"};
}

}  // namespace unit::ctl
