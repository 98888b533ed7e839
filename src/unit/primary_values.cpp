#include "unit/primary_values.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "unit/primary_db.hpp"
#include "unit/statements.hpp"
#include "unit/values.hpp"

namespace unit::detail {

bool is_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_' || c == '.';
    });
}

Result<void> check_unit_fields(const UnitRecord& u, std::string_view hold_transport) {
    if (!is_name(u.name))
        return make_error(Errc::Invalid,
                          fmt::format("unit \"{}\": a name is letters, digits, '-', '_' and '.'", u.name));
    if (auto r = check_transport(u.transport, hold_transport); !r)
        return make_error(r.error().code, fmt::format("unit {}: {}", u.name, r.error().message));
    if (auto r = check_nexthop(u.nexthop); !r)
        return make_error(r.error().code, fmt::format("unit {}: {}", u.name, r.error().message));
    return {};
}

// The stored key of a mailbox or alias address (no extension splitting).
Result<Address> parse_address(const std::string& text) { return normalize_address(text, AddressOptions{true, ""}); }

std::string_view domain_of(std::string_view address) {
    auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

Result<bool> domain_served(sqlite3* db, std::string_view domain) { return exists(db, sql::domains::exists, {domain}); }

namespace {

using Served = std::function<Result<bool>(std::string_view)>;

// An alias key: an address, or "@domain" for the domain's catch-all.
Result<std::string> key_of_alias(const Served& served, const std::string& text) {
    std::string key;
    std::string domain;
    if (!text.empty() && text[0] == '@') {
        auto d = normalize_domain(std::string_view(text).substr(1));
        if (!d) return d.error();
        domain = d.value();
        key = "@" + domain;
    } else {
        auto a = parse_address(text);
        if (!a) return a.error();
        domain = a->domain;
        key = a->full();
    }
    auto is_served = served(domain);
    if (!is_served) return is_served.error();
    if (!is_served.value()) return make_error(Errc::Conflict, fmt::format("domain {} is not served", domain));
    return key;
}

// An alias target: a local address is folded like every key; the local part
// of an external address keeps its case (other systems may care).
Result<std::string> stored_target(const Served& served, const std::string& text) {
    auto folded = parse_address(text);
    if (!folded) return folded.error();
    auto is_served = served(folded->domain);
    if (!is_served) return is_served.error();
    if (is_served.value()) return folded->full();
    auto kept = normalize_address(text, AddressOptions{false, ""});
    if (!kept) return kept.error();
    return kept->full();
}

// The stored form is checked too: normalising quotes a local part that is
// not a dot-atom ("m."@example.com), and a quote cannot travel in the
// alias map's comma-separated answer, so check() would report the row.
Result<std::string> target_of_alias(const Served& served, const std::string& text) {
    if (auto r = check_alias_target(text); !r) return r.error();
    auto stored = stored_target(served, text);
    if (!stored) return stored;
    if (!check_alias_target(stored.value()))
        return make_error(Errc::Invalid, fmt::format("bad alias target \"{}\": its local part needs quoting ({}), "
                                                     "which an alias target cannot have",
                                                     text, stored.value()));
    return stored;
}

Served served_in(sqlite3* db) {
    return [db](std::string_view domain) { return domain_served(db, domain); };
}

Served served_in(const DomainSet& domains) {
    return [&domains](std::string_view domain) -> Result<bool> { return domains.count(std::string(domain)) != 0; };
}

}  // namespace

Result<std::string> alias_key(sqlite3* db, const std::string& text) { return key_of_alias(served_in(db), text); }
Result<std::string> alias_target(sqlite3* db, const std::string& text) { return target_of_alias(served_in(db), text); }
Result<std::string> alias_key(const DomainSet& served, const std::string& text) {
    return key_of_alias(served_in(served), text);
}
Result<std::string> alias_target(const DomainSet& served, const std::string& text) {
    return target_of_alias(served_in(served), text);
}

Result<void> check_mailbox(MailboxRecord& mailbox, const DomainSet& domains,
                           const std::unordered_set<std::string>& units) {
    return check_mailbox(mailbox, served_in(domains), [&units](std::string_view unit) -> Result<bool> {
        return units.count(std::string(unit)) != 0;
    });
}

Result<void> check_mailbox(MailboxRecord& mailbox, const NameCheck& served, const NameCheck& unit_exists) {
    auto address = parse_address(mailbox.address);
    if (!address) return address.error();
    auto is_served = served(address->domain);
    if (!is_served) return is_served.error();
    if (!is_served.value()) return make_error(Errc::Conflict, fmt::format("domain {} is not served", address->domain));
    mailbox.address = address->full();
    auto unit = unit_exists(mailbox.unit);
    if (!unit) return unit.error();
    if (!unit.value()) return make_error(Errc::NotFound, fmt::format("unit {}: no such unit", mailbox.unit));
    if (mailbox.state == MailboxState::Moving) {
        auto moving_to = unit_exists(mailbox.moving_to);
        if (!moving_to) return moving_to.error();
        if (!moving_to.value())
            return make_error(Errc::NotFound, fmt::format("unit {}: no such unit", mailbox.moving_to));
        if (mailbox.moving_to == mailbox.unit)
            return make_error(Errc::Conflict, fmt::format("mailbox {}: moving to its own unit", mailbox.address));
    }
    return {};
}

}  // namespace unit::detail
