// sync.hpp: makes the primary equal to the provider's own source of truth
// (unitctl sync): Primary::sync() compares a SourceDirectory (source.hpp)
// with the primary and applies the difference in one transaction, or only
// computes it (dry run); read_csv_source() reads the `export` format
// (csv.hpp) into a SourceDirectory.
//
// The source's values are normalised and checked exactly as import_csv
// does (the same row parsing and checks). How each kind is compared:
//   - domains, units: added, changed (a unit's transport, nexthop, state)
//     and removed, when the source speaks of that kind.
//   - mailboxes: added, removed, and changed: state, or unit. A unit change
//     of an active mailbox begins a move to the new unit (mail held, as
//     `unitctl move begin`), unless options.direct; a mailbox already moving
//     to the source's unit, or still on it while moving elsewhere (the
//     source has not switched yet), is left as it is. A suspended or
//     disabled mailbox receives no mail, so its unit changes at once (a
//     move under way ends there). A source that tracks moves itself (state
//     moving:UNIT in the CSV) is taken as it is.
//   - aliases: rows (address, target) added and removed.
// Safety (each refuses the whole sync, changing nothing):
//   - a mailbox on a unit the source's units lack (or, when the source has
//     no units, the primary lacks), in a domain not served, or twice in the
//     source; a unit removed while a kept mailbox uses it or moves to it
//     (a mailbox whose move away from it sync begins still uses it); a
//     domain removed while a kept mailbox or alias is in it (Errc::Conflict
//     or NotFound, naming the object);
//   - more mailboxes removed than options.max_removed (RemovalLimit of the
//     primary's mailboxes; by default 5% of them or 500, whichever is
//     larger): Errc::Conflict giving the count, the limit and the first few;
//   - a source with no mailboxes at all while the primary has some
//     (an empty or failed export): Errc::Conflict;
//   - an alias whose target no longer resolves once the sync is applied
//     (a removed mailbox an alias still names, when the source's aliases do
//     not drop it too), or an alias cycle: Errc::Conflict, as import.
// Removing a mailbox that is moving removes it: the source says it is gone.
// The changes are applied in an order the foreign keys accept: domains and
// units added first, mailboxes, then aliases, units and domains removed
// last. Only real differences are written: a second sync with the same
// source writes nothing, and meta.generation does not change.
//
// Thread safety: as Primary. Logs nothing; no exception escapes.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "unit/export.hpp"
#include "unit/primary.hpp"
#include "unit/result.hpp"
#include "unit/source.hpp"

namespace unit {

enum class SyncKind { Domain, Unit, Mailbox, Alias };
enum class SyncAction { Add, Change, Remove, MoveBegun };

// One change, for a verbose listing and the audit line.
struct SyncChange {
    SyncKind kind = SyncKind::Mailbox;
    SyncAction action = SyncAction::Add;
    std::string object;  // the domain, unit, mailbox or alias address
    std::string detail;  // what changed: "unit12 active", "state active -> suspended", "-> ann@my.com"
};

// "add mailbox ann@my.com (unit12 active)", "begin move of mailbox ..."
UNIT_EXPORT std::string to_string(const SyncChange& change);

struct SyncCounts {
    std::int64_t added = 0, changed = 0, removed = 0, moves_begun = 0;
    std::int64_t total() const noexcept { return added + changed + removed + moves_begun; }
};

struct SyncPlan {
    SyncCounts domains, units, mailboxes, aliases;
    SyncCounts all() const noexcept;
    std::vector<SyncChange> changes;  // only with SyncOptions::list_changes
    std::int64_t generation = 0;      // meta.generation after the sync (before it, on a dry run)
};

struct SyncOptions {
    std::optional<RemovalLimit> max_removed;  // unset: 5% of the primary's mailboxes or 500, the larger
    bool direct = false;                      // unit changes applied at once, no move
    bool dry_run = false;                     // compute and check everything, write nothing
    bool list_changes = false;                // fill SyncPlan::changes
    // Called with the changes found so far, now and then while comparing.
    std::function<void(std::uint64_t changes)> progress;
};

// Reads a CSV of the export format, which must end with its trailer
// ("end,,ROWS,"): Errc::Invalid "SOURCE: truncated: no end row" without it,
// "SOURCE:LINE: truncated: ..." with a wrong count, and the reader's
// errors ("SOURCE:LINE: problem") for a bad row. `progress` is called with
// the rows read so far, now and then. No partial directory is returned.
UNIT_EXPORT Result<SourceDirectory> read_csv_source(std::istream& in, const std::string& source,
                                                    const std::function<void(std::uint64_t rows)>& progress) noexcept;

}  // namespace unit
