// Reader (directory.hpp): the lookups of one read transaction on a
// Directory's snapshot connection.
#include <fmt/format.h>

#include "unit/directory.hpp"
#include "unit/snapshot_connection.hpp"
#include "unit/statements.hpp"

namespace unit {

using detail::Connection;
using detail::end_read;
using detail::explained;
using detail::Query;
namespace sql = detail::sql;
using Clock = std::chrono::steady_clock;

Reader::Reader(Reader&& other) noexcept : connection_(other.connection_), ends_transaction_(other.ends_transaction_) {
    other.connection_ = nullptr;
}

Reader::~Reader() {
    if (connection_ == nullptr) return;
    if (ends_transaction_) end_read(*connection_);
    else connection_->lookup_deadline = Clock::time_point::max();
}

Error Reader::failed(Error e) noexcept {
    connection_->read_failed = true;
    return explained(*connection_, std::move(e));
}

std::int64_t Reader::generation() const noexcept { return connection_->read_generation; }

Result<bool> Reader::domain_served(std::string_view domain) noexcept {
    Query q(connection_->domain.get());
    q.bind(1, domain);
    auto row = q.step();
    if (!row) return failed(row.error());
    return row;
}

Result<std::optional<MailboxRecord>> Reader::mailbox(std::string_view address) noexcept {
    try {
        Query q(connection_->mailbox.get());
        q.bind(1, address);
        auto row = q.step();
        if (!row) return failed(row.error());
        if (!row.value()) return std::optional<MailboxRecord>();
        auto mailbox = sql::mailboxes::read_row(q);
        if (!mailbox) return mailbox.error();
        return std::optional<MailboxRecord>(std::move(mailbox.value()));
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
    }
}

Result<std::optional<UnitRecord>> Reader::unit(std::string_view name) noexcept {
    try {
        Query q(connection_->unit.get());
        q.bind(1, name);
        auto row = q.step();
        if (!row) return failed(row.error());
        if (!row.value()) return std::optional<UnitRecord>();
        auto unit = sql::units::read_row(q);
        if (!unit) return unit.error();
        return std::optional<UnitRecord>(std::move(unit.value()));
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
    }
}

Result<std::vector<std::string>> Reader::alias_targets(std::string_view address) noexcept {
    try {
        Query q(connection_->aliases.get());
        q.bind(1, address);
        std::vector<std::string> targets;
        auto r = detail::for_each_row(q, [&](Query& row) { targets.push_back(row.text(0)); });
        if (!r) return failed(r.error());
        return targets;
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
    }
}

Result<DirectorySummary> Reader::summary() noexcept {
    // Whole-table counts take seconds at ten million rows: diagnostics are
    // not bound by lookup_timeout.
    connection_->lookup_deadline = Clock::time_point::max();
    try {
        sqlite3* db = connection_->db.get();
        DirectorySummary summary;
        auto r = detail::for_each_row(db, sql::summary::counts, [&](Query& q) {
            summary.domains = q.integer(0);
            summary.aliases = q.integer(1);
            summary.alias_targets = q.integer(2);
        });
        if (r)
            r = detail::for_each_row(db, sql::mailboxes::count_by_state, [&](Query& q) -> Result<void> {
                auto state = parse_mailbox_state(q.text(0));
                if (!state) return make_error(Errc::Corrupt, fmt::format("mailboxes: bad state \"{}\"", q.text(0)));
                summary.mailboxes_by_state[static_cast<int>(*state)] = q.integer(1);
                return {};
            });
        if (r)
            r = detail::for_each_row(db, sql::units::with_mailbox_counts, [&](Query& q) -> Result<void> {
                auto unit = sql::units::read_row(q);
                if (!unit) return unit.error();
                summary.units.emplace_back(std::move(unit.value()), q.integer(4));
                return {};
            });
        if (!r) return failed(r.error());
        return summary;
    } catch (const std::exception& e) {
        return failed(make_error(Errc::Unavailable, e.what()));
    }
}

}  // namespace unit
