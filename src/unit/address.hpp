// address.hpp: turning a recipient address as Postfix hands it to us into the
// key the database stores.
//
// normalize_address() splits at the last '@'; lowercases the domain, removes
// one trailing dot and converts U-labels to A-labels (libidn2); unquotes a
// quoted local part when the result is a legal dot-atom; folds the local part
// to lowercase (ASCII only, on by default); and, when a recipient delimiter
// is set, splits off the address extension with Postfix's split_addr rules
// (the first delimiter character that is not the first character of the
// local part; postmaster, MAILER-DAEMON, owner-* and *-request are never
// split when '-' is a delimiter).
//
// Outcomes: the normalised Address, or Errc::Invalid with the reason
// (empty, longer than 320 bytes as given or once normalised, control
// characters, no '@', empty local part or domain, an invalid domain,
// invalid UTF-8). Never throws: an allocation that fails ends the process.
// Pure function: thread-safe. Logs nothing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "unit/export.hpp"
#include "unit/result.hpp"

namespace unit {

inline constexpr std::size_t max_address_length = 320;

struct AddressOptions {
    bool fold_local_case = true;
    std::string recipient_delimiter;  // one or more characters; empty: no extensions
};

struct Address {
    std::string local;               // normalised local part, extension included
    std::string domain;              // lowercase A-labels, no trailing dot
    std::string base_local;          // local part without the extension (== local when none)
    std::string extension;           // the extension without its delimiter (may be empty: "user+@x")
    bool extended = false;           // an extension was split off
    std::vector<std::string> notes;  // what normalisation changed, for traces

    bool has_extension() const noexcept { return extended; }
    std::string full() const { return local + '@' + domain; }
    std::string base() const { return base_local + '@' + domain; }
};

UNIT_EXPORT Result<Address> normalize_address(std::string_view raw, const AddressOptions& options) noexcept;

// The domain part alone, normalised as above (for `@domain` keys and the
// domain map). Errc::Invalid when it is not a valid domain.
UNIT_EXPORT Result<std::string> normalize_domain(std::string_view raw) noexcept;

}  // namespace unit
