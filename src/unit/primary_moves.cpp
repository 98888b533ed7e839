// primary_moves.cpp: moves of one mailbox or many in one transaction
// (moves.hpp). Statements are prepared once per call: an evacuation
// touches a whole unit.
#include <fmt/format.h>

#include <string>
#include <unordered_set>

#include "unit/primary.hpp"
#include "unit/primary_support.hpp"
#include "unit/sqlite.hpp"
#include "unit/statements.hpp"

namespace unit {

using namespace detail;

namespace {

// The mailboxes `selection` names; with from_unit, those moving
// (`moving`) or not, in address order.
Result<std::vector<MailboxRecord>> selected(sqlite3* db, const MoveSelection& selection, bool moving) {
    std::vector<MailboxRecord> list;
    auto take = [&](Query& q) -> Result<void> {
        auto mailbox = sql::mailboxes::read_row(q);
        if (!mailbox) return mailbox.error();
        list.push_back(std::move(mailbox.value()));
        return {};
    };
    if (selection.from_unit) {
        if (!selection.addresses.empty())
            return make_error(Errc::Invalid, "give either addresses or a unit to move from, not both");
        if (selection.limit && *selection.limit < 1)
            return make_error(Errc::Invalid, fmt::format("limit {}: must be at least 1", *selection.limit));
        if (auto u = existing_unit(db, *selection.from_unit); !u) return u.error();
        auto stmt = prepare(db, sql::mailboxes::move_batch);
        if (!stmt) return stmt.error();
        const std::string want_moving = moving ? "1" : "0";
        const std::string limit = std::to_string(selection.limit.value_or(-1));  // -1: no limit
        Query q(stmt->get());
        q.bind(1, *selection.from_unit).bind(2, want_moving).bind(3, limit);
        if (auto r = for_each_row(q, take); !r) return r.error();
        return list;
    }
    if (selection.limit) return make_error(Errc::Invalid, "a limit applies to the mailboxes of a unit only");
    auto stmt = prepare(db, sql::mailboxes::by_address);
    if (!stmt) return stmt.error();
    std::unordered_set<std::string> seen;
    for (const auto& text : selection.addresses) {
        auto address = parse_address(text);
        if (!address) return address.error();
        const std::string key = address->full();
        if (!seen.insert(key).second) continue;
        Query q(stmt->get());
        q.bind(1, key);
        auto row = q.step();
        if (!row) return row.error();
        if (!row.value()) return make_error(Errc::NotFound, fmt::format("mailbox {}: no such mailbox", key));
        if (auto r = take(q); !r) return r.error();
    }
    return list;
}

// Runs `sql` with ?1 = the address and ?2 = `value` (when given).
class Update {
public:
    static Result<Update> prepare(sqlite3* db, SqlText sql) {
        auto stmt = detail::prepare(db, sql);
        if (!stmt) return stmt.error();
        return Update(std::move(stmt.value()));
    }
    Result<void> run(const std::string& address, const std::string* value = nullptr) {
        Query q(stmt_.get());
        q.bind(1, address);
        if (value != nullptr) q.bind(2, *value);
        return q.run();
    }

private:
    explicit Update(StmtHandle stmt) : stmt_(std::move(stmt)) {}
    StmtHandle stmt_;
};

Result<MoveCounts> begin(sqlite3* db, const MoveSelection& selection, const std::string& to) {
    if (auto r = check_receiving_unit(db, to); !r) return r.error();
    if (selection.from_unit == to)
        return make_error(Errc::Conflict, fmt::format("unit {}: a move from a unit to itself", to));
    auto list = selected(db, selection, false);
    if (!list) return list.error();
    auto hold = Update::prepare(db, sql::mailboxes::start_move);
    if (!hold) return hold.error();
    auto direct = Update::prepare(db, sql::mailboxes::set_unit);
    if (!direct) return direct.error();
    MoveCounts counts;
    for (const auto& m : list.value()) {
        if (m.state == MailboxState::Moving) {
            if (m.moving_to != to)
                return make_error(Errc::Conflict,
                                  fmt::format("mailbox {}: already moving to {}", m.address, m.moving_to));
            ++counts.unchanged;
            continue;
        }
        if (m.unit == to) {
            ++counts.unchanged;
            continue;
        }
        const bool held = m.state == MailboxState::Active;
        if (auto r = (held ? hold : direct)->run(m.address, &to); !r) return r.error();
        ++(held ? counts.held : counts.direct);
        counts.changes.push_back(fmt::format("{}: {} -> {} {}", m.address, m.unit, to,
                                             held ? "held" : fmt::format("direct, {}", to_string(m.state))));
    }
    counts.moved = counts.held + counts.direct;
    return counts;
}

Result<MoveCounts> end(sqlite3* db, const MoveSelection& selection, bool finish) {
    auto list = selected(db, selection, true);
    if (!list) return list.error();
    auto update = finish ? Update::prepare(db, sql::mailboxes::finish_move)
                         : Update::prepare(db, sql::mailboxes::cancel_move);
    if (!update) return update.error();
    MoveCounts counts;
    for (const auto& m : list.value()) {
        if (m.state != MailboxState::Moving)
            return make_error(Errc::Conflict, fmt::format("mailbox {}: not moving", m.address));
        if (auto r = update->run(m.address); !r) return r.error();
        counts.changes.push_back(finish ? fmt::format("{}: {} -> {} finished", m.address, m.unit, m.moving_to)
                                        : fmt::format("{}: stays on {}, move to {} aborted", m.address, m.unit,
                                                      m.moving_to));
    }
    counts.moved = static_cast<std::int64_t>(counts.changes.size());
    return counts;
}

Result<void> discard_counts(Result<MoveCounts>&& r) {
    if (!r) return r.error();
    return {};
}

}  // namespace

Result<MoveCounts> Primary::begin_moves(const MoveSelection& selection, const std::string& to_unit) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<MoveCounts>(db, [&] { return begin(db, selection, to_unit); });
}

Result<MoveCounts> Primary::finish_moves(const MoveSelection& selection) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<MoveCounts>(db, [&] { return end(db, selection, true); });
}

Result<MoveCounts> Primary::abort_moves(const MoveSelection& selection) noexcept {
    sqlite3* db = db_->db.get();
    return in_transaction<MoveCounts>(db, [&] { return end(db, selection, false); });
}

Result<void> Primary::begin_move(const std::string& address, const std::string& to_unit) noexcept {
    return discard_counts(begin_moves(MoveSelection{{address}, {}, {}}, to_unit));
}

Result<void> Primary::finish_move(const std::string& address) noexcept {
    return discard_counts(finish_moves(MoveSelection{{address}, {}, {}}));
}

Result<void> Primary::abort_move(const std::string& address) noexcept {
    return discard_counts(abort_moves(MoveSelection{{address}, {}, {}}));
}

}  // namespace unit
