#include "unit/primary.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_set>

#include "unit/address.hpp"
#include "unit/csv.hpp"
#include "unit/directory.hpp"
#include "unit/primary_support.hpp"
#include "unit/schema.hpp"
#include "unit/sqlite.hpp"
#include "unit/statements.hpp"

namespace unit {

using detail::Query;
using detail::Transaction;

using namespace detail;  // the helpers of primary_support.hpp

// ------------------------------------------------------------ open / init

Primary::Primary(std::unique_ptr<detail::PrimaryDb> db) noexcept : db_(std::move(db)) {}
Primary::Primary(Primary&&) noexcept = default;
Primary& Primary::operator=(Primary&&) noexcept = default;
Primary::~Primary() = default;

Result<Primary> Primary::open(const std::string& path, PrimaryOptions options) noexcept {
    return guarded<Primary>([&]() -> Result<Primary> {
        struct stat st {};
        if (stat(path.c_str(), &st) != 0)
            return make_error(Errc::NotFound,
                              fmt::format("{}: {} (create it with unitctl init)", path, std::strerror(errno)));
        auto db = open_rw(path, false);
        if (!db) return db.error();
        auto version = read_schema_version(db->get());
        if (!version) return version.error();
        if (version.value() == 0) return make_error(Errc::Corrupt, fmt::format("{}: not a unitpolicy database", path));
        if (version.value() > max_schema_version)
            return make_error(Errc::Corrupt, fmt::format("{}: schema version {} is newer than this build ({})", path,
                                                         version.value(), max_schema_version));
        if (version.value() < max_schema_version)
            return make_error(Errc::Corrupt, fmt::format("{}: schema version {} is old: upgrade it with unitctl init",
                                                         path, version.value()));
        return Primary(std::make_unique<detail::PrimaryDb>(detail::PrimaryDb{std::move(db.value()), path,
                                                                             std::move(options)}));
    });
}

Result<Primary> Primary::init(const std::string& path, PrimaryOptions options) noexcept {
    return guarded<Primary>([&]() -> Result<Primary> {
        auto db = open_rw(path, true);
        if (!db) return db.error();
        // WAL: readers of the primary never block unitctl, nor it them.
        if (auto r = detail::exec(db->get(), sql::settings::journal_wal); !r) return r.error();
        auto version = read_schema_version(db->get());
        if (!version) return version.error();
        if (version.value() > max_schema_version)
            return make_error(Errc::Corrupt, fmt::format("{}: schema version {} is newer than this build ({})", path,
                                                         version.value(), max_schema_version));
        for (const auto& m : detail::migrations()) {
            if (m.version <= version.value()) continue;
            if (auto r = apply_migration(db->get(), m); !r) return r.error();
        }
        if (auto r = ensure_primary_id(db->get()); !r) return r.error();
        return Primary(std::make_unique<detail::PrimaryDb>(detail::PrimaryDb{std::move(db.value()), path,
                                                                             std::move(options)}));
    });
}

Result<int> Primary::schema_version() noexcept {
    return guarded<int>([&] { return read_schema_version(db_->db.get()); });
}

Result<std::int64_t> Primary::generation() noexcept {
    return guarded<std::int64_t>([&] { return count(db_->db.get(), sql::meta::generation, {}); });
}

Result<DatabaseMeta> Primary::meta() noexcept {
    return guarded<DatabaseMeta>([&] { return read_meta(db_->db.get()); });
}

// ------------------------------------------------------------ domains

Result<void> Primary::add_domain(const std::string& text) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        auto domain = normalize_domain(text);
        if (!domain) return domain.error();
        auto served = domain_served(db, *domain);
        if (!served) return served.error();
        if (served.value()) return make_error(Errc::Conflict, fmt::format("domain {}: already served", *domain));
        return run(db, sql::domains::insert, {*domain});
    });
}

Result<void> Primary::remove_domain(const std::string& text) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        auto domain = normalize_domain(text);
        if (!domain) return domain.error();
        auto served = domain_served(db, *domain);
        if (!served) return served.error();
        if (!served.value()) return make_error(Errc::NotFound, fmt::format("domain {}: not served", *domain));
        auto mailboxes = count(db, sql::mailboxes::count_in_domain, {*domain});
        if (!mailboxes) return mailboxes.error();
        auto aliases = count(db, sql::aliases::count_in_domain, {*domain});
        if (!aliases) return aliases.error();
        if (mailboxes.value() + aliases.value() > 0)
            return make_error(Errc::Conflict, fmt::format("domain {}: still used by {} mailbox(es) and {} alias(es)",
                                                          *domain, mailboxes.value(), aliases.value()));
        return run(db, sql::domains::remove, {*domain});
    });
}

Result<std::vector<std::string>> Primary::domains() noexcept {
    return guarded<std::vector<std::string>>([&]() -> Result<std::vector<std::string>> {
        std::vector<std::string> names;
        auto r = for_each_row(db_->db.get(), sql::domains::names_ordered,
                              [&](Query& q) { names.push_back(q.text(0)); });
        if (!r) return r.error();
        return names;
    });
}

// ------------------------------------------------------------ units

namespace {

Result<std::optional<UnitRecord>> find_unit(sqlite3* db, std::string_view name) {
    auto stmt = detail::prepare(db, sql::units::by_name);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    q.bind(1, name);
    auto row = q.step();
    if (!row) return row.error();
    if (!row.value()) return std::optional<UnitRecord>();
    auto unit = sql::units::read_row(q);
    if (!unit) return unit.error();
    return std::optional<UnitRecord>(std::move(unit.value()));
}

}  // namespace

Result<UnitRecord> detail::existing_unit(sqlite3* db, std::string_view name) {
    auto unit = find_unit(db, name);
    if (!unit) return unit.error();
    if (!unit.value()) return make_error(Errc::NotFound, fmt::format("unit {}: no such unit", name));
    return std::move(*unit.value());
}

namespace {

Result<void> insert_unit(sqlite3* db, const UnitRecord& u, std::string_view hold_transport) {
    if (auto r = check_unit_fields(u, hold_transport); !r) return r;
    auto found = find_unit(db, u.name);
    if (!found) return found.error();
    if (found.value()) return make_error(Errc::Conflict, fmt::format("unit {}: already exists", u.name));
    return run(db, sql::units::insert, {u.name, u.transport, u.nexthop, std::string(to_string(u.state))});
}

}  // namespace

Result<void> Primary::add_unit(const UnitRecord& unit) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&] { return insert_unit(db, unit, db_->options.hold_transport); });
}

Result<void> Primary::change_unit(const std::string& name, const UnitChange& change) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        if (!change.state && !change.nexthop && !change.transport)
            return make_error(Errc::Invalid, fmt::format("unit {}: nothing to change", name));
        auto unit = existing_unit(db, name);
        if (!unit) return unit.error();
        UnitRecord changed = unit.value();
        if (change.state) changed.state = *change.state;
        if (change.nexthop) changed.nexthop = *change.nexthop;
        if (change.transport) changed.transport = *change.transport;
        if (auto r = check_unit_fields(changed, db_->options.hold_transport); !r) return r;
        return run(db, sql::units::update,
                   {changed.name, changed.transport, changed.nexthop, std::string(to_string(changed.state))});
    });
}

Result<void> Primary::remove_unit(const std::string& name) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        auto unit = existing_unit(db, name);
        if (!unit) return unit.error();
        auto used = count(db, sql::units::mailboxes_on, {name});
        if (!used) return used.error();
        if (used.value() > 0)
            return make_error(Errc::Conflict, fmt::format("unit {}: still has {} mailbox(es)", name, used.value()));
        return run(db, sql::units::remove, {name});
    });
}

Result<std::vector<UnitSummary>> Primary::units() noexcept {
    return guarded<std::vector<UnitSummary>>([&]() -> Result<std::vector<UnitSummary>> {
        std::vector<UnitSummary> units;
        auto r = for_each_row(db_->db.get(), sql::units::with_mailbox_counts, [&](Query& q) -> Result<void> {
            auto unit = sql::units::read_row(q);
            if (!unit) return unit.error();
            units.push_back(UnitSummary{std::move(unit.value()), q.integer(4)});
            return {};
        });
        if (!r) return r.error();
        return units;
    });
}

// ------------------------------------------------------------ mailboxes

namespace {

Result<std::optional<MailboxRecord>> find_mailbox(sqlite3* db, std::string_view address) {
    auto stmt = detail::prepare(db, sql::mailboxes::by_address);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    q.bind(1, address);
    auto row = q.step();
    if (!row) return row.error();
    if (!row.value()) return std::optional<MailboxRecord>();
    auto mailbox = sql::mailboxes::read_row(q);
    if (!mailbox) return mailbox.error();
    return std::optional<MailboxRecord>(std::move(mailbox.value()));
}

Result<MailboxRecord> existing_mailbox(sqlite3* db, const std::string& text) {
    auto address = parse_address(text);
    if (!address) return address.error();
    auto found = find_mailbox(db, address->full());
    if (!found) return found.error();
    if (!found.value()) return make_error(Errc::NotFound, fmt::format("mailbox {}: no such mailbox", address->full()));
    return std::move(*found.value());
}

}  // namespace

Result<void> detail::check_receiving_unit(sqlite3* db, const std::string& name) {
    auto unit = existing_unit(db, name);
    if (!unit) return unit.error();
    if (unit->state == UnitState::Draining)
        return make_error(Errc::Conflict, fmt::format("unit {} is draining: it takes no new mailboxes", name));
    return {};
}

Result<void> Primary::add_mailbox(const std::string& text, const std::string& unit) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        auto address = parse_address(text);
        if (!address) return address.error();
        auto served = domain_served(db, address->domain);
        if (!served) return served.error();
        if (!served.value()) return make_error(Errc::Conflict, fmt::format("domain {} is not served", address->domain));
        if (auto r = check_receiving_unit(db, unit); !r) return r;
        auto found = find_mailbox(db, address->full());
        if (!found) return found.error();
        if (found.value())
            return make_error(Errc::Conflict, fmt::format("mailbox {}: already exists on unit {}", address->full(),
                                                          found.value()->unit));
        return run(db, sql::mailboxes::insert, {address->full(), unit});
    });
}

Result<void> Primary::set_mailbox_state(const std::string& text, MailboxState state) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        if (state == MailboxState::Moving)
            return make_error(Errc::Invalid, "a move starts with unitctl move begin, not a state change");
        auto mailbox = existing_mailbox(db, text);
        if (!mailbox) return mailbox.error();
        if (mailbox->state == MailboxState::Moving)
            return make_error(Errc::Conflict, fmt::format("mailbox {}: moving to {}: finish or abort the move first",
                                                          mailbox->address, mailbox->moving_to));
        return run(db, sql::mailboxes::set_state, {mailbox->address, std::string(to_string(state))});
    });
}

Result<void> Primary::remove_mailbox(const std::string& text) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        auto mailbox = existing_mailbox(db, text);
        if (!mailbox) return mailbox.error();
        return run(db, sql::mailboxes::remove, {mailbox->address});
    });
}

Result<MailboxRecord> Primary::mailbox(const std::string& text) noexcept {
    return guarded<MailboxRecord>([&] { return existing_mailbox(db_->db.get(), text); });
}

Result<std::vector<MailboxRecord>> Primary::mailboxes(const std::optional<std::string>& unit) noexcept {
    sqlite3* db = db_->db.get();
    return guarded<std::vector<MailboxRecord>>([&]() -> Result<std::vector<MailboxRecord>> {
        if (unit) {
            if (auto u = existing_unit(db, *unit); !u) return u.error();
        }
        auto stmt = detail::prepare(db, sql::mailboxes::of_unit);
        if (!stmt) return stmt.error();
        Query q(stmt->get());
        q.bind_optional(1, unit);
        std::vector<MailboxRecord> list;
        auto r = for_each_row(q, [&](Query& row) -> Result<void> {
            auto mailbox = sql::mailboxes::read_row(row);
            if (!mailbox) return mailbox.error();
            list.push_back(std::move(mailbox.value()));
            return {};
        });
        if (!r) return r.error();
        return list;
    });
}

// ------------------------------------------------------------ aliases

namespace {

// Returns the target as stored.
Result<std::string> insert_alias(sqlite3* db, const std::string& key, const std::string& target_text) {
    auto target = alias_target(db, target_text);
    if (!target) return target.error();
    auto dup = exists(db, sql::aliases::pair_exists, {key, *target});
    if (!dup) return dup.error();
    if (dup.value()) return make_error(Errc::Conflict, fmt::format("alias {} -> {}: already exists", key, *target));
    if (auto r = run(db, sql::aliases::insert, {key, *target}); !r) return r.error();
    return target;
}

}  // namespace

Result<void> Primary::add_alias(const std::string& address, const std::vector<std::string>& targets) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        if (targets.empty()) return make_error(Errc::Invalid, fmt::format("alias {}: no target given", address));
        auto key = alias_key(db, address);
        if (!key) return key.error();
        std::vector<std::string> stored;
        for (const auto& t : targets) {
            auto target = insert_alias(db, *key, t);
            if (!target) return target.error();
            stored.push_back(std::move(target.value()));
        }
        if (auto r = refuse_alias_problems(db, db_->options.max_alias_targets); !r) return r;
        if (db_->options.refuse_dangling_targets) {
            // After every target is in: an alias may list one defined in the same call.
            TargetResolver resolver(db, db_->options.recipient_delimiter);
            for (const auto& target : stored) {
                auto resolves = resolver.resolves(*key, target);
                if (!resolves) return resolves.error();
                if (!resolves.value()) return make_error(Errc::Conflict, dangling_target(*key, target));
            }
        }
        return {};
    });
}

Result<void> Primary::remove_alias(const std::string& address, const std::optional<std::string>& target) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<void>(db, [&]() -> Result<void> {
        auto key = alias_key(db, address);
        if (!key) return key.error();
        std::optional<std::string> stored;
        if (target) {
            auto t = alias_target(db, *target);
            if (!t) return t.error();
            stored = t.value();
        }
        if (auto r = run(db, sql::aliases::remove, {*key, stored}); !r) return r;
        if (sqlite3_changes(db) == 0)
            return make_error(Errc::NotFound, target ? fmt::format("alias {} -> {}: no such alias", *key, *stored)
                                                     : fmt::format("alias {}: no such alias", *key));
        return {};
    });
}

Result<std::vector<AliasRecord>> Primary::aliases() noexcept {
    return guarded<std::vector<AliasRecord>>([&]() -> Result<std::vector<AliasRecord>> {
        std::vector<AliasRecord> list;
        auto r = for_each_row(db_->db.get(), sql::aliases::pairs_ordered, [&](Query& q) {
            list.push_back(AliasRecord{q.text(0), q.text(1)});
        });
        if (!r) return r.error();
        return list;
    });
}

}  // namespace unit
