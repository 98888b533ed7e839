// primary_support.hpp (internal): the statement helpers and value rules
// shared by the Primary modules (primary*.cpp). Same error
// classes as primary.hpp; nothing here logs or throws past the templates'
// catch.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "unit/address.hpp"
#include "unit/primary.hpp"
#include "unit/records.hpp"
#include "unit/result.hpp"
#include "unit/schema.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

struct PrimaryDb {
    DbHandle db;
    std::string path;
    PrimaryOptions options;
};

inline constexpr int primary_busy_timeout_ms = 5000;
inline constexpr int max_alias_depth = 8;  // as the resolver follows by default

// Statements with text parameters ?1..?N.
Result<std::optional<std::string>> query_text(sqlite3* db, std::string_view sql,
                                              std::initializer_list<std::string_view> params);
Result<void> run(sqlite3* db, std::string_view sql, std::initializer_list<std::optional<std::string>> params);
Result<bool> exists(sqlite3* db, std::string_view sql, std::initializer_list<std::string_view> params);
Result<std::int64_t> count(sqlite3* db, std::string_view sql, std::initializer_list<std::string_view> params);

// Wraps one call in a write transaction: `body` runs inside it; it commits
// when the body succeeds, and rolls back otherwise.
template <class T, class Body>
Result<T> in_transaction(sqlite3* db, Body&& body) noexcept {
    try {
        auto txn = Transaction::begin(db, true);
        if (!txn) return txn.error();
        Result<T> result = body();
        if (!result) return result;
        if (auto r = txn->commit(); !r) return r.error();
        return result;
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

template <class T, class Body>
Result<T> guarded(Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        return make_error(Errc::Unavailable, e.what());
    }
}

// Units: the existing unit `name` (Errc::NotFound naming it otherwise), and
// one that may take a new mailbox (Errc::Conflict when it is draining).
Result<UnitRecord> existing_unit(sqlite3* db, std::string_view name);
Result<void> check_receiving_unit(sqlite3* db, const std::string& name);

// Value rules.
bool is_name(std::string_view s);
Result<void> check_unit_fields(const UnitRecord& u, std::string_view hold_transport);
Result<Address> parse_address(const std::string& text);  // a stored key: folded, no extension split
std::string_view domain_of(std::string_view address);
Result<bool> domain_served(sqlite3* db, std::string_view domain);
Result<std::string> alias_key(sqlite3* db, const std::string& text);     // address or "@domain", served
// local folded, external kept; exactly one address (check_alias_target)
Result<std::string> alias_target(sqlite3* db, const std::string& text);
// The same against a set of served domains (import's and sync's in-memory view).
using DomainSet = std::unordered_set<std::string>;
Result<std::string> alias_key(const DomainSet& served, const std::string& text);
Result<std::string> alias_target(const DomainSet& served, const std::string& text);
// A mailbox as it may be stored: its address normalised in place, its domain
// served, its unit (and the unit it moves to) in `units`, not moving to its
// own unit. Import and sync check every mailbox with it.
Result<void> check_mailbox(MailboxRecord& mailbox, const DomainSet& domains, const std::unordered_set<std::string>& units);
// The same with the domains and units asked of `served` and `unit_exists`
// (import's lookups); their errors are returned as they are.
using NameCheck = std::function<Result<bool>(std::string_view)>;
Result<void> check_mailbox(MailboxRecord& mailbox, const NameCheck& served, const NameCheck& unit_exists);
// publish's and sync's limit on removed mailboxes: options.max_removed of
// `total`, by default 5% of it or 500, whichever is larger.
std::int64_t removal_limit(const std::optional<RemovalLimit>& limit, std::int64_t total);
// "a@x, b@y, ..." for the first few of `removed` addresses.
std::string first_addresses(const std::vector<std::string>& first, std::int64_t removed);
std::string utc_now();                                                    // ISO 8601 UTC

// Alias cycles, chains deeper than max_alias_depth and expansions visiting
// more than max_alias_targets rows, one line each.
Result<std::vector<std::string>> alias_problems(sqlite3* db, int max_alias_targets);
Result<void> refuse_alias_problems(sqlite3* db, int max_alias_targets);  // Conflict naming the first problem

// Whether an alias target resolves: a mailbox, an alias (not for the
// alias's own address: that means its mailbox), user@'s mailbox for
// user+tag@ with the delimiter, or the catch-all of its domain. A target
// outside the served domains always does.
class TargetResolver {
public:
    TargetResolver(sqlite3* db, std::string recipient_delimiter) : db_(db), delimiter_(std::move(recipient_delimiter)) {}
    Result<bool> resolves(const std::string& alias, const std::string& target);

private:
    sqlite3* db_;
    std::string delimiter_;
};

// The message for a target that does not resolve.
std::string dangling_target(const std::string& alias, const std::string& target);

// "primary_id", added when missing (a random 32-hex-digit identity).
Result<void> ensure_primary_id(sqlite3* db);
Result<DatabaseMeta> read_meta(sqlite3* db);

Result<int> read_schema_version(sqlite3* db);  // 0 when the file has no meta table
Result<void> apply_migration(sqlite3* db, const Migration& m);
Result<DbHandle> open_rw(const std::string& path, bool create);

}  // namespace unit::detail
