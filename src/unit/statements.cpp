// statements.cpp: the row readers of statements.hpp.
#include "unit/statements.hpp"

#include <fmt/format.h>

namespace unit::detail::sql {

namespace units {

Result<UnitRecord> read_row(const Query& q, int first) {
    auto state = parse_unit_state(q.text(first + 3));
    if (!state)
        return make_error(Errc::Corrupt, fmt::format("unit {}: bad state \"{}\"", q.text(first), q.text(first + 3)));
    return UnitRecord{q.text(first), q.text(first + 1), q.text(first + 2), *state};
}

}  // namespace units

namespace mailboxes {

Result<MailboxRecord> read_row(const Query& q, int first) {
    auto state = parse_mailbox_state(q.text(first + 2));
    if (!state)
        return make_error(Errc::Corrupt, fmt::format("mailbox {}: bad state \"{}\"", q.text(first), q.text(first + 2)));
    return MailboxRecord{q.text(first), q.text(first + 1), *state, q.text(first + 3)};
}

}  // namespace mailboxes

}  // namespace unit::detail::sql
