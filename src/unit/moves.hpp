// moves.hpp: bulk moves (unitctl move begin|finish|abort): which mailboxes
// one call takes, and what it did. Primary::begin_moves, finish_moves and
// abort_moves (primary.hpp) each run in ONE transaction: a bad address or a
// conflict fails the whole call, naming the address, and changes nothing.
//
// Selection: the given addresses (normalised; a repeated one counts once;
// a missing one is Errc::NotFound), or every mailbox of `from_unit`
// (Errc::NotFound when the unit does not exist), in address order, at most
// `limit` of them, so that repeated calls with a limit progress in slices:
//   - begin: the mailboxes whose unit is from_unit and that are not moving
//     (a draining or down source is fine: that is an evacuation);
//   - finish, abort: the moves AWAY from from_unit (unit is from_unit,
//     state moving), whatever unit they move to.
// `limit` needs from_unit (Errc::Invalid otherwise) and is at least 1.
//
// begin_moves(selection, V), per mailbox:
//   - active: moving to V, its mail held on the MX (held);
//   - suspended or disabled: it receives no mail, so its unit becomes V at
//     once and its state is kept (direct), as `unitctl sync` does;
//   - already moving to V, or already on V and not moving: left as it is
//     (unchanged), so a second run of the same call changes nothing;
//   - moving to another unit: Errc::Conflict ("already moving to W").
// V must exist (NotFound) and not be draining (Conflict, as for a new
// mailbox); a down V is accepted: mail for it is held anyway while it is
// down, and the copy waits until it is up. from_unit == V is Conflict.
// finish_moves / abort_moves: each selected mailbox must be moving
// (Conflict "not moving" for a given address); finish puts it on the unit
// it moved to, abort leaves it where it was; both make it active again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace unit {

struct MoveSelection {
    std::vector<std::string> addresses;    // these mailboxes, or
    std::optional<std::string> from_unit;  // the mailboxes of this unit (see above)
    std::optional<std::int64_t> limit;     // at most this many of them, by address
};

struct MoveCounts {
    std::int64_t moved = 0;      // mailboxes changed: held + direct for begin, moves ended for finish/abort
    std::int64_t held = 0;       // begin: now moving, mail held
    std::int64_t direct = 0;     // begin: suspended/disabled, unit changed at once
    std::int64_t unchanged = 0;  // begin: already moving to, or on, the target
    // One line per changed mailbox: "ann@my.com: unit12 -> unit13 held".
    std::vector<std::string> changes;
};

}  // namespace unit
